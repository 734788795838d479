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
