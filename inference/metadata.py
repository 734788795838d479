"""The export contract's metadata: what an ONNX generator carries so that a client needs
nothing else. Written by `cgan-export`, read by the inference API (no TensorFlow here).

Each field is one `metadata_props` entry of the ONNX model, its value JSON-encoded, so that
tools such as Netron show them one by one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from inference.errors import MetadataError

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
            raise MetadataError("the model has no cgan metadata (missing "
                                f"{', '.join(missing)}); export it with cgan-export")
        try:
            values = {name: json.loads(text) for name, text in props.items()}
        except json.JSONDecodeError as exc:
            raise MetadataError(f"the model's metadata is not valid JSON: {exc}") from None
        if values.pop(CONTRACT_KEY) != CONTRACT:
            raise MetadataError(f"the model follows another contract, not {CONTRACT}")
        known = {f.name for f in fields(cls)}
        info = cls(**{k: v for k, v in values.items() if k in known})
        if (not isinstance(info.labels, list) or not info.labels
                or not all(isinstance(x, str) for x in info.labels)):
            raise MetadataError("the model's labels metadata is not a list of names")
        if not (isinstance(info.latent_dim, int) and info.latent_dim > 0
                and isinstance(info.image_size, int) and info.image_size > 0):
            raise MetadataError("the model's latent_dim or image_size metadata is not valid")
        info._check_types()
        return info

    def _check_types(self) -> None:
        """Descriptive fields have the types readers expect, so no caller trips on them."""
        number = (int, float)
        expected = {"training_steps": int, "epochs": number, "ema_decay": number,
                    "opset": int, "metrics": (dict, type(None)), "extra": dict,
                    "parity_max_abs_diff": (*number, type(None))}
        for name in ("arch", "dataset", "weights", "precision", "export_time",
                     "project_version", "source_run"):
            expected[name] = str
        wrong = [name for name, kinds in expected.items()
                 if not isinstance(getattr(self, name), kinds)
                 or isinstance(getattr(self, name), bool)]
        if wrong:
            raise MetadataError("the model's metadata has wrongly typed fields: "
                                + ", ".join(wrong))
