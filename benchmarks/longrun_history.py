"""The shipped model's long run as curves from its own metrics: every state of
longruns/cifar10 committed to git is measured as `cgan-train --eval-every` measures
(the judge, 100 per class, against the CIFAR-10 test split), its figures written into the
run's metrics.jsonl as evaluation records (once per step), and docs/results/longrun.{md,png}
drawn from those records alone. From now on the run writes them itself when resumed with
--eval-every (`make cifar10-continue`).

    python benchmarks/longrun_history.py        # measures the states not measured yet
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LONG_RUN = Path("longruns/cifar10")
HOMES = (LONG_RUN, Path("training/longrun/cifar10"))  # where commits kept it, newest first
REFERENCE = Path("../shared/datasets/cifar10/test")  # from ROOT, as the run's data path
RESULTS = ROOT / "docs" / "results"
SAMPLES_PER_CLASS = 100


def _git(*args: str) -> bytes:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True).stdout


def committed_states() -> list[tuple[int, str]]:
    """(step, commit) of every state on the run's line, oldest first. A commit whose step
    is not past the one before rewound the run (a rerun from an earlier state): the states
    it left behind are not on the line."""
    progress_files = [str(home / "progress.json") for home in HOMES]
    commits = _git("log", "--format=%H", "--reverse", "--", *progress_files)
    line: list[tuple[int, str]] = []
    for commit in commits.decode().split():
        progress = json.loads(_git("show", f"{commit}:{_home(commit) / 'progress.json'}"))
        step = int(progress["step"])
        while line and line[-1][0] >= step:
            line.pop()
        line.append((step, commit))
    return line


def _home(commit: str) -> Path:
    """The folder that held the run in `commit` (it moved out of training/ on 2026-12-07)."""
    for home in HOMES:
        if _git("ls-tree", "--name-only", commit, "--", str(home / "progress.json")).strip():
            return home
    raise SystemExit(f"commit {commit} holds no state of the long run")


def _checkout_state(commit: str, into: Path) -> None:
    """The run's config, progress and checkpoint files as they were in `commit`."""
    home = _home(commit)
    listing = _git("ls-tree", "-r", "--name-only", commit, "--", str(home)).decode().split()
    for name in listing:
        relative = Path(name).relative_to(home)
        if relative.parts[0] in ("checkpoints", "config.toml", "progress.json"):
            target = into / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(_git("show", f"{commit}:{name}"))


def measure_history() -> None:
    from cgan.training.runtime import quiet_tensorflow

    quiet_tensorflow()
    from cgan.common.run_dir import RunDir
    from cgan.export.exporter import restore_generator
    from cgan.training.config import load_config
    from cgan.training.snapshots import SnapshotEvaluator

    run = RunDir(ROOT / LONG_RUN)
    measured = {r["step"] for r in run.evaluation_records()}
    config = load_config(run.root)
    config.eval_every, config.eval_samples = 1, SAMPLES_PER_CLASS
    config.eval_reference = str(REFERENCE)
    evaluator = SnapshotEvaluator(config, run, None)
    for step, commit in committed_states():
        if step in measured:
            continue
        with tempfile.TemporaryDirectory() as folder:
            _checkout_state(commit, Path(folder))
            generator, _, _ = restore_generator(folder)
            progress = json.loads((Path(folder) / "progress.json").read_text())
        record = evaluator.evaluate(
            step,
            progress["epoch"],
            progress["cpu_hours"] * 60.0,
            None,
            lambda noise, labels, g=generator: g([noise, labels], training=False).numpy(),
        )
        print(f"{commit[:8]} {evaluator.line(record)}", flush=True)


def report() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cgan.common.run_dir import RunDir

    records = sorted(RunDir(ROOT / LONG_RUN).evaluation_records(), key=lambda r: r["step"])
    if not records:
        raise SystemExit("longrun_history: no evaluation records yet; run it without --report")
    panels = (
        ("accuracy", "judge accuracy (higher)"),
        ("frechet_distance", "Frechet distance, judge features (lower)"),
        ("precision", "precision (higher)"),
        ("recall", "recall (higher)"),
    )
    hours = [r["cpu_minutes"] / 60.0 for r in records]
    figure, axes = plt.subplots(1, 4, figsize=(17, 3.8))
    for axis, (key, title) in zip(axes, panels, strict=True):
        axis.plot(hours, [r[key] for r in records], marker="o")
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("CPU-hours")
        axis.grid(alpha=0.3)
    figure.suptitle(
        f"The long run ({LONG_RUN}), measured at each kept state: {records[0]['protocol']}",
        fontsize=9,
    )
    figure.tight_layout()
    figure.savefig(RESULTS / "longrun.png", dpi=90)
    lines = [
        "# The long run, from its own metrics",
        "",
        f"Every state of `{LONG_RUN}` kept in git, and every snapshot the run measured itself "
        "since, as the evaluation records of its `metrics.jsonl` "
        f"({records[0]['protocol']}). Reduced protocol: the full one (1,000 per class) is in "
        "the README's results table. Curves: `longrun.png`. Redo: "
        "`python benchmarks/longrun_history.py`.",
        "",
        "| step | epoch | CPU-hours | accuracy | Frechet | precision | recall |",
        "|---|---|---|---|---|---|---|",
    ]
    for record, hour in zip(records, hours, strict=True):
        lines.append(
            f"| {record['step']:,} | {record['epoch']:.1f} | {hour:.2f} | "
            f"{record['accuracy']:.3f} | {record['frechet_distance']:.2f} | "
            f"{record['precision']:.3f} | {record['recall']:.3f} |"
        )
    (RESULTS / "longrun.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main(argv: list[str]) -> int:
    os.chdir(ROOT)
    if "--report" not in argv:
        if not REFERENCE.is_dir():
            raise SystemExit(f"longrun_history: error: no CIFAR-10 test split at {REFERENCE}")
        measure_history()
    report()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
