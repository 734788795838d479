"""The shape-deciding part of a run's configuration, shared by both architectures."""

from __future__ import annotations

from dataclasses import dataclass

from cgan.common.imagenet.architecture import ENDPOINTS as IMAGENET_ENDPOINTS

ARCHS = ("sngan", "dcgan")
AUGMENT_POLICIES = ("translation", "color", "cutout")  # DiffAugment's, in training/augment.py
RESOLUTIONS = (32, 64)
# The projected discriminator (models/projected.py): which feature maps of the frozen
# ImageNet network it may read (cgan.common.imagenet.architecture.ENDPOINTS up to stage7),
# how its fixed random layers mix them, and the sizes the images may be resized to.
PROJECTED_ENDPOINTS = IMAGENET_ENDPOINTS[: IMAGENET_ENDPOINTS.index("stage7") + 1]
PROJECTED_MIXINGS = ("scales", "channels", "none")
PROJECTED_SIZES = (32, 256)  # smallest and largest side
PROJECTED_MAX_HEADS = 4


@dataclass(frozen=True)
class ModelSpec:
    """Everything a builder needs; two runs with equal specs have interchangeable weights."""

    arch: str
    resolution: int
    num_classes: int
    latent_dim: int = 128
    g_channels: int = 64
    d_channels: int = 64
    embed_dim: int = 50
    aux_classifier: bool = False  # D also predicts the class (AC-GAN head beside the projection)
    # D reads a frozen ImageNet network's early features (Projected GAN) instead of pixels.
    projected: bool = False
    projected_size: int = 64  # images are resized to this side before the ImageNet network
    projected_endpoints: tuple[str, ...] = ("stage1", "stage2", "stage3")
    projected_mixing: str = "scales"  # fixed random 1x1 mixing: scales, channels or none
    # Batch-norm statistics all-reduced over the replicas of a distributed run; no effect on
    # the weights, so it is set by the trainer and never saved.
    sync_batch_norm: bool = False

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"unknown arch {self.arch!r}; choose one of {', '.join(ARCHS)}")
        if self.resolution not in RESOLUTIONS:
            raise ValueError(f"resolution must be one of {RESOLUTIONS}, not {self.resolution}")
        if self.num_classes < 1:
            raise ValueError("a conditional GAN needs at least one class")
        if self.aux_classifier and self.arch != "sngan":
            raise ValueError("the auxiliary classifier exists for the sngan discriminator only")
        if self.projected:
            problem = projected_problem(
                self.arch, self.projected_size, self.projected_endpoints, self.projected_mixing
            )
            if problem:
                raise ValueError(problem)

    @property
    def upsamplings(self) -> int:
        """Number of 2x steps from the 4x4 seed to the output resolution."""
        return {32: 3, 64: 4}[self.resolution]


def projected_size_problem(size: int) -> str | None:
    low, high = PROJECTED_SIZES
    return None if low <= size <= high else f"must be between {low} and {high}"


def projected_endpoints_problem(endpoints: tuple[str, ...]) -> str | None:
    unknown = [name for name in endpoints if name not in PROJECTED_ENDPOINTS]
    if unknown:
        return f"unknown endpoint {unknown[0]!r}; choose from {', '.join(PROJECTED_ENDPOINTS)}"
    if not 1 <= len(endpoints) <= PROJECTED_MAX_HEADS:
        return f"name 1 to {PROJECTED_MAX_HEADS} endpoints"
    order = [PROJECTED_ENDPOINTS.index(name) for name in endpoints]
    if order != sorted(set(order)):
        return "endpoints must be distinct and in network order (stem, stage1, ... stage7)"
    return None


def projected_mixing_problem(mixing: str) -> str | None:
    if mixing in PROJECTED_MIXINGS:
        return None
    return f"unknown mixing; choose from {', '.join(PROJECTED_MIXINGS)}"


def projected_problem(arch: str, size: int, endpoints: tuple[str, ...], mixing: str) -> str | None:
    """What is wrong with a projected discriminator's settings, or None."""
    if arch != "sngan":
        return "the projected discriminator exists for the sngan arch only (hinge loss)"
    for name, problem in (
        ("projected size", projected_size_problem(size)),
        ("projected endpoints", projected_endpoints_problem(endpoints)),
        ("projected mixing", projected_mixing_problem(mixing)),
    ):
        if problem:
            return f"{name}: {problem}"
    return None
