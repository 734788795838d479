"""What the studies at equal CPU time share: training their variants two at a time, one core
each, and choosing which checkpoints make a run's quality curve."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ONE_THREAD = {
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
    "OMP_NUM_THREADS": "1",
}


def train_two_at_a_time(jobs: Sequence[tuple[str, list[str], Path]]) -> None:
    """(name, command, log file) jobs, two at a time, each pinned to its own core with one
    TensorFlow thread, so every variant gets the same kind of CPU time."""
    env = {**os.environ, **ONE_THREAD, "PYTHONPATH": str(ROOT)}
    queue = list(jobs)
    running: dict[int, tuple[str, subprocess.Popen]] = {}
    while queue or running:
        for core in (0, 1):
            if core not in running and queue:
                name, command, log_path = queue.pop(0)
                log_path.parent.mkdir(parents=True, exist_ok=True)
                log = log_path.open("a")
                print(f"core {core}: {name}", flush=True)
                running[core] = (
                    name,
                    subprocess.Popen(
                        ["taskset", "-c", str(core), *command],
                        env=env,
                        cwd=ROOT,
                        stdout=log,
                        stderr=log,
                    ),
                )
        time.sleep(5)
        for core, (name, process) in list(running.items()):
            if process.poll() is not None:
                print(f"core {core}: {name} exited {process.returncode}", flush=True)
                del running[core]


def checkpoints_to_measure(run_dir: Path, every_minutes: float) -> list[tuple[int, float]]:
    """(step, CPU-minutes) of the checkpoint nearest each `every_minutes` mark, and the last.
    A checkpoint's CPU time is interpolated from the metrics records around it."""
    records = [
        json.loads(line)
        for line in (run_dir / "metrics.jsonl").read_text().splitlines()
        if line.strip()
    ]
    known = sorted((r["step"], r["cpu_minutes"]) for r in records if "cpu_minutes" in r)
    progress_path = run_dir / "progress.json"
    if progress_path.is_file():
        progress = json.loads(progress_path.read_text())
        known.append((progress["step"], progress["cpu_hours"] * 60.0))
    if not known:
        return []
    known_steps, known_minutes = zip(*sorted(set(known)), strict=True)
    steps = sorted(
        int(p.name[len("ckpt-") : -len(".index")])
        for p in (run_dir / "checkpoints").glob("ckpt-*.index")
    )
    if not steps:
        return []
    minutes = dict(zip(steps, np.interp(steps, known_steps, known_minutes), strict=True))
    chosen = {steps[-1]}
    mark = every_minutes
    while mark <= minutes[steps[-1]]:
        chosen.add(min(steps, key=lambda s: abs(minutes[s] - mark)))
        mark += every_minutes
    return sorted((s, float(minutes[s])) for s in chosen)


def images_per_cpu_second(run_dir: Path) -> float:
    """Training images (real images seen by D) per second of CPU time."""
    path = run_dir / "progress.json"
    progress = json.loads(path.read_text()) if path.is_file() else {}
    hours = progress.get("cpu_hours") or 0
    return progress.get("examples_seen", 0) / (hours * 3600) if hours else float("nan")


def read_curve(*paths: Path) -> list[dict]:
    """A run's measured points by step, from the first of `paths` that exists (the run's
    own curve.json, then the copy kept in docs/results)."""
    for path in paths:
        if path.is_file():
            return sorted(json.loads(path.read_text()).values(), key=lambda r: r["step"])
    return []


def plot_curves(
    curves: Sequence[tuple[str, list[dict]]],
    panels: Sequence[tuple[str, str]],
    title: str,
    out: Path,
) -> list:
    """Four panels of (figure key, panel title) against CPU-minutes, one line per curve;
    returns the axes, for reference lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    for name, curve in curves:
        for axis, (key, panel) in zip(axes.flat, panels, strict=True):
            axis.plot(
                [r["cpu_minutes"] for r in curve],
                [r[key] for r in curve],
                marker="o",
                markersize=3,
                label=name,
            )
            axis.set_title(panel)
            axis.set_xlabel("CPU-minutes of training (one core)")
    axes.flat[0].legend(fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=90)
    return list(axes.flat)


def train_command(run_dir: Path, new_run: Sequence[str], minutes: float) -> list[str]:
    """cgan-train for `minutes` CPU-minutes in all: a new run with the `new_run` options, or
    the resume of the one in `run_dir` (its config is saved there)."""
    import sys

    base = [sys.executable, "-m", "cgan.training.cli", "--run-dir", str(run_dir)]
    budget = ["--cpu-minutes", f"{minutes:g}"]
    if (run_dir / "config.toml").is_file():
        return [*base, "--resume", *budget, "--quiet"]
    return [*base, *new_run, *budget]
