"""Run configuration: defaults, presets, and the TOML file saved in every run directory."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from cgan.common.errors import TrainingError
from cgan.common.labels import labels_problem
from cgan.common.records import MANIFEST_NAME
from cgan.common.run_dir import RunDir
from cgan.training.data import find_images
from cgan.training.models.spec import (
    ARCHS,
    AUGMENT_POLICIES,
    PROJECTED_ENDPOINTS,
    PROJECTED_MIXINGS,
    PROJECTED_SIZES,
    RESOLUTIONS,
    ModelSpec,
    projected_endpoints_problem,
    projected_mixing_problem,
    projected_size_problem,
)
from cgan.training.precision import PRECISIONS
from cgan.training.shapes import MAX_CLASSES

OPTION = "option"  # the key of a TrainConfig field's metadata
# The figures --keep-best can rank snapshots by (cgan.evaluation.snapshot.FIGURES).
BEST_FIGURES = ("fd", "accuracy", "precision", "recall")


@dataclass(frozen=True)
class Option:
    """How one TrainConfig field is set and checked. cgan-train's options, validate_config's
    ranges and the resume rule are all made from these, so a new knob is declared once."""

    help: str | None = None  # the --flag's help; None: set by the program, no option
    low: float | None = None  # inclusive bounds of a number
    high: float | None = None
    above: float | None = None  # exclusive bounds (rates, decays)
    below: float | None = None
    choices: tuple[Any, ...] | None = None
    structural: bool = False  # weights' shapes or labels' meaning: a resume must keep it
    metavar: str | None = None
    group: str | None = None  # the --help section
    parse: Callable[[str], Any] | None = None  # text -> value, where the type's won't do


def option(default: Any, help: str | None = None, **rules: Any) -> Any:
    """A TrainConfig field with its Option."""
    metadata = {OPTION: Option(help=help, **rules)}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def _comma_list(text: str) -> str:
    """'stage1, stage2' -> 'stage1,stage2': one spelling, so a resume compares equal."""
    return ",".join(part.strip() for part in text.split(",") if part.strip())


TRANSFER = "start from a trained run (few images per class)"
MEASURED = "quality figures during training"


@dataclass
class TrainConfig:
    """Every knob of a run. Saved as config.toml so a run can be resumed and exported."""

    preset: str = option("cifar10")  # cgan-train --preset, checked against PRESETS
    data: str = option(
        "cifar10",
        "cifar10, synthetic, a class-folder path, or a records folder (cgan-prepare) "
        "streamed from disk for sets larger than memory (a resume may read the same "
        "classes from another copy)",
    )
    arch: str = option(
        "sngan", "sngan (default) or the dcgan baseline", choices=ARCHS, structural=True
    )
    resolution: int = option(32, "image side", choices=RESOLUTIONS, structural=True)
    latent_dim: int = option(128, "noise size", low=1, high=4096, structural=True)
    g_channels: int = option(64, "generator width", low=1, high=2048, structural=True)
    d_channels: int = option(64, "discriminator width", low=1, high=2048, structural=True)
    embed_dim: int = option(50, None, low=1, high=4096, structural=True)  # dcgan's label embedding
    batch_size: int = option(64, "global batch size", low=1, high=65_536)
    steps: int = option(100_000, "total generator steps of the run", low=1, high=10**9)
    g_lr: float = option(2e-4, "generator learning rate", above=0, high=1)
    d_lr: float = option(2e-4, "discriminator learning rate", above=0, high=1)
    beta1: float = option(0.0, "Adam's beta1", low=0, below=1)
    beta2: float = option(0.999, "Adam's beta2", low=0, below=1)
    d_steps: int = option(1, "D updates per G update", low=1, high=100)
    d_pretrain_steps: int = option(
        0, "D-only warm-up updates before the GAN loop (default 0)", low=0, high=10**9
    )
    ema_decay: float = option(0.999, "decay of the EMA generator", above=0, below=1)
    # SNGAN's schedule: training ends where the rates reach zero.
    lr_decay_start: int = option(
        0,
        "generator step where both learning rates start their linear decay",
        low=0,
        high=10**9,
        metavar="STEP",
    )
    lr_decay_steps: int = option(
        0,
        "decay both learning rates linearly to zero over N steps from --lr-decay-start; "
        "training ends there (0 = constant rates, the default)",
        low=0,
        high=10**9,
        metavar="N",
    )
    aux_weight: float = option(
        0.0,
        "weight of D's auxiliary class head (AC-GAN loss beside the projection; sngan only; "
        "0 = off, the default)",
        low=0,
        high=1e6,
    )
    # The head's pull on G sharpens class identity and narrows the spread within a class.
    aux_g_scale: float = option(
        1.0,
        "the generator's class loss as a share of --aux-weight (default 1: the same weight "
        "as the discriminator's; 0.5 halves the head's pull on G only)",
        low=0,
        high=1e6,
    )
    imagenet_projected: bool = option(
        False,
        "a projected discriminator (Projected GAN): small heads on the early features of the "
        "frozen ImageNet network (EfficientNet-Lite0; needs the imagenet extra); sngan only; "
        "the exported model says so and cgan-eval marks ImageNet-feature figures as not "
        "independent",
        structural=True,
    )
    projected_size: int = option(
        64,
        f"side the images are resized to for that network ({PROJECTED_SIZES[0]}-"
        f"{PROJECTED_SIZES[1]}; default 64)",
        structural=True,
    )
    projected_endpoints: str = option(
        "stage1,stage2,stage3",
        "its feature maps the heads read, comma-separated, in network order "
        f"({', '.join(PROJECTED_ENDPOINTS)}; default stage1,stage2,stage3)",
        structural=True,
        metavar="NAMES",
        parse=_comma_list,
    )
    projected_mixing: str = option(
        "scales",
        "fixed random 1x1 mixing of the features: across channels and scales (scales, the "
        "default), across channels only, or none",
        choices=PROJECTED_MIXINGS,
        structural=True,
    )
    init_from: str = option(
        "",
        "start G, D and the EMA generator from that run's newest checkpoint (sngan, same G "
        "width and latent size; 32x32 -> 64x64 grows G by one block); new labels take the "
        "rows of source labels of the same name, or --init-labels",
        metavar="RUN_DIR",
        group=TRANSFER,
    )
    init_labels: str = option(
        "",
        "which source label each new label starts from (english_springer=dog); unnamed, "
        "unmatched labels start from the mean of the source's",
        metavar="NEW=OLD,...",
        group=TRANSFER,
    )
    init_source: str = option("")  # set by the trainer: the source's checkpoint, for the card
    freeze_d_blocks: int = option(
        0,
        "keep D's first N blocks frozen (FreezeD; pixel D only; default 0)",
        low=0,
        high=100,
        metavar="N",
        group=TRANSFER,
    )
    cpu_minutes: float = option(
        0.0,
        "stop with a checkpoint once the run has used this much CPU time in training, "
        "summed over resumes (0 = no limit)",
        low=0,
        high=1e9,
    )
    diffaugment: str = option(
        "",
        "comma-separated subset of translation,color,cutout ('' = off)",
        metavar="POLICIES",
        parse=_comma_list,
    )
    seed: int = option(0, "random seed of weights, data order and noise", low=0, high=2**32 - 1)
    precision: str = option(
        "auto",
        "compute dtype policy: auto (float32, the start line says why), float32, "
        "mixed_bfloat16 (CPUs with bfloat16 instructions), mixed_float16 (GPUs, loss scaling)",
        choices=PRECISIONS,
        structural=True,
    )
    multi_worker: bool = option(
        False, "MultiWorkerMirroredStrategy; the cluster comes from TF_CONFIG"
    )
    log_every: int = option(50, "steps between metric records", low=1, high=10**9)
    checkpoint_every: int = option(500, "steps between checkpoints", low=1, high=10**9)
    keep_checkpoints: int = option(3, "how many checkpoints to keep", low=1, high=10**6)
    eval_every: int = option(
        0,
        "measure the EMA generator every N steps (a checkpoint is saved there too) and write "
        "its figures to metrics.jsonl: the judge's on CIFAR-10's classes, the probe judge's "
        "and ImageNet features' on any other class folder (0 = off)",
        low=0,
        high=10**9,
        metavar="N",
        group=MEASURED,
    )
    eval_samples: int = option(  # the snapshot meter wants 2 (a covariance) when it is built
        100, "images per class (default 100)", low=1, high=10_000, metavar="K", group=MEASURED
    )
    eval_reference: str = option(
        "",
        "real images to compare with, a class folder such as the validation split "
        "(default: the training data)",
        metavar="FOLDER",
        group=MEASURED,
    )
    keep_best: str = option(
        "",
        "keep the best measured snapshot in RUN/best/ (cgan-export --checkpoint best)",
        choices=("", *BEST_FIGURES),
        group=MEASURED,
    )
    plateau_evaluations: int = option(
        5,
        "warn at the end when the --keep-best figure has not improved for K evaluations "
        "(default 5)",
        low=1,
        high=10_000,
        metavar="K",
        group=MEASURED,
    )
    samples_per_class: int = option(8, None, low=1, high=64)  # sample grid columns
    synthetic_classes: int = option(10, None, low=1, high=MAX_CLASSES)  # the synthetic shapes
    # The whole set is made in memory (data.SYNTHETIC_BYTES bounds it when it is made).
    synthetic_per_class: int = option(200, None, low=1, high=100_000)
    labels: list[str] = option([], structural=True)  # set from the data

    def model_spec(self) -> ModelSpec:
        return ModelSpec(
            arch=self.arch,
            resolution=self.resolution,
            num_classes=len(self.labels),
            latent_dim=self.latent_dim,
            g_channels=self.g_channels,
            d_channels=self.d_channels,
            embed_dim=self.embed_dim,
            aux_classifier=self.aux_weight > 0,
            projected=self.imagenet_projected,
            projected_size=self.projected_size,
            projected_endpoints=self.projected_endpoint_names,
            projected_mixing=self.projected_mixing,
        )

    def learning_rate_scale(self, step: int) -> float:
        """The factor on g_lr and d_lr for the update after `step` generator steps."""
        if self.lr_decay_steps == 0 or step <= self.lr_decay_start:
            return 1.0
        return max(0.0, 1.0 - (step - self.lr_decay_start) / self.lr_decay_steps)

    def is_snapshot(self, step: int) -> bool:
        """Whether step is measured (eval_every); every worker saves a checkpoint there."""
        return self.eval_every > 0 and step > 0 and step % self.eval_every == 0

    @property
    def final_step(self) -> int:
        """Where training ends: `steps`, or sooner where a decay brings the rates to zero."""
        if self.lr_decay_steps == 0:
            return self.steps
        return min(self.steps, self.lr_decay_start + self.lr_decay_steps)

    @property
    def projected_endpoint_names(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.projected_endpoints.split(",") if p.strip())

    @property
    def augmentations(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.diffaugment.split(",") if p.strip())

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def options() -> dict[str, Option]:
    """Every TrainConfig field's Option, by field name."""
    return {f.name: f.metadata[OPTION] for f in dataclasses.fields(TrainConfig)}


