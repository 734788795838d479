"""Reading training run directories for the Training page: files only, no TensorFlow.

A run is chosen by its name among the folders listed under the runs folder, never by a
path, and the runs folder itself only moves with an environment variable, so the browser
cannot reach anything else on the machine. File names and formats are `RunDir`'s.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pandas as pd

from cgan.common.errors import CganError, DashboardError
from cgan.common.run_dir import RunDir

RUNS_ENV = "CGAN_RUNS_DIR"
_EPOCH_FILE = re.compile(r"^epoch_(\d+)\.png$")
_NAME = re.compile(r"^[^/\\]+$")


def runs_dir() -> Path:
    """$CGAN_RUNS_DIR, else runs/ in the folder the app was started from."""
    value = os.environ.get(RUNS_ENV, "").strip()
    return Path(value).expanduser() if value else Path.cwd() / "runs"


def _looks_like_run(folder: Path) -> bool:
    """A config, metrics or samples: a run that is still starting counts too."""
    run = RunDir(folder)
    return run.is_run() or run.metrics.exists() or run.samples.exists()


def list_runs(root: Path) -> list[str]:
    """Visible folders directly under `root` that look like runs."""
    if not root.is_dir():
        return []
    return sorted(
        child.name
        for child in root.iterdir()
        if child.is_dir() and not child.name.startswith(".") and _looks_like_run(child)
    )


def open_run(root: Path, name: str) -> RunDir:
    """The run called `name` under `root`; any other name (a path, `..`) is refused."""
    if not _NAME.match(name) or name in (".", "..") or name not in list_runs(root):
        raise DashboardError(f"{name!r} is not a run in {root}")
    return RunDir(root / name)


def config_of(run: RunDir) -> tuple[str | None, dict[str, Any]]:
    """config.toml as written (None when absent) and parsed ({} when it does not parse):
    a damaged config is still worth showing as text."""
    try:
        return run.config_text(), run.read_config()
    except CganError:
        return run.config_text(), {}


def metrics_frame(run: RunDir) -> pd.DataFrame:
    """metrics.jsonl as a table sorted by step: numeric columns only, one row per step
    (the last record wins, as after a resume that logged a step again)."""
    frame = pd.DataFrame(run.read_metrics())
    if frame.empty or "step" not in frame:
        return pd.DataFrame()
    frame = frame.apply(pd.to_numeric, errors="coerce").dropna(axis=1, how="all")
    frame = frame.dropna(subset=["step"]).drop_duplicates("step", keep="last")
    return frame.sort_values("step").reset_index(drop=True)


def sample_epochs(run: RunDir) -> list[int]:
    """Epochs that have a samples/epoch_NNNN.png grid, in order."""
    if not run.samples.is_dir():
        return []
    found = (_EPOCH_FILE.match(path.name) for path in run.samples.iterdir())
    return sorted(int(match.group(1)) for match in found if match)
