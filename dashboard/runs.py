"""Reading training run directories for the Training view: files only, no TensorFlow.

A run is chosen by its name among the folders listed under the runs folder, never by a
path, so the browser cannot reach anything else on the machine.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from cgan.common.run_dir import RunDir
from cgan.dashboard.feedback import DashboardError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CONFIG_NAME = "config.toml"
RUN_MARKERS = (CONFIG_NAME, "metrics.jsonl", "samples")
_EPOCH_FILE = re.compile(r"^epoch_(\d+)\.png$")
_NAME = re.compile(r"^[^/\\]+$")


def list_runs(root: Path) -> list[str]:
    """Folders directly under `root` that look like runs (a config, metrics or samples)."""
    if not root.is_dir():
        return []
    names = [
        child.name
        for child in root.iterdir()
        if child.is_dir()
        and not child.name.startswith(".")
        and any((child / marker).exists() for marker in RUN_MARKERS)
    ]
    return sorted(names)


def open_run(root: Path, name: str) -> RunDir:
    """The run called `name` under `root`; any other name (a path, `..`) is refused."""
    if not _NAME.match(name) or name in (".", "..") or name not in list_runs(root):
        raise DashboardError(f"{name!r} is not a run in {root}")
    return RunDir(root / name)


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


def read_config(run: RunDir) -> tuple[str | None, dict[str, Any]]:
    """config.toml as text (None when absent) and parsed ({} when it does not parse)."""
    path = run.root / CONFIG_NAME
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        return None, {}
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return text, {}