# Fields that decide the shape of weights or the meaning of labels: a resumed run must keep
# them, everything else (steps, learning rates, logging) may change. The data may move (a
# copy elsewhere, more photos): the labels it gives must equal the run's (loop.py checks).
STRUCTURAL_FIELDS = tuple(name for name, rule in options().items() if rule.structural)

PRESETS: dict[str, dict[str, Any]] = {
    # The shipped model's recipe, the winner of the recipe study at equal CPU time
    # (docs/results/recipes.md): SNGAN-projection with an AC-GAN class head on D, a thin D,
    # two time-scale Adam(0, 0.9), batch 32. What `make train` and the long run use.
    "cifar10": dict(
        data="cifar10",
        arch="sngan",
        resolution=32,
        batch_size=32,
        steps=1_000_000,
        g_channels=64,
        d_channels=32,
        g_lr=2e-4,
        d_lr=4e-4,
        beta1=0.0,
        beta2=0.9,
        aux_weight=1.0,
        ema_decay=0.999,
        log_every=50,
        checkpoint_every=1000,
        keep_checkpoints=2,
        # The judge's figures at every checkpoint, the best (by Fréchet distance) kept:
        # about 2% of the training's CPU time (docs/results/README.md).
        eval_every=1000,
        keep_best="fd",
    ),
    # The same recipe at the published GPU scale of SNGAN/BigGAN on CIFAR-10 (G 256 / D 128,
    # two D steps, batch 64, a slower EMA). Not run on these CPU-only machines.
    "cifar10-gpu": dict(
        data="cifar10",
        arch="sngan",
        resolution=32,
        batch_size=64,
        steps=100_000,
        g_channels=256,
        d_channels=128,
        g_lr=2e-4,
        d_lr=2e-4,
        beta1=0.0,
        beta2=0.999,
        d_steps=2,
        aux_weight=1.0,
        ema_decay=0.9999,
        log_every=100,
        checkpoint_every=2000,
        keep_checkpoints=3,
        eval_every=2000,
        keep_best="fd",
    ),
    # About a minute on a 2-core CPU: the synthetic shapes, a complete run directory.
    "smoke": dict(
        data="synthetic",
        arch="sngan",
        resolution=32,
        batch_size=32,
        steps=240,
        g_channels=32,
        d_channels=32,
        latent_dim=32,
        embed_dim=16,
        g_lr=5e-4,
        d_lr=5e-4,
        beta1=0.0,
        beta2=0.9,
        ema_decay=0.99,
        log_every=20,
        checkpoint_every=80,
        synthetic_classes=10,
        synthetic_per_class=64,
        samples_per_class=6,
    ),
}


