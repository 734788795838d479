"""Run configuration: defaults, presets, and the TOML file saved in every run directory."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from cgan.common.errors import TrainingError
from cgan.common.records import MANIFEST_NAME
from cgan.common.run_dir import RunDir
from cgan.training.data import find_images
from cgan.training.models.spec import (
    ARCHS,
    AUGMENT_POLICIES,
    RESOLUTIONS,
    ModelSpec,
    projected_endpoints_problem,
    projected_mixing_problem,
    projected_size_problem,
)


@dataclass
class TrainConfig:
    """Every knob of a run. Saved as config.toml so a run can be resumed and exported."""

    preset: str = "cifar10"
    data: str = "cifar10"  # "cifar10", "synthetic", a class-folder or a records-folder path
    arch: str = "sngan"
    resolution: int = 32
    latent_dim: int = 128
    g_channels: int = 64
    d_channels: int = 64
    embed_dim: int = 50
    batch_size: int = 64
    steps: int = 100_000  # generator updates
    g_lr: float = 2e-4
    d_lr: float = 2e-4
    beta1: float = 0.0
    beta2: float = 0.999
    d_steps: int = 1
    d_pretrain_steps: int = 0
    ema_decay: float = 0.999
    # Linear decay of both learning rates to zero over lr_decay_steps generator steps from
    # step lr_decay_start (SNGAN's schedule); training ends where they reach zero. 0 = off.
    lr_decay_start: int = 0
    lr_decay_steps: int = 0
    aux_weight: float = 0.0  # > 0 adds D's auxiliary class head and its cross-entropy losses
    # G's class loss as a share of aux_weight (1 = the same weight as D's): the head's pull
    # on G sharpens class identity and narrows the spread within a class, D's does not.
    aux_g_scale: float = 1.0
    # A projected discriminator (Projected GAN) on the frozen ImageNet network's features;
    # needs the imagenet extra. Its name starts with "imagenet" so that cgan-eval marks
    # figures in that network's features as not independent (evaluation/imagenet_view.py).
    imagenet_projected: bool = False
    projected_size: int = 64  # side the images are resized to before the ImageNet network
    projected_endpoints: str = "stage1,stage2,stage3"  # its feature maps D reads, one head each
    projected_mixing: str = "scales"  # fixed random 1x1 mixing: scales, channels or none
    # Start from another run's weights (training/transfer.py): its folder, new label=old
    # label pairs for class rows, and how many of D's lower blocks stay frozen (FreezeD).
    init_from: str = ""
    init_labels: str = ""
    init_source: str = ""  # set by the trainer: the source's checkpoint, for the card
    freeze_d_blocks: int = 0
    cpu_minutes: float = 0.0  # stop once the run has trained this long in CPU time (0 = never)
    diffaugment: str = ""  # comma-separated: translation,color,cutout
    seed: int = 0
    mixed_precision: bool = False
    multi_worker: bool = False
    log_every: int = 50
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    # Quality figures of the EMA generator every eval_every steps (0 = off), eval_samples
    # per class against eval_reference (a class folder; "" = the training data), into
    # metrics.jsonl (training/snapshots.py); keep_best keeps the best snapshot by one figure.
    eval_every: int = 0
    eval_samples: int = 100
    eval_reference: str = ""
    keep_best: str = ""
    plateau_evaluations: int = 5  # warn when the figure has not improved for this many
    samples_per_class: int = 8
    synthetic_classes: int = 10
    synthetic_per_class: int = 200
    labels: list[str] = field(default_factory=list)

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


# Fields that decide the shape of weights or the meaning of labels: a resumed run must
# keep them, everything else (steps, learning rates, logging) may change between sessions.
STRUCTURAL_FIELDS = (
    "arch",
    "resolution",
    "latent_dim",
    "g_channels",
    "d_channels",
    "embed_dim",
    "labels",
    "mixed_precision",
    "imagenet_projected",
    "projected_size",
    "projected_endpoints",
    "projected_mixing",
    "init_from",
    "init_labels",
    "freeze_d_blocks",
)

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

# The figures --keep-best can rank snapshots by (cgan.evaluation.snapshot.FIGURES).
BEST_FIGURES = ("fd", "accuracy", "precision", "recall")

# The shipped model's run in a source checkout: the small-data recipe starts from it.
SHIPPED_RUN = Path(__file__).resolve().parents[1] / "training" / "longrun" / "cifar10"
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
    return config


# Largest sensible values: a hand-edited config must not ask for terabytes.
_POSITIVE_INTS = {
    "latent_dim": 4096,
    "g_channels": 2048,
    "d_channels": 2048,
    "embed_dim": 4096,
    "batch_size": 65_536,
    "steps": 10**9,
    "d_steps": 100,
    "log_every": 10**9,
    "checkpoint_every": 10**9,
    "keep_checkpoints": 10**6,
    "samples_per_class": 64,
    "synthetic_classes": 1000,
    "synthetic_per_class": 100_000,
    "eval_samples": 10_000,
    "plateau_evaluations": 10_000,
}


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
    for name, limit in _POSITIVE_INTS.items():
        if not 1 <= getattr(config, name) <= limit:
            raise bad(name, f"must be between 1 and {limit}")
    for name in (
        "d_pretrain_steps",
        "seed",
        "lr_decay_start",
        "lr_decay_steps",
        "freeze_d_blocks",
        "eval_every",
    ):
        if getattr(config, name) < 0:
            raise bad(name, "must not be negative")
    for name in ("aux_weight", "aux_g_scale", "cpu_minutes"):
        if getattr(config, name) < 0:
            raise bad(name, "must not be negative")
    for name in ("g_lr", "d_lr"):
        if not 0 < getattr(config, name) <= 1:
            raise bad(name, "must be above 0 and at most 1")
    for name in ("beta1", "beta2"):
        if not 0 <= getattr(config, name) < 1:
            raise bad(name, "must be at least 0 and below 1")
    if not 0 < config.ema_decay < 1:
        raise bad("ema_decay", "must be between 0 and 1")
    if config.arch not in ARCHS:
        raise bad("arch", f"choose one of {', '.join(ARCHS)}")
    if config.resolution not in RESOLUTIONS:
        raise bad("resolution", f"must be one of {', '.join(map(str, RESOLUTIONS))}")
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
    if config.keep_best and config.keep_best not in BEST_FIGURES:
        raise bad("keep_best", f"choose one of {', '.join(BEST_FIGURES)}")
    if config.keep_best and not config.eval_every:
        raise bad("keep_best", "needs eval_every (--eval-every N): the best is measured")


def check_resumable(saved: TrainConfig, requested: dict[str, Any]) -> None:
    """Refuse a resume whose explicit options would change the shape of the saved run.

    The class head's weight may change, but not whether the head exists (0 or not)."""
    clashes = [
        f"{name}={requested[name]!r} (run has {getattr(saved, name)!r})"
        for name in STRUCTURAL_FIELDS + ("data", "preset")
        if name in requested and requested[name] != getattr(saved, name)
    ]
    if "aux_weight" in requested and (requested["aux_weight"] > 0) != (saved.aux_weight > 0):
        clashes.append(
            f"aux_weight={requested['aux_weight']!r} (run has {saved.aux_weight!r}; the class "
            "head cannot be added or removed)"
        )
    if clashes:
        raise TrainingError("cannot resume: incompatible with the saved run: " + "; ".join(clashes))
