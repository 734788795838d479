"""Own-classes study: what does a person get from a few hundred photographs per class, and
which recipe gives it for the least CPU time?

Three Imagenette classes (real ImageNet photographs, the stand-in for a crawl) at the original
project's scale, 400 training images each, built with `cgan-scrape build` as a crawl would be;
the validation split (about 390 per class) is the reference. Every variant trains on one core
(one TensorFlow thread, `taskset`), two at a time, until it has used the same CPU-minutes
(`--cpu-minutes`, counted in the checkpoint: a larger budget continues every variant where
it stopped). Checkpoints every 100 steps give the curves: the EMA generator at about every
EVAL_EVERY CPU-minutes is measured in the ImageNet network's features (cgan.evaluation.
class_folder, a reduced protocol: SAMPLES_PER_CLASS per class against the validation split),
with the probe judge fitted on the training split. Nothing measured here takes part in
training, but the projected discriminators read the same network: their figures are marked.

    python benchmarks/own_classes.py prepare                  # the datasets (once)
    python benchmarks/own_classes.py train                    # every variant (resumes)
    python benchmarks/own_classes.py evaluate                 # new checkpoints only
    python benchmarks/own_classes.py report                   # docs/results/own-classes.{md,png}
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
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
IMAGENETTE = ROOT.parent / "shared" / "datasets" / "imagenette"
CLASSES = ("church", "english_springer", "garbage_truck")
TRAIN_PER_CLASS = 400
DATA = Path("data")  # relative to ROOT: the runs' config.toml records these paths
STUDY_DIR = ROOT / "runs" / "own-classes"
RESULTS = ROOT / "docs" / "results"
CURVES = RESULTS / "own-classes"
LONG_RUN = Path("longruns") / "cifar10"  # the run the small-data recipe starts from
EVAL_EVERY = 10.0  # CPU-minutes between two points of a curve
# CPU-minutes each variant trains, by resolution: a 32x32 image costs about a quarter.
BUDGET = {64: 60.0, 32: 30.0}
SAMPLES_PER_CLASS = 300
GRID_SEEDS = range(8)
COMMON = (
    "--seed", "0", "--steps", "1000000", "--checkpoint-every", "100",
    "--keep-checkpoints", "100000", "--quiet",
)  # fmt: skip
AUGMENT = ("--diffaugment", "translation,color,cutout")
# The labels nearest in meaning among the shipped model's CIFAR-10 classes; church has none.
TRANSFER = (
    "--init-from",
    str(LONG_RUN),
    "--init-labels",
    "english_springer=dog,garbage_truck=truck",
)


def train_folder(resolution: int) -> Path:
    return DATA / f"own-{resolution}"


def val_folder(resolution: int) -> Path:
    return DATA / f"own-val-{resolution}"


@dataclass(frozen=True)
class Variant:
    name: str
    why: str
    resolution: int
    options: tuple[str, ...]

    def command(self, minutes: float) -> list[str]:
        data = ["--data", str(train_folder(self.resolution)), "--resolution", str(self.resolution)]
        new_run = ["--preset", "cifar10", *data, *COMMON, *self.options]
        return train_command(STUDY_DIR / self.name, new_run, minutes)


VARIANTS = (
    Variant(
        "scratch-64",
        "today's README command: cifar10 preset from scratch, DiffAugment t,c,c",
        64,
        AUGMENT,
    ),
    Variant(
        "projected-64",
        "from scratch, projected D (frozen ImageNet stage1-3), DiffAugment t,c,c",
        64,
        (*AUGMENT, "--imagenet-projected"),
    ),
    Variant(
        "transfer-64",
        "G, EMA G and D from the shipped model's run, G grown to 64, DiffAugment t,c,c",
        64,
        (*AUGMENT, *TRANSFER),
    ),
    Variant(
        "transfer-projected-64",
        "G from the shipped model's run (grown), projected D, DiffAugment t,c,c",
        64,
        (*AUGMENT, *TRANSFER, "--imagenet-projected"),
    ),
    Variant("scratch-32", "as scratch-64, at 32x32", 32, AUGMENT),
    Variant("projected-32", "as projected-64, at 32x32", 32, (*AUGMENT, "--imagenet-projected")),
    Variant(
        "transfer-32",
        "G, EMA G and D from the shipped model's run as they are (32x32), DiffAugment t,c,c",
        32,
        (*AUGMENT, *TRANSFER),
    ),
    Variant(
        "transfer-projected-32",
        "G from the shipped model's run, projected D, DiffAugment t,c,c, at 32x32",
        32,
        (*AUGMENT, *TRANSFER, "--imagenet-projected"),
    ),
)


def prepare() -> None:
    """The train and validation class folders at 32 and 64 px, through cgan-scrape build."""
    if not IMAGENETTE.is_dir():
        raise SystemExit(f"own_classes: error: no Imagenette at {IMAGENETTE}")
    for split, per_class, src in (
        ("train", TRAIN_PER_CLASS, ROOT / DATA / "own-src"),
        ("val", None, ROOT / DATA / "own-val-src"),
    ):
        for label in CLASSES:
            folder = src / label
            if folder.is_dir():
                continue
            folder.mkdir(parents=True)
            files = sorted((IMAGENETTE / split / label).iterdir())[:per_class]
            for path in files:  # copies: the build refuses links out of its folder
                shutil.copyfile(path, folder / path.name)
        for resolution in (32, 64):
            out = train_folder(resolution) if split == "train" else val_folder(resolution)
            if (ROOT / out).is_dir():
                continue
            command = [sys.executable, "-m", "cgan.scraping.cli", "build"]
            command += ["--src", str(src), "--out", str(out)]
            command += ["--size", str(resolution), "--quiet"]
            subprocess.run(command, cwd=ROOT, check=True)


def train(variants: list[Variant], minutes: float | None) -> None:
    """Every variant to `minutes` of CPU time, or to its resolution's BUDGET."""
    STUDY_DIR.mkdir(parents=True, exist_ok=True)
    train_two_at_a_time(
        [
            (v.name, v.command(minutes or BUDGET[v.resolution]), STUDY_DIR / f"{v.name}.log")
            for v in variants
        ]
    )


