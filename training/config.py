"""Run configuration: defaults, presets, and the TOML file saved in every run directory."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from training.errors import UserError
from training.models.spec import ModelSpec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CONFIG_NAME = "config.toml"


@dataclass
class TrainConfig:
    """Every knob of a run. Saved as config.toml so a run can be resumed and exported."""

    preset: str = "cifar10"
    data: str = "cifar10"  # "cifar10", "synthetic", or a class-folder path
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
    diffaugment: str = ""  # comma-separated: translation,color,cutout
    seed: int = 0
    mixed_precision: bool = False
    multi_worker: bool = False
    log_every: int = 50
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
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
        )

    @property
    def augmentations(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.diffaugment.split(",") if p.strip())

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Fields that decide the shape of weights or the meaning of labels: a resumed run must
# keep them, everything else (steps, learning rates, logging) may change between sessions.
STRUCTURAL_FIELDS = (
    "arch", "resolution", "latent_dim", "g_channels", "d_channels", "embed_dim",
    "labels", "mixed_precision",
)

PRESETS: dict[str, dict[str, Any]] = {
    # What `make train` runs: CIFAR-10 with a CPU-sized SNGAN-projection.
    "cifar10": dict(
        data="cifar10", arch="sngan", resolution=32, batch_size=64, steps=100_000,
        g_channels=64, d_channels=64, g_lr=2e-4, d_lr=2e-4, beta1=0.0, beta2=0.999,
        ema_decay=0.999, log_every=50, checkpoint_every=500,
    ),
    # About a minute on a 2-core CPU: the synthetic shapes, a complete run directory.
    "smoke": dict(
        data="synthetic", arch="sngan", resolution=32, batch_size=32, steps=240,
        g_channels=32, d_channels=32, latent_dim=32, embed_dim=16, g_lr=5e-4, d_lr=5e-4,
        beta1=0.0, beta2=0.9, ema_decay=0.99, log_every=20, checkpoint_every=80,
        synthetic_classes=10, synthetic_per_class=64, samples_per_class=6,
    ),
}


def make_config(preset: str, overrides: dict[str, Any]) -> TrainConfig:
    """A preset's values with the user's explicit choices on top."""
    if preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    values = {**PRESETS[preset], **overrides, "preset": preset}
    return TrainConfig(**values)


def save_config(config: TrainConfig, run_dir: Path) -> None:
    """Write atomically: a crash mid-write must not leave an unreadable run."""
    path = run_dir / CONFIG_NAME
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text(tomli_w.dumps(config.to_dict()))
    tmp.replace(path)


def load_config(run_dir: Path) -> TrainConfig:
    path = run_dir / CONFIG_NAME
    if not path.is_file():
        raise UserError(f"{run_dir} is not a run directory (no {CONFIG_NAME})")
    try:
        values = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is not valid TOML: {exc}") from None
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UserError(f"{path} has unknown keys: {', '.join(unknown)}")
    return TrainConfig(**values)


def check_resumable(saved: TrainConfig, requested: dict[str, Any]) -> None:
    """Refuse a resume whose explicit options would change the shape of the saved run."""
    clashes = [
        f"{name}={requested[name]!r} (run has {getattr(saved, name)!r})"
        for name in STRUCTURAL_FIELDS + ("data", "preset")
        if name in requested and requested[name] != getattr(saved, name)
    ]
    if clashes:
        raise UserError("cannot resume: incompatible with the saved run: " + "; ".join(clashes))
