"""Rebuild a run's generator and load its weights from the newest (or a named) checkpoint."""

from __future__ import annotations

import re
from pathlib import Path

import keras
import tensorflow as tf

from cgan.common.errors import TrainingError
from cgan.common.run_dir import RunDir
from cgan.training.config import TrainConfig, load_config
from cgan.training.models import build_generator


def find_checkpoint(run: RunDir, name: str | None = None) -> str:
    if name:
        if not re.fullmatch(r"ckpt-\d+", name):
            raise TrainingError(
                f"--checkpoint {name[:40]!r}: give a checkpoint name such as ckpt-500"
            )
        path = run.checkpoints / name
        if not Path(f"{path}.index").is_file():
            raise TrainingError(f"checkpoint {name} not found in {run.checkpoints}")
        return str(path)
    prefixes = run.checkpoint_prefixes()
    if not prefixes:
        raise TrainingError(f"{run.root} has no checkpoint to export (train it first)")
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
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise TrainingError(
            f"checkpoint {path} is unreadable or does not match the run's config: {reason}"
        ) from None
    return generator, config, path
