"""One export: restore the generator from a run's checkpoint, convert it to ONNX through
tf2onnx, prove the file computes what Keras computes, describe it with the export
contract's metadata, check it, write it atomically and render its model card.

`from_function` rather than `from_keras` (which breaks on some Keras 3 models); inputs
noise float32 [B, latent] and label int64 [B], output image float32 [B, H, W, 3] in
[-1, 1], no random op in the graph (onnxruntime cannot seed one).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path

import keras
import numpy as np
import onnx
import tensorflow as tf
import tf2onnx

from cgan.common.cli import first_line
from cgan.common.errors import ExportError
from cgan.common.progress import Progress
from cgan.common.run_dir import BEST, RunDir
from cgan.export import MAX_OPSET, MIN_OPSET
from cgan.inference.card import write_card
from cgan.inference.metadata import (
    INPUT_LABEL,
    INPUT_NOISE,
    OUTPUT_IMAGE,
    ModelInfo,
    attach_metadata,
    save_model,
)
from cgan.inference.session import open_session
from cgan.training.config import TrainConfig, load_config
from cgan.training.models import build_generator

DEFAULT_OPSET = 17  # tf2onnx 1.17 fails at opset 19 and above
PARITY_BATCHES = (1, 7, 64)
PARITY_BOUND = {"fp32": 1e-4, "fp16": 2e-2}


def find_checkpoint(run: RunDir, name: str | None = None) -> str:
    """A checkpoint's prefix: by name, `best` (kept by --keep-best), or the newest."""
    if name == BEST:
        best = run.best_checkpoint()
        if best is None:
            raise ExportError(
                f"{run.root} has no best checkpoint (train with --eval-every N --keep-best FIGURE)"
            )
        return str(best)
    if name:
        if not re.fullmatch(r"ckpt-\d+", name):
            raise ExportError(
                f"--checkpoint {name[:40]!r}: give a checkpoint name such as ckpt-500, or best"
            )
        path = run.checkpoints / name
        if not Path(f"{path}.index").is_file():
            raise ExportError(f"checkpoint {name} not found in {run.checkpoints}")
        return str(path)
    prefixes = run.checkpoint_prefixes()
    if not prefixes:
        raise ExportError(f"{run.root} has no checkpoint to export (train it first)")
    return str(prefixes[0])


def restore_generator(
    run_dir: str | Path, ema: bool = True, checkpoint: str | None = None
) -> tuple[keras.Model, TrainConfig, str]:
    """The EMA generator by default (the one that makes the best images), or the raw one."""
    run = RunDir(Path(run_dir))
    config = load_config(run.root)
    path = find_checkpoint(run, checkpoint)
    generator = build_generator(config.model_spec(), name="generator")
    slot = {"ema_generator" if ema else "generator": generator}
    try:
        status = tf.train.Checkpoint(**slot).restore(path)
        status.expect_partial().assert_existing_objects_matched()
    except Exception as exc:  # TF raises OpError, IndexError, ValueError... for bad files
        raise ExportError(
            f"checkpoint {path} is unreadable or does not match the run's config: {first_line(exc)}"
        ) from None
    return generator, config, path


