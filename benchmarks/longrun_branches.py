"""Branches of the shipped model's long run at equal CPU time, from their own measurements.

    python benchmarks/longrun_branches.py NAME=RUN[@CPU_MINUTES] ...   # keep, then draw
    python benchmarks/longrun_branches.py                              # draw what is kept

Each RUN is a run directory trained with `--eval-every` (the judge, 100 per class, against
the CIFAR-10 test split). Its evaluation records are kept as
docs/results/longrun-branches/NAME.evaluations.jsonl (a few kB: the checkpoints stay out of
git), each with `branch_cpu_minutes`, the CPU-minutes trained since the branch point: the
run's own counter minus CPU_MINUTES, its value at that point (0 for a new run started from
the long run's state; 473.4 for the long run itself resumed from step 39,250).
docs/results/longrun-branches.{md,png} are drawn from every kept file.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
KEPT = RESULTS / "longrun-branches"
FIGURES = (
    ("accuracy", "judge accuracy (higher is better)"),
    ("frechet_distance", "Fréchet distance in the judge's features (lower is better)"),
    ("precision", "precision"),
    ("recall", "recall"),
)


def keep(name: str, run: Path, start: float) -> Path:
    """The run's evaluation records, as NAME.evaluations.jsonl."""
    records = [
        json.loads(line)
        for line in (run / "metrics.jsonl").read_text().splitlines()
        if line.strip() and json.loads(line).get("kind") == "evaluation"
    ]
    if not records:
        raise SystemExit(f"{run} has no evaluation records: train it with --eval-every")
    for record in records:
        record["branch_cpu_minutes"] = round(record["cpu_minutes"] - start, 3)
    KEPT.mkdir(parents=True, exist_ok=True)
    out = KEPT / f"{name}.evaluations.jsonl"
    out.write_text("".join(json.dumps(r) + "\n" for r in records))
    return out


def kept() -> dict[str, list[dict]]:
    return {
        path.name.removesuffix(".evaluations.jsonl"): [
            json.loads(line) for line in path.read_text().splitlines() if line.strip()
        ]
        for path in sorted(KEPT.glob("*.evaluations.jsonl"))
    }


def draw(branches: dict[str, list[dict]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    for axis, (key, title) in zip(axes.flat, FIGURES, strict=True):
        for name, records in branches.items():
            minutes = [r["branch_cpu_minutes"] for r in records]
            axis.plot(minutes, [r[key] for r in records], marker="o", markersize=3, label=name)
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("CPU-minutes after the branch point")
        axis.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(RESULTS / "longrun-branches.png", dpi=110)


def table(branches: dict[str, list[dict]]) -> str:
    rows = [
        "| branch | step | CPU-min after the branch point | accuracy | Fréchet | precision "
        "| recall |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, records in branches.items():
        for record in records:
            rows.append(
                f"| {name} | {record['step']:,} | {record['branch_cpu_minutes']:.1f} | "
                f"{record['accuracy']:.3f} | "
                f"{record['frechet_distance']:.3f} | {record['precision']:.3f} | "
                f"{record['recall']:.4f} |"
            )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="*", metavar="NAME=RUN[@CPU_MINUTES]")
    args = parser.parse_args()
    for item in args.runs:
        name, _, where = item.partition("=")
        run, _, start = where.partition("@")
        print(f"kept {keep(name, Path(run), float(start or 0))}")
    branches = kept()
    draw(branches)
    (RESULTS / "longrun-branches.md").write_text(
        "# Branches of the long run at equal CPU time\n\n"
        "Drawn by `python benchmarks/longrun_branches.py` from "
        "`longrun-branches/*.evaluations.jsonl` (each run's own `--eval-every` records: the "
        "judge, 100 per class, seeds 0-99, against the CIFAR-10 test split; a reduced "
        "protocol: compare within this table).\n\n"
        "![curves](longrun-branches.png)\n\n" + table(branches) + "\n"
    )
    print(f"-> {RESULTS / 'longrun-branches.md'}")


if __name__ == "__main__":
    main()