def _samples(run_dir: Path, step: int, seeds) -> tuple[np.ndarray, np.ndarray, dict]:
    """The EMA generator's images for every class and seed, and the run's config."""
    from cgan.common.images import to_uint8
    from cgan.export.exporter import restore_generator
    from cgan.inference.generator import noise_for_seed

    generator, config, _ = restore_generator(run_dir, checkpoint=f"ckpt-{step}")
    noise = np.stack([noise_for_seed(s, config.latent_dim) for s in seeds])
    images, classes = [], []
    for k in range(len(config.labels)):
        out = generator([noise, np.full(len(noise), k, np.int32)], training=False)
        images.append(to_uint8(np.asarray(out)))
        classes.append(np.full(len(noise), k))
    return np.concatenate(images), np.concatenate(classes), config.to_dict()


class JudgeFeatureView:
    """An independent check of the ImageNet-feature figures: the CIFAR-10 judge's features
    (a network no variant trained against), images at its 32x32. A linear probe fitted on
    the training split's judge features, and the Fréchet distance to the validation split's;
    the probe's accuracy on the validation images is its ceiling."""

    def __init__(self, resolution: int) -> None:
        from cgan.evaluation import SHIPPED_JUDGE
        from cgan.evaluation.judge import load_judge
        from cgan.evaluation.probe import ProbeJudge
        from cgan.training.data import load_folder

        self.judge = load_judge(SHIPPED_JUDGE)
        train = load_folder(ROOT / train_folder(resolution), resolution)
        val = load_folder(ROOT / val_folder(resolution), resolution)
        train_features = self.features(train.images)
        self.probe = ProbeJudge(train_features, train.labels, len(train.names))
        self.val_features, self.val_classes = self.features(val.images), val.labels
        self.ceiling = float(np.mean(self.probe.predict(self.val_features) == val.labels))

    def features(self, images: np.ndarray) -> np.ndarray:
        from cgan.evaluation.evaluate import at_judge_resolution

        return self.judge.features_and_predictions(at_judge_resolution(images))[0]

    def measure(self, images: np.ndarray, classes: np.ndarray) -> dict:
        from cgan.evaluation.metrics import frechet_distance

        features = self.features(images)
        accuracy = float(np.mean(self.probe.predict(features) == classes))
        return {
            "judge_probe_accuracy": round(accuracy, 4),
            "judge_frechet_distance": round(frechet_distance(features, self.val_features), 3),
        }