# A few hundred photographs per class, the winner of docs/results/own-classes.md: the cifar10
# recipe at 64x64 with every DiffAugment policy and a projected discriminator, G started from
# the shipped model's run (make_config adds it where the source checkout has it), for a fixed
# CPU budget. Chosen by itself for class folders with fewer than SMALL_DATA_PER_CLASS images
# per class.
PRESETS["small-data"] = {
    **PRESETS["cifar10"],
    "resolution": 64,
    "cpu_minutes": 60.0,
    "diffaugment": "translation,color,cutout",
    "imagenet_projected": True,
    "checkpoint_every": 100,
    "eval_every": 200,  # 300 images through the ImageNet network: about 2.5% of training
}


# The CIFAR-10 long run (pixel discriminator, step 39,250) in a source checkout: the
# small-data recipe starts from it, as measured in docs/results/own-classes.md. The shipped
# model has since moved on to its projected-discriminator branch (cifar10-projected).
SHIPPED_RUN = Path(__file__).resolve().parents[1] / "longruns" / "cifar10"
# Fewer real images per class than this: the small-data recipe is chosen by itself.
SMALL_DATA_PER_CLASS = 2000


def shipped_run_start(overrides: dict[str, Any]) -> str:
    """The shipped model's run as the small-data recipe's start, or "" where it cannot be:
    not in this installation, or the user asked for another shape or start."""
    if "init_from" in overrides or not (SHIPPED_RUN / "config.toml").is_file():
        return ""
    if any(name in overrides for name in ("arch", "g_channels", "latent_dim")):
        return ""
    return str(SHIPPED_RUN)