def to_onnx(generator: keras.Model, latent_dim: int, opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    signature = [
        tf.TensorSpec([None, latent_dim], tf.float32, name=INPUT_NOISE),
        tf.TensorSpec([None], tf.int64, name=INPUT_LABEL),
    ]

    @tf.function(input_signature=signature)
    def generate(noise: tf.Tensor, label: tf.Tensor) -> dict[str, tf.Tensor]:
        image = generator([noise, tf.cast(label, tf.int32)], training=False)
        return {OUTPUT_IMAGE: tf.cast(image, tf.float32)}

    model, _ = tf2onnx.convert.from_function(generate, input_signature=signature, opset=opset)
    return model


def to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """Half-precision weights and compute, float32 inputs and outputs (same contract)."""
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    half = convert_float_to_float16(model, keep_io_types=True)
    OnnxModel.graph_topological_sort(half.graph)  # the converter appends its input casts
    return half


def max_abs_difference(
    generator: keras.Model,
    onnx_bytes: bytes,
    latent_dim: int,
    num_classes: int,
    batches: Sequence[int] = PARITY_BATCHES,
    seed: int = 0,
) -> dict[int, float]:
    """Max |Keras - onnxruntime| per batch size, all batches through one session."""
    session = open_session(onnx_bytes, "cpu")
    rng = np.random.default_rng(seed)
    differences = {}
    for batch in batches:
        noise = rng.standard_normal((batch, latent_dim)).astype(np.float32)
        labels = rng.integers(0, num_classes, batch)
        expected = np.asarray(generator([noise, labels.astype(np.int32)], training=False))
        (actual,) = session.run(
            [OUTPUT_IMAGE], {INPUT_NOISE: noise, INPUT_LABEL: labels.astype(np.int64)}
        )
        differences[batch] = float(np.max(np.abs(actual - expected)))
    return differences


class ParityError(ExportError):
    """ONNX and Keras disagree beyond the bound: the export is refused (exit code 1)."""

    exit_code = 1


@dataclass
class ExportResult:
    path: Path
    info: ModelInfo
    parity: dict[int, float]
    card: Path | None
    grid: Path | None


def project_version() -> str:
    try:
        return importlib_metadata.version("cgan-label2image")
    except importlib_metadata.PackageNotFoundError:
        return "unknown"


def _in_hours(record: dict) -> dict:
    """A record that counts CPU-minutes (best.json, a metrics line) as progress.json does."""
    minutes = record.get("cpu_minutes")
    hours = minutes / 60.0 if isinstance(minutes, (int, float)) else None
    return {"step": record.get("step"), "epoch": record.get("epoch"), "cpu_hours": hours}


def _training_progress(run: RunDir, checkpoint: str) -> tuple[int, float, float | None]:
    """Step, epochs and cumulative training CPU-hours (None when not recorded)."""
    step = int(checkpoint.rsplit("-", 1)[-1])
    progress = run.read_progress()
    best = run.read_best()
    if Path(checkpoint).parent == run.best and best.get("step") == step:
        progress = _in_hours(best)
    if progress.get("step") != step:  # an older checkpoint: the log line of its step
        logged = [r for r in run.read_metrics() if r.get("step") == step and "epoch" in r]
        progress = _in_hours(logged[-1]) if logged else {}
    epoch, hours = progress.get("epoch", 0.0), progress.get("cpu_hours")
    epoch = float(epoch) if isinstance(epoch, (int, float)) else 0.0
    return step, epoch, float(hours) if isinstance(hours, (int, float)) else None


def _check_writable(out: Path) -> None:
    if out.suffix != ".onnx":
        raise ExportError(f"the output {out} should end in .onnx")
    if out.is_dir():
        raise ExportError(f"the output {out} is a directory")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create {out.parent}: {exc.strerror}") from None
    if not os.access(out.parent, os.W_OK):
        raise ExportError(f"cannot write to {out.parent}: permission denied")


def export_run(
    run_dir: Path,
    out: Path,
    ema: bool = True,
    fp16: bool = False,
    opset: int = DEFAULT_OPSET,
    checkpoint: str | None = None,
    card: bool = True,
    progress: bool = False,
) -> ExportResult:
    """Export `run_dir` to `out`; `progress` names each stage on stderr as it starts."""
    with Progress("cgan-export", None, "stages", enabled=progress) as shown:
        return _export(RunDir(run_dir), out, ema, fp16, opset, checkpoint, card, shown.stage)


def _export(
    run: RunDir,
    out: Path,
    ema: bool,
    fp16: bool,
    opset: int,
    checkpoint: str | None,
    card: bool,
    stage: Callable[[str], None],
) -> ExportResult:
    if type(opset) is not int or not MIN_OPSET <= opset <= MAX_OPSET:
        raise ExportError(f"opset {opset!r}: must be {MIN_OPSET} to {MAX_OPSET}")
    _check_writable(out)
    stage(f"restoring the {'EMA ' if ema else ''}generator from {run.checkpoints}")
    generator, config, checkpoint_path = restore_generator(run.root, ema=ema, checkpoint=checkpoint)
    stage(f"converting to ONNX (opset {opset})")
    model = to_onnx(generator, config.latent_dim, opset)
    precision = "fp16" if fp16 else "fp32"
    if fp16:
        model = to_fp16(model)
    stage("checking parity with Keras")
    parity = max_abs_difference(
        generator, model.SerializeToString(), config.latent_dim, len(config.labels)
    )
    worst = max(parity.values())
    if not worst <= PARITY_BOUND[precision]:
        raise ParityError(
            f"parity check failed: max abs difference {worst:.3g} between ONNX "
            f"and Keras exceeds {PARITY_BOUND[precision]:g}; nothing written"
        )
    step, epochs, cpu_hours = _training_progress(run, checkpoint_path)
    info = ModelInfo(
        labels=list(config.labels),
        latent_dim=config.latent_dim,
        image_size=config.resolution,
        arch=config.arch,
        dataset=config.data,
        training_steps=step,
        epochs=round(epochs, 3),
        ema_decay=config.ema_decay if ema else 0.0,
        weights="ema" if ema else "raw",
        precision=precision,
        opset=opset,
        export_time=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        project_version=project_version(),
        source_run=f"{run.root} ({Path(checkpoint_path).name})",
        parity_max_abs_diff=worst,
        extra={
            "parity_by_batch": {str(k): v for k, v in parity.items()},
            "parity_bound": PARITY_BOUND[precision],
            "training_cpu_hours": cpu_hours,
            "training_config": config.to_dict(),
            # Read by cgan-eval: figures in the ImageNet network's features are independent
            # only of a model whose discriminator never saw them.
            "imagenet_independent": not config.imagenet_projected,
        },
    )
    attach_metadata(model, info)
    onnx.checker.check_model(model, full_check=True)
    save_model(model, out)
    card_path = grid_path = None
    if card:
        stage("rendering the model card with onnxruntime")
        card_path, grid_path = write_card(out)
    return ExportResult(out, info, parity, card_path, grid_path)
