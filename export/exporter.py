"""One export: restore, convert, prove parity, describe, check, write atomically, card."""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path

import onnx

from cgan.common.errors import ExportError, TrainingError
from cgan.common.run_dir import RunDir
from cgan.export.convert import DEFAULT_OPSET, attach_metadata, to_fp16, to_onnx
from cgan.export.parity import max_abs_difference
from cgan.export.restore import restore_generator
from cgan.inference.metadata import ModelInfo

PARITY_BOUND = {"fp32": 1e-4, "fp16": 2e-2}


class ParityError(ExportError):
    """ONNX and Keras disagree beyond the bound: the export is refused."""


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


def _training_progress(run: RunDir, checkpoint: str) -> tuple[int, float, float | None]:
    """Step, epochs and cumulative training CPU-hours (None when not recorded)."""
    step = int(checkpoint.rsplit("-", 1)[-1])
    progress = run.read_progress()
    if progress.get("step") != step:
        return step, 0.0, None
    epoch, hours = progress.get("epoch", 0.0), progress.get("cpu_hours")
    epoch = float(epoch) if isinstance(epoch, (int, float)) else 0.0
    return step, epoch, float(hours) if isinstance(hours, (int, float)) else None


def _evaluation(run: RunDir) -> dict | None:
    path = run.root / "evaluation.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None


def _check_writable(out: Path) -> None:
    if out.suffix != ".onnx":
        raise TrainingError(f"the output {out} should end in .onnx")
    if out.is_dir():
        raise TrainingError(f"the output {out} is a directory")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrainingError(f"cannot create {out.parent}: {exc.strerror}") from None
    if not os.access(out.parent, os.W_OK):
        raise TrainingError(f"cannot write to {out.parent}: permission denied")


def write_atomically(model: onnx.ModelProto, out: Path) -> None:
    """Write beside the target, then rename: a crash never leaves a half-written .onnx."""
    descriptor, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(descriptor)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would hide the model from other users
        onnx.save_model(model, tmp)
        os.replace(tmp, out)
    except OSError as exc:
        raise TrainingError(f"cannot write {out}: {exc.strerror}") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def export_run(
    run_dir: Path,
    out: Path,
    ema: bool = True,
    fp16: bool = False,
    opset: int = DEFAULT_OPSET,
    checkpoint: str | None = None,
    card: bool = True,
) -> ExportResult:
    run = RunDir(run_dir)
    _check_writable(out)
    generator, config, checkpoint_path = restore_generator(run.root, ema=ema, checkpoint=checkpoint)
    model = to_onnx(generator, config.latent_dim, opset)
    precision = "fp16" if fp16 else "fp32"
    if fp16:
        model = to_fp16(model)
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
        metrics=_evaluation(run),
        extra={
            "parity_by_batch": {str(k): v for k, v in parity.items()},
            "parity_bound": PARITY_BOUND[precision],
            "training_cpu_hours": cpu_hours,
            "training_config": config.to_dict(),
        },
    )
    attach_metadata(model, info)
    onnx.checker.check_model(model, full_check=True)
    write_atomically(model, out)
    card_path = grid_path = None
    if card:
        from cgan.export.card import write_card

        card_path, grid_path = write_card(out)
    return ExportResult(out, info, parity, card_path, grid_path)