def choose_preset(data: str | None) -> tuple[str, str | None]:
    """The preset for a new run given without --preset, and the line that says why (None
    for the default on CIFAR-10 or synthetic data)."""
    if data in (None, "cifar10", "synthetic") or not Path(data).is_dir():
        return "cifar10", None
    if (Path(data) / MANIFEST_NAME).is_file():  # a records folder: sized for large sets
        return "cifar10", None
    counts = [len(files) for files in find_images(Path(data)).values()]
    size = f"{sum(counts):,} images in {len(counts)} classes, {min(counts):,} in the smallest"
    if min(counts) >= SMALL_DATA_PER_CLASS:
        return "cifar10", f"recipe: cifar10 ({size}); --preset to choose another"
    return "small-data", (
        f"recipe: small-data ({size}, fewer than {SMALL_DATA_PER_CLASS:,} per class): "
        "docs/results/own-classes.md; --preset cifar10 for the CIFAR-10 recipe"
    )


def make_config(preset: str, overrides: dict[str, Any]) -> TrainConfig:
    """A preset's values with the user's explicit choices on top."""
    if preset not in PRESETS:
        raise TrainingError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    values = {**PRESETS[preset], **overrides, "preset": preset}
    if preset == "small-data" and "init_from" not in overrides:
        values["init_from"] = shipped_run_start(overrides)
    # The preset's AC-GAN head is an sngan option: it does not follow an explicit switch to
    # the dcgan baseline (asking for both by name is still refused by validate_config).
    if values["arch"] != "sngan" and "aux_weight" not in overrides:
        values["aux_weight"] = 0.0
    # --eval-every 0 turns the preset's measuring off, and with it the best it would keep.
    if values.get("eval_every") == 0 and "keep_best" not in overrides:
        values["keep_best"] = ""
    return TrainConfig(**values)


