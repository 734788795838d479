"""Where the shipped model lives: inside the package, so `pip install .` users get it too."""

from __future__ import annotations

import os
from pathlib import Path

from cgan.common.errors import InferenceError

MODELS_DIR = Path(__file__).resolve().parent / "models"
DEFAULT_MODEL_NAME = "cifar10.onnx"
ENV_VAR = "CGAN_MODEL"


def shipped_model_path() -> Path:
    """Where the package's own model is (it may be absent, e.g. in a fork that removed it)."""
    return MODELS_DIR / DEFAULT_MODEL_NAME


def default_model_path() -> Path:
    """$CGAN_MODEL if set, else the shipped model; a clear error when there is none."""
    override = os.environ.get(ENV_VAR)
    if override:
        return Path(override)
    shipped = shipped_model_path()
    if not shipped.is_file():
        raise InferenceError(
            "no default model is shipped in this install yet; pass "
            "--model PATH.onnx (make one with `make train` and `make export`)"
        )
    return shipped
