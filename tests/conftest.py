"""Shared fixtures: paths, the shared CIFAR-10 copy, and image-folder builders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
SHARED_CIFAR10 = ROOT.parent / "shared" / "datasets" / "cifar10"


@pytest.fixture(scope="session")
def cifar10_dir() -> Path:
    if not (SHARED_CIFAR10 / "train").is_dir():
        pytest.skip("../shared/datasets/cifar10 is not on this machine")
    return SHARED_CIFAR10


def _train_tiny_run(run_dir: Path, arch: str, steps: int = 4) -> Path:
    pytest.importorskip("tensorflow")
    from cgan.training.loop import train
    from cgan.training.runtime import quiet_tensorflow
    from tests.training.helpers import tiny_config

    quiet_tensorflow()
    config = tiny_config(arch=arch, steps=steps, checkpoint_every=steps)
    train(config, run_dir, resume=False, progress=False)
    return run_dir


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory) -> dict[str, Path]:
    """A few training steps of each architecture: enough to export and infer with."""
    root = tmp_path_factory.mktemp("runs")
    return {arch: _train_tiny_run(root / arch, arch) for arch in ("sngan", "dcgan")}


@pytest.fixture(scope="session")
def exported_model(tiny_runs, tmp_path_factory) -> Path:
    """The sngan tiny run exported to ONNX (with card), as inference tests need it."""
    from cgan.export.exporter import export_run

    out = tmp_path_factory.mktemp("models") / "tiny.onnx"
    export_run(tiny_runs["sngan"], out)
    return out