def evaluate(variants: list[Variant]) -> None:
    """Measure each chosen checkpoint once; results are cached in RUN/curve.json and kept
    in docs/results/own-classes/ (committed: they outlive the runs)."""
    from cgan.training.runtime import quiet_tensorflow

    quiet_tensorflow()
    from cgan.common.images import make_grid
    from cgan.evaluation.class_folder import FolderJudge
    from cgan.evaluation.feature_cache import default_cache_dir
    from cgan.evaluation.imagenet_view import imagenet_in_training

    judges: dict[int, FolderJudge] = {}
    views: dict[int, JudgeFeatureView] = {}
    for variant in variants:
        run_dir = STUDY_DIR / variant.name
        if not (run_dir / "metrics.jsonl").is_file():
            continue
        if variant.resolution not in judges:
            judges[variant.resolution] = FolderJudge(
                ROOT / val_folder(variant.resolution),
                ROOT / train_folder(variant.resolution),
                variant.resolution,
                cache_dir=default_cache_dir(),
            )
            views[variant.resolution] = JudgeFeatureView(variant.resolution)
        judge, view = judges[variant.resolution], views[variant.resolution]
        curve_path = run_dir / "curve.json"
        curve = json.loads(curve_path.read_text()) if curve_path.is_file() else {}
        chosen = checkpoints_to_measure(run_dir, EVAL_EVERY)
        for step, minutes in chosen:
            if "judge_probe_accuracy" in curve.get(str(step), {}):
                continue
            images, classes, config = _samples(run_dir, step, range(SAMPLES_PER_CLASS))
            assert config["labels"] == judge.labels, (config["labels"], judge.labels)
            if str(step) not in curve:
                result = judge.measure_images(
                    images, classes, imagenet_in_training({"training_config": config})
                )
                result.pop("per_class")
                curve[str(step)] = {"step": step, "cpu_minutes": minutes, **result}
            curve[str(step)].update(view.measure(images, classes))
            curve[str(step)]["judge_probe_accuracy_reference"] = round(view.ceiling, 4)
            entry = curve[str(step)]
            print(
                f"{variant.name} step {step} ({minutes:.1f} CPU-min): probe accuracy "
                f"{entry['probe_accuracy']:.3f} frechet {entry['imagenet_frechet_distance']:.2f} "
                f"precision {entry['imagenet_precision']:.3f} recall "
                f"{entry['imagenet_recall']:.3f}; judge features: probe "
                f"{entry['judge_probe_accuracy']:.3f} "
                f"frechet {entry['judge_frechet_distance']:.2f}",
                flush=True,
            )
            curve_path.write_text(json.dumps(curve, indent=1) + "\n")
            CURVES.mkdir(parents=True, exist_ok=True)
            (CURVES / f"{variant.name}.curve.json").write_text(curve_path.read_text())
        if chosen:  # the grid a person looks at: the newest measured checkpoint
            step = chosen[-1][0]
            images, _, config = _samples(run_dir, step, GRID_SEEDS)
            grid = make_grid(images, len(config["labels"]), scale=2, row_labels=config["labels"])
            grid.save(CURVES / f"{variant.name}.png")


def _curve(variant: Variant) -> list[dict]:
    return read_curve(
        STUDY_DIR / variant.name / "curve.json", CURVES / f"{variant.name}.curve.json"
    )


def _real_ceiling(resolution: int) -> dict:
    """The real training images measured as a model would be (cached features): the floor
    of the distance and the ceiling of the probe."""
    from cgan.evaluation.class_folder import FolderJudge, evaluate_real_folder
    from cgan.evaluation.feature_cache import default_cache_dir
    from cgan.training.data import load_folder

    judge = FolderJudge(
        ROOT / val_folder(resolution), ROOT / train_folder(resolution), resolution,
        cache_dir=default_cache_dir(),
    )  # fmt: skip
    real = evaluate_real_folder(ROOT / train_folder(resolution), judge, SAMPLES_PER_CLASS)
    view = JudgeFeatureView(resolution)
    train = load_folder(ROOT / train_folder(resolution), resolution)
    keep = np.concatenate(
        [np.flatnonzero(train.labels == k)[:SAMPLES_PER_CLASS] for k in range(len(train.names))]
    )
    real.update(view.measure(train.images[keep], train.labels[keep]))
    real["judge_probe_accuracy_reference"] = round(view.ceiling, 4)
    return real


def _plot_name(resolution: int) -> str:
    return "own-classes.png" if resolution == 64 else f"own-classes-{resolution}.png"


