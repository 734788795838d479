"""The export contract's metadata: what an ONNX generator carries so that a client needs
nothing else. Read by the inference API; written by `cgan-export` and `cgan-eval --embed`
through `attach_metadata` and `save_model` below, which need the `onnx` package (the
export and evaluation extras) but never TensorFlow.

Each field is one `metadata_props` entry of the ONNX model, its value JSON-encoded, so that
tools such as Netron show them one by one.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cgan.common.errors import CganError, MetadataError
from cgan.common.files import atomic_path
from cgan.common.labels import labels_problem
from cgan.inference.requests import MAX_IMAGE_SIZE, MAX_LATENT_DIM

if TYPE_CHECKING:
    import onnx


CONTRACT = "cgan-onnx/1"
CONTRACT_KEY = "contract"
INPUT_NOISE, INPUT_LABEL, OUTPUT_IMAGE = "noise", "label", "image"


@dataclass
class ModelInfo:
    """All a client needs (labels, latent_dim, image_size) and what a person wants to know."""

    labels: list[str]
    latent_dim: int
    image_size: int
    arch: str = "unknown"
    dataset: str = "unknown"
    training_steps: int = 0
    epochs: float = 0.0
    ema_decay: float = 0.0
    weights: str = "ema"  # "ema" or "raw"
    precision: str = "fp32"
    opset: int = 17
    export_time: str = ""
    project_version: str = ""
    source_run: str = ""
    parity_max_abs_diff: float | None = None
    metrics: dict[str, Any] | None = None  # with their "protocol" entry, when evaluated
    extra: dict[str, Any] = field(default_factory=dict)

    REQUIRED = ("labels", "latent_dim", "image_size")

    def to_props(self) -> dict[str, str]:
        props = {CONTRACT_KEY: json.dumps(CONTRACT)}
        props.update({name: json.dumps(value) for name, value in asdict(self).items()})
        return props

    @classmethod
    def from_props(cls, props: dict[str, str]) -> ModelInfo:
        missing = [name for name in (CONTRACT_KEY, *cls.REQUIRED) if name not in props]
        if missing:
            raise MetadataError(
                "the model has no cgan metadata (missing "
                f"{', '.join(missing)}); export it with cgan-export"
            )
        try:
            values = {name: json.loads(text) for name, text in props.items()}
        except json.JSONDecodeError as exc:
            raise MetadataError(f"the model's metadata is not valid JSON: {exc}") from None
        if values.pop(CONTRACT_KEY) != CONTRACT:
            raise MetadataError(f"the model follows another contract, not {CONTRACT}")
        known = {f.name for f in fields(cls)}
        info = cls(**{k: v for k, v in values.items() if k in known})
        check_labels(info.labels)
        for name, limit in (("latent_dim", MAX_LATENT_DIM), ("image_size", MAX_IMAGE_SIZE)):
            value = getattr(info, name)
            if not (isinstance(value, int) and not isinstance(value, bool) and 0 < value <= limit):
                raise MetadataError(
                    f"the model's {name} metadata must be a whole number "
                    f"in 1..{limit}, not {str(value)[:40]!r}"
                )
        info._check_types()
        return info

    def _check_types(self) -> None:
        """Descriptive fields have the types readers expect, so no caller trips on them."""
        number = (int, float)
        expected = {
            "training_steps": int,
            "epochs": number,
            "ema_decay": number,
            "opset": int,
            "metrics": (dict, type(None)),
            "extra": dict,
            "parity_max_abs_diff": (*number, type(None)),
        }
        for name in (
            "arch",
            "dataset",
            "weights",
            "precision",
            "export_time",
            "project_version",
            "source_run",
        ):
            expected[name] = str
        wrong = [
            name
            for name, kinds in expected.items()
            if not isinstance(getattr(self, name), kinds)
            or isinstance(getattr(self, name), bool)
            or isinstance(getattr(self, name), float)
            and not math.isfinite(getattr(self, name))
        ]
        if wrong:
            raise MetadataError(
                "the model's metadata has wrongly typed fields: " + ", ".join(wrong)
            )


def check_labels(labels: object) -> None:
    """The model's labels follow the rule of cgan.common.labels."""
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        raise MetadataError("the model's labels metadata is not a list of names")
    problem = labels_problem(labels)
    if problem:
        raise MetadataError(f"the model's {problem}")


def attach_metadata(model: onnx.ModelProto, info: ModelInfo) -> None:
    """Replace the model's metadata with `info` (one property per field)."""
    del model.metadata_props[:]
    for key, value in info.to_props().items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.doc_string = (
        f"cgan-label2image conditional generator ({info.arch}, "
        f"{info.image_size}x{info.image_size}, {len(info.labels)} classes)"
    )
    model.producer_name = "cgan-label2image"
    model.producer_version = info.project_version


def save_model(model: onnx.ModelProto, out: Path) -> None:
    """Write beside the target, then rename: a crash never leaves a half-written .onnx."""
    import onnx

    try:
        with atomic_path(out) as temporary:
            onnx.save_model(model, temporary)
    except OSError as exc:
        raise CganError(f"cannot write {out}: {exc.strerror or exc}") from None


def embed_metrics(model_path: Path, metrics: dict[str, Any]) -> ModelInfo:
    """Store evaluation figures in an exported model's metadata (the weights are untouched)."""
    import onnx

    model = onnx.load(model_path)
    info = ModelInfo.from_props({p.key: p.value for p in model.metadata_props})
    info.metrics = metrics
    attach_metadata(model, info)
    save_model(model, model_path)
    return info
