"""Where the dashboard looks for models and runs: fixed folders that only an environment
variable can move, so nobody can point the app at an arbitrary path from the browser."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
MODELS_ENV = "CGAN_MODELS_DIR"
RUNS_ENV = "CGAN_RUNS_DIR"


def _folder(env_var: str, default: str) -> Path:
    value = os.environ.get(env_var, "").strip()
    return Path(value).expanduser() if value else REPO_ROOT / default


def models_dir() -> Path:
    """$CGAN_MODELS_DIR, else models/ at the repository root."""
    return _folder(MODELS_ENV, "models")


def runs_dir() -> Path:
    """$CGAN_RUNS_DIR, else runs/ at the repository root."""
    return _folder(RUNS_ENV, "runs")


def _visible(path: Path, root: Path) -> bool:
    return not any(part.startswith(".") for part in path.relative_to(root).parts)


def list_models(folder: Path) -> list[Path]:
    """Every .onnx file below `folder`, by relative name; hidden files (such as the
    exporter's `.NAME.onnx.*.tmp`) and hidden folders are left out."""
    if not folder.is_dir():
        return []
    found = [path for path in folder.rglob("*.onnx") if path.is_file() and _visible(path, folder)]
    return sorted(found, key=lambda path: path.relative_to(folder).as_posix())
