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
_NAME = re.compile(r"^[^/\\]+(/[^/\\]+)?$")  # a run, or a study's run one folder down
# The figures a run measures of itself (cgan-train --eval-every): the judge's on CIFAR-10's
# classes, the probe judge's and ImageNet features' on any other class folder.
QUALITY = (
    ("Fréchet distance (lower is better)", ("frechet_distance", "imagenet_frechet_distance")),
    ("Class accuracy (higher)", ("accuracy", "probe_accuracy")),
    ("Precision (higher)", ("precision", "imagenet_precision")),
    ("Recall (higher)", ("recall", "imagenet_recall")),
)


def runs_dir() -> Path:
    """$CGAN_RUNS_DIR, else runs/ in the folder the app was started from."""
    value = os.environ.get(RUNS_ENV, "").strip()
    return Path(value).expanduser() if value else Path.cwd() / "runs"


def _looks_like_run(folder: Path) -> bool:
    """A config, metrics or samples: a run that is still starting counts too."""
    run = RunDir(folder)
    return run.is_run() or run.metrics.exists() or run.samples.exists()


def _visible_folders(folder: Path) -> list[Path]:
    try:
        return [c for c in folder.iterdir() if c.is_dir() and not c.name.startswith(".")]
    except OSError:
        return []


def list_runs(root: Path) -> list[str]:
    """Visible folders under `root` that look like runs: its children, and the children of
    a child that is not a run itself (a study's folder of variants, as `study/variant`)."""
    if not root.is_dir():
        return []
    names = []
    for child in _visible_folders(root):
        if _looks_like_run(child):
            names.append(child.name)
            continue
        names += [f"{child.name}/{g.name}" for g in _visible_folders(child) if _looks_like_run(g)]
    return sorted(names)


def open_run(root: Path, name: str) -> RunDir:
    """The run called `name` under `root`; any other name (a path, `..`) is refused."""
    if not _NAME.match(name) or ".." in name.split("/") or name not in list_runs(root):
        raise DashboardError(f"{name!r} is not a run in {root}")
    return RunDir(root / name)


def config_of(run: RunDir) -> tuple[str | None, dict[str, Any]]:
    """config.toml as written (None when absent) and parsed ({} when it does not parse):
    a damaged config is still worth showing as text."""
    try:
        return run.config_text(), run.read_config()
    except CganError:
        return run.config_text(), {}


def _numeric_by_step(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Records as a table sorted by step: numeric columns only, one row per step (the last
    record wins, as after a resume that logged a step again), cpu_hours beside the step."""
    frame = pd.DataFrame(records)
    if frame.empty or "step" not in frame:
        return pd.DataFrame()
    frame = frame.apply(pd.to_numeric, errors="coerce").dropna(axis=1, how="all")
    frame = frame.dropna(subset=["step"]).drop_duplicates("step", keep="last")
    if "cpu_minutes" in frame:
        frame["cpu_hours"] = frame["cpu_minutes"] / 60.0
    return frame.sort_values("step").reset_index(drop=True)


def metrics_frame(run: RunDir) -> pd.DataFrame:
    """The training records (losses, D's outputs, throughput) by step."""
    return _numeric_by_step(run.training_records())


def evaluation_frame(run: RunDir) -> pd.DataFrame:
    """The quality figures of each measured snapshot by step; empty when none was measured."""
    return _numeric_by_step(run.evaluation_records())


def checkpoint_names(run: RunDir) -> list[str]:
    """What `cgan-export --checkpoint` takes for this run: its checkpoints, newest first,
    and `best` when --keep-best kept one."""
    names = [prefix.name for prefix in run.checkpoint_prefixes()]
    return (["best"] if run.best_checkpoint() is not None else []) + names


def sample_epochs(run: RunDir) -> list[int]:
    """Epochs that have a samples/epoch_NNNN.png grid, in order."""
    if not run.samples.is_dir():
        return []
    found = (_EPOCH_FILE.match(path.name) for path in run.samples.iterdir())
    return sorted(int(match.group(1)) for match in found if match)