def _resolution_section(resolution: int, variants: list[Variant]) -> list[str]:
    """The curves' picture and the table of one resolution (variants at equal CPU time)."""
    panels = (
        ("probe_accuracy", "probe-judge accuracy (higher is better)"),
        ("imagenet_frechet_distance", "Frechet distance, ImageNet features (lower)"),
        ("imagenet_precision", "precision (higher)"),
        ("imagenet_recall", "recall (higher)"),
    )
    curves = [(v, c) for v in variants if v.resolution == resolution and (c := _curve(v))]
    if not curves:
        return []
    picture = RESULTS / _plot_name(resolution)
    axes = plot_curves(
        [(v.name, c) for v, c in curves],
        panels,
        f"Three Imagenette classes, {TRAIN_PER_CLASS} photos each, {resolution}x{resolution}: "
        f"recipes at equal CPU time\n({SAMPLES_PER_CLASS} samples per class vs the validation "
        "split, EMA generator; dotted: real training images)",
        picture,
    )
    real = _real_ceiling(resolution)
    axes[0].axhline(real["probe_accuracy_reference"], color="grey", linestyle=":")
    axes[1].axhline(real["imagenet_frechet_distance"], color="grey", linestyle=":")
    axes[0].figure.savefig(picture, dpi=90)
    lines = [
        f"## {resolution}x{resolution}",
        "",
        f"Curves: `{picture.name}`.",
        "",
        "| variant | what | CPU-min | steps | images/CPU-s | probe accuracy | Frechet | "
        "precision | recall | independent | judge-feature probe | judge-feature Frechet |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for variant, curve in curves:
        last = curve[-1]
        lines.append(
            f"| {variant.name} | {variant.why} | {last['cpu_minutes']:.1f} | {last['step']} | "
            f"{images_per_cpu_second(STUDY_DIR / variant.name):.1f} | "
            f"{last['probe_accuracy']:.3f} | {last['imagenet_frechet_distance']:.2f} | "
            f"{last['imagenet_precision']:.3f} | {last['imagenet_recall']:.3f} | "
            f"{'yes' if last['imagenet_independent'] else 'no'} | "
            f"{last['judge_probe_accuracy']:.3f} | {last['judge_frechet_distance']:.2f} |"
        )
    lines.append(
        f"| real training images | the ceiling | | | | {real['probe_accuracy_reference']:.3f} "
        f"(validation) | {real['imagenet_frechet_distance']:.2f} | "
        f"{real['imagenet_precision']:.3f} | {real['imagenet_recall']:.3f} | | "
        f"{real['judge_probe_accuracy_reference']:.3f} (validation) | "
        f"{real['judge_frechet_distance']:.2f} |"
    )
    return [*lines, ""]


def report(variants: list[Variant]) -> None:
    lines = [
        "# Own classes: three Imagenette classes at equal CPU time",
        "",
        f"{TRAIN_PER_CLASS} training photographs per class ({', '.join(CLASSES)}), built with "
        "`cgan-scrape build` at 32x32 and 64x64; every variant trains on one CPU core (one "
        "TensorFlow thread) until it has used the same CPU time as the others of its "
        "resolution. Figures: the EMA generator at the last checkpoint, "
        f"{SAMPLES_PER_CLASS} samples per class (seeds 0-{SAMPLES_PER_CLASS - 1}) against the "
        "validation split (about 390 per class) read at the model's resolution, in the "
        "ImageNet network's pooled features; the probe judge is a linear classifier fitted on "
        "the training split's features. Reduced protocol: compare within a table. Variants "
        "with a projected discriminator read the same network in training: their figures are "
        "not independent. The last two columns are independent of every variant: the same "
        "probe and distance in the features of the CIFAR-10 judge (a small classifier trained "
        "on CIFAR-10 only, images at 32x32). Grids: `own-classes/<variant>.png`.",
        "",
    ]
    for resolution in (64, 32):
        lines += _resolution_section(resolution, variants)
    lines += [
        "Rerun (resumes every variant; --minutes M extends them all to M):",
        "",
        "    python benchmarks/own_classes.py prepare",
        "    python benchmarks/own_classes.py train    # 60 CPU-minutes at 64x64, 30 at 32x32",
        "    python benchmarks/own_classes.py evaluate",
        "    python benchmarks/own_classes.py report",
        "",
    ]
    (RESULTS / "own-classes.md").write_text("\n".join(lines))
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("prepare", "train", "evaluate", "report", "all"))
    parser.add_argument(
        "--minutes",
        type=float,
        help="CPU-minutes of training per variant (default: 60 at 64x64, 30 at 32x32)",
    )
    parser.add_argument("--only", nargs="*", help="variant names (default: all)")
    args = parser.parse_args(argv)
    chosen = [v for v in VARIANTS if not args.only or v.name in args.only]
    if args.action in ("prepare", "all"):
        prepare()
    if args.action in ("train", "all"):
        train(chosen, args.minutes)
    if args.action in ("evaluate", "all"):
        evaluate(chosen)
    if args.action in ("report", "all"):
        report(chosen)
    return 0


if __name__ == "__main__":
    sys.exit(main())