def save_config(config: TrainConfig, run_dir: Path) -> None:
    RunDir(run_dir).write_config_text(tomli_w.dumps(config.to_dict()))


def load_config(run_dir: Path) -> TrainConfig:
    """The run's saved config, every value checked: the file may be damaged or hand-edited."""
    run = RunDir(run_dir)
    path = run.config
    values = run.read_config()
    if "mixed_precision" in values:  # runs saved before --precision: the same meaning
        legacy = values.pop("mixed_precision")
        values.setdefault("precision", "mixed_float16" if legacy is True else "float32")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise TrainingError(f"{path} has unknown keys: {', '.join(unknown)}")
    for name in ("labels",):
        if name not in values:
            raise TrainingError(f"{path}: {name} is missing")
    config = TrainConfig(**values)
    validate_config(config, where=f"{path}: ")
    if not config.labels:
        raise TrainingError(f"{path}: labels is empty")
    problem = labels_problem(config.labels)
    if problem:  # the names become file names and a model's metadata: the exporter's rule
        raise TrainingError(f"{path}: labels: {problem}")
    return config


def _number(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"


def range_problem(value: Any, rule: Option) -> str | None:
    """What is wrong with a (well-typed) value by its Option's bounds and choices."""
    if rule.choices is not None:
        if value in rule.choices:
            return None
        named = ", ".join(str(c) for c in rule.choices if c != "")
        return f"must be one of {named}" if isinstance(value, int) else f"choose one of {named}"
    low, high, above, below = rule.low, rule.high, rule.above, rule.below
    lower_ok = (low is None or value >= low) and (above is None or value > above)
    if lower_ok and (high is None or value <= high) and (below is None or value < below):
        return None
    if low == 0 and value < 0:
        return "must not be negative"
    if low is not None and high is not None:
        return f"must be between {_number(low)} and {_number(high)}"
    if above is not None and below is not None:
        return f"must be between {_number(above)} and {_number(below)}"
    limits = (("at least", low), ("above", above), ("at most", high), ("below", below))
    words = [f"{name} {_number(bound)}" for name, bound in limits if bound is not None]
    return "must be " + " and ".join(words)


def validate_config(config: TrainConfig, where: str = "") -> None:
    """One line naming the key and the problem for the first bad value, else nothing."""

    def bad(name: str, problem: str) -> TrainingError:
        value = getattr(config, name)
        return TrainingError(f"{where}{name} = {str(value)[:40]!r}: {problem}")

    for item in dataclasses.fields(TrainConfig):
        value, default = getattr(config, item.name), item.default
        if default is dataclasses.MISSING:  # labels: a list of names
            if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
                raise bad(item.name, "must be a list of names")
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise bad(item.name, "must be true or false")
        elif isinstance(default, int):
            if not isinstance(value, int) or isinstance(value, bool):
                raise bad(item.name, "must be a whole number")
        elif isinstance(default, float):
            if (
                not isinstance(value, (int, float))
                or isinstance(value, bool)
                or not math.isfinite(value)
            ):
                raise bad(item.name, "must be a finite number")
        elif isinstance(default, str) and not isinstance(value, str):
            raise bad(item.name, "must be text")
    for name, rule in options().items():
        problem = range_problem(getattr(config, name), rule)
        if problem:
            raise bad(name, problem)
    if config.aux_weight > 0 and config.arch != "sngan":
        raise bad("aux_weight", "the auxiliary class head exists for the sngan arch only")
    if config.imagenet_projected and config.arch != "sngan":
        raise bad(
            "imagenet_projected", "the projected discriminator exists for the sngan arch only"
        )
    for name, problem in (
        ("projected_size", projected_size_problem(config.projected_size)),
        ("projected_endpoints", projected_endpoints_problem(config.projected_endpoint_names)),
        ("projected_mixing", projected_mixing_problem(config.projected_mixing)),
    ):
        if problem:
            raise bad(name, problem)
    if config.freeze_d_blocks and config.imagenet_projected:
        raise bad("freeze_d_blocks", "a projected discriminator's network is frozen already")
    d_blocks = int(math.log2(config.resolution)) - 1  # 32x32: 4 residual blocks
    if config.freeze_d_blocks >= d_blocks:
        raise bad("freeze_d_blocks", f"D has {d_blocks} blocks: freeze fewer than that")
    if config.freeze_d_blocks and config.arch != "sngan":
        raise bad("freeze_d_blocks", "exists for the sngan arch only")
    unknown = sorted(set(config.augmentations) - set(AUGMENT_POLICIES))
    if unknown:
        choices = ", ".join(AUGMENT_POLICIES)
        raise bad("diffaugment", f"unknown policy {', '.join(unknown)}; choose from {choices}")
    if config.preset not in PRESETS:
        raise bad("preset", f"choose one of {', '.join(PRESETS)}")
    if config.keep_best and not config.eval_every:
        raise bad("keep_best", "needs eval_every (--eval-every N): the best is measured")


def check_resumable(saved: TrainConfig, requested: dict[str, Any]) -> None:
    """Refuse a resume whose explicit options would change the shape of the saved run.

    The class head's weight may change, but not whether the head exists (0 or not)."""
    clashes = [
        f"{name}={requested[name]!r} (run has {getattr(saved, name)!r})"
        for name in STRUCTURAL_FIELDS + ("preset",)
        if name in requested and requested[name] != getattr(saved, name)
    ]
    if "aux_weight" in requested and (requested["aux_weight"] > 0) != (saved.aux_weight > 0):
        clashes.append(
            f"aux_weight={requested['aux_weight']!r} (run has {saved.aux_weight!r}; the class "
            "head cannot be added or removed)"
        )
    if clashes:
        raise TrainingError("cannot resume: incompatible with the saved run: " + "; ".join(clashes))
