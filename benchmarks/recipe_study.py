"""Recipe study: which CIFAR-10 recipe gives the best images for the same CPU time?

Every variant trains on one core (one TensorFlow thread, `taskset`), two at a time, until it
has used the same number of CPU-minutes of training (`cgan-train --cpu-minutes`, counted in
the checkpoint, so a rerun with a larger budget continues every variant where it stopped).
Checkpoints every 100 steps give the quality curve: the EMA generator at about every
EVAL_EVERY CPU-minutes is measured with the judge at a reduced protocol (250 per class,
seeds 0-249, against the CIFAR-10 test split). The judge never takes part in training.

    python benchmarks/recipe_study.py train --minutes 20      # all variants (resumes)
    python benchmarks/recipe_study.py evaluate                 # new checkpoints only
    python benchmarks/recipe_study.py report                   # docs/results/recipes.{md,png}
    make recipe-study STUDY_MINUTES=20                         # all three
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from study_runs import (
    checkpoints_to_measure,
    images_per_cpu_second,
    plot_curves,
    read_curve,
    train_command,
    train_two_at_a_time,
)

ROOT = Path(__file__).resolve().parents[1]
STUDY_DIR = ROOT / "runs" / "study"
RESULTS = ROOT / "docs" / "results"
CURVES = RESULTS / "recipes"
CIFAR10_TRAIN = ROOT.parent / "shared" / "datasets" / "cifar10" / "train"
CIFAR10_TEST = ROOT.parent / "shared" / "datasets" / "cifar10" / "test"
EVAL_EVERY = 4.0  # CPU-minutes between two points of a curve
SAMPLES_PER_CLASS = 250
COMMON = [
    "--batch-size",
    "64",
    "--ema-decay",
    "0.999",
    "--seed",
    "0",
    "--steps",
    "1000000",
    "--checkpoint-every",
    "100",
    "--keep-checkpoints",
    "100000",
    "--quiet",
]
SHIPPED = [
    "--arch",
    "sngan",
    "--g-channels",
    "64",
    "--d-channels",
    "32",
    "--g-lr",
    "2e-4",
    "--d-lr",
    "4e-4",
    "--beta1",
    "0.0",
    "--beta2",
    "0.9",
]


@dataclass(frozen=True)
class Variant:
    name: str
    why: str
    options: tuple[str, ...]

    def command(self, minutes: float) -> list[str]:
        new_run = ["--data", str(CIFAR10_TRAIN), *COMMON, *SHIPPED, *self.options]
        return train_command(STUDY_DIR / self.name, new_run, minutes)


# Each varies the shipped recipe (G 64 / D 32, TTUR 2e-4 / 4e-4, Adam(0, 0.9), batch 64,
# one D step) in what most likely fixes "the label barely changes the image" and "D cannot
# tell real from fake". Later options override earlier ones in argparse.
VARIANTS = (
    Variant("shipped", "the shipped recipe, as the reference", ()),
    Variant("aux", "+ AC-GAN class head on D (weight 1)", ("--aux-weight", "1.0")),
    Variant("d64", "wider D (64 channels)", ("--d-channels", "64")),
    Variant("aux-d64", "class head + wider D", ("--aux-weight", "1.0", "--d-channels", "64")),
    Variant(
        "aux-dsteps2",
        "class head + 2 D steps per G step",
        ("--aux-weight", "1.0", "--d-steps", "2"),
    ),
    Variant(
        "aux-batch32",
        "class head + batch 32 (twice the steps)",
        ("--aux-weight", "1.0", "--batch-size", "32"),
    ),
    Variant(
        "aux-g32",
        "class head + G 32 channels (cheaper G, more steps)",
        ("--aux-weight", "1.0", "--g-channels", "32"),
    ),
    Variant(
        "aux-lr2x",
        "class head + learning rates doubled (4e-4 / 8e-4)",
        ("--aux-weight", "1.0", "--g-lr", "4e-4", "--d-lr", "8e-4"),
    ),
    # Projected GAN on the winner (aux-batch32): D's heads read the frozen ImageNet network's
    # stage1-3 features of the images resized to 64x64 (training/models/projected.py; about
    # 1.18x the FLOPs of a step, 0.85x its images/s). Its ImageNet-feature figures are not
    # independent (cgan-eval marks them); the judge's are.
    Variant(
        "projected",
        "class head + batch 32 + projected D (frozen ImageNet stage1-3 at 64x64)",
        ("--aux-weight", "1.0", "--batch-size", "32", "--imagenet-projected"),
    ),
    Variant(
        "projected-diffaug",
        "projected + DiffAugment translation,color,cutout (the paper's setting)",
        (
            "--aux-weight",
            "1.0",
            "--batch-size",
            "32",
            "--imagenet-projected",
            "--diffaugment",
            "translation,color,cutout",
        ),
    ),
)


def train(variants: list[Variant], minutes: float) -> None:
    """Two variants at a time, each on its own core with one thread."""
    STUDY_DIR.mkdir(parents=True, exist_ok=True)
    train_two_at_a_time(
        [(v.name, v.command(minutes), STUDY_DIR / f"{v.name}.log") for v in variants]
    )


def evaluate(variants: list[Variant]) -> None:
    """Measure each chosen checkpoint once; results are cached in RUN/curve.json."""
    from cgan.training.runtime import quiet_tensorflow

    quiet_tensorflow()
    from cgan.common.images import to_uint8
    from cgan.evaluation import SHIPPED_JUDGE
    from cgan.evaluation.evaluate import Protocol, measure, real_samples, to_judge_indices
    from cgan.evaluation.judge import load_judge
    from cgan.export.exporter import restore_generator
    from cgan.inference.generator import noise_for_seed

    judge = load_judge(SHIPPED_JUDGE)
    protocol = Protocol(
        samples_per_class=SAMPLES_PER_CLASS,
        reference=str(CIFAR10_TEST),
        feature_network=judge.describe(),
    )
    ref_images, ref_classes = real_samples(CIFAR10_TEST, judge.labels, 10**9)
    ref_features, _ = judge.features_and_predictions(ref_images)
    seeds = range(SAMPLES_PER_CLASS)
    for variant in variants:
        run_dir = STUDY_DIR / variant.name
        if not (run_dir / "metrics.jsonl").is_file():
            continue
        curve_path = run_dir / "curve.json"
        curve = json.loads(curve_path.read_text()) if curve_path.is_file() else {}
        for step, minutes in checkpoints_to_measure(run_dir, EVAL_EVERY):
            if str(step) in curve:
                continue
            generator, config, _ = restore_generator(run_dir, checkpoint=f"ckpt-{step}")
            noise = np.stack([noise_for_seed(s, config.latent_dim) for s in seeds])
            images, classes = [], []
            for k in range(len(config.labels)):
                out = generator([noise, np.full(len(noise), k, np.int32)], training=False)
                images.append(to_uint8(np.asarray(out)))
                classes.append(np.full(len(noise), k))
            mapping = to_judge_indices(config.labels, judge.labels, "run")
            result = measure(
                np.concatenate(images),
                mapping[np.concatenate(classes)],
                (ref_features, ref_classes),
                judge,
                protocol,
            )
            result.pop("per_class")
            curve[str(step)] = {"step": step, "cpu_minutes": minutes, **result}
            print(
                f"{variant.name} step {step} ({minutes:.1f} CPU-min): "
                f"accuracy {result['accuracy']:.3f} frechet {result['frechet_distance']:.2f} "
                f"precision {result['precision']:.3f} recall {result['recall']:.3f}",
                flush=True,
            )
            curve_path.write_text(json.dumps(curve, indent=1) + "\n")
            kept = CURVES / f"{variant.name}.curve.json"  # committed: outlives the runs
            kept.parent.mkdir(parents=True, exist_ok=True)
            kept.write_text(curve_path.read_text())


def _curve(variant: Variant) -> list[dict]:
    return read_curve(
        STUDY_DIR / variant.name / "curve.json", CURVES / f"{variant.name}.curve.json"
    )


def report(variants: list[Variant]) -> None:
    panels = (
        ("accuracy", "judge accuracy (higher is better)"),
        ("frechet_distance", "Frechet distance, judge features (lower)"),
        ("precision", "precision (higher)"),
        ("recall", "recall (higher)"),
    )
    curves = [(v, c) for v in variants if (c := _curve(v))]
    plot_curves(
        [(v.name, c) for v, c in curves],
        panels,
        f"CIFAR-10 recipes at equal CPU time ({SAMPLES_PER_CLASS} samples per class "
        "vs the test split, EMA generator)",
        RESULTS / "recipes.png",
    )
    rows = [(v, c[-1]) for v, c in curves]
    rows.sort(key=lambda row: -row[1]["accuracy"])
    lines = [
        "# Recipe study: CIFAR-10 at equal CPU time",
        "",
        "Each variant changes the shipped recipe (SNGAN-projection, G 64 / D 32 channels, hinge "
        "loss, Adam(0, 0.9), G 2e-4 / D 4e-4, batch 64, one D step, EMA 0.999, seed 0) in one "
        "or two places, and trains on one CPU core (one TensorFlow thread) until it has used "
        "the same CPU time. Figures: the EMA generator at the last checkpoint, "
        f"{SAMPLES_PER_CLASS} samples per class (seeds 0-{SAMPLES_PER_CLASS - 1}) against the "
        "10,000 CIFAR-10 test images, measured by the project's judge (never used in "
        "training). Reduced protocol: compare within this table, not with model cards "
        "(1,000 per class). Curves: `recipes.png`.",
        "",
        "| variant | what changes | CPU-min | steps | images/CPU-s | accuracy | Frechet | "
        "precision | recall |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for variant, last in rows:
        lines.append(
            f"| {variant.name} | {variant.why} | {last['cpu_minutes']:.1f} | {last['step']} | "
            f"{images_per_cpu_second(STUDY_DIR / variant.name):.1f} | {last['accuracy']:.3f} | "
            f"{last['frechet_distance']:.2f} | {last['precision']:.3f} | {last['recall']:.3f} |"
        )
    lines += [
        "",
        "Rerun (resumes every variant; a larger MINUTES extends them all):",
        "",
        "    make recipe-study STUDY_MINUTES=20",
        "",
    ]
    (RESULTS / "recipes.md").write_text("\n".join(lines))
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("train", "evaluate", "report", "all"))
    parser.add_argument(
        "--minutes",
        type=float,
        default=20.0,
        help="CPU-minutes of training per variant (cumulative)",
    )
    parser.add_argument("--only", nargs="*", help="variant names (default: all)")
    args = parser.parse_args(argv)
    if not CIFAR10_TRAIN.is_dir():
        print(f"recipe_study: error: no CIFAR-10 at {CIFAR10_TRAIN}", file=sys.stderr)
        return 2
    chosen = [v for v in VARIANTS if not args.only or v.name in args.only]
    if args.action in ("train", "all"):
        train(chosen, args.minutes)
    if args.action in ("evaluate", "all"):
        evaluate(chosen)
    if args.action in ("report", "all"):
        report(chosen)
    return 0


if __name__ == "__main__":
    sys.exit(main())
