"""The shape-deciding part of a run's configuration, shared by both architectures."""

from __future__ import annotations

from dataclasses import dataclass

ARCHS = ("sngan", "dcgan")
RESOLUTIONS = (32, 64)


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

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"unknown arch {self.arch!r}; choose one of {', '.join(ARCHS)}")
        if self.resolution not in RESOLUTIONS:
            raise ValueError(f"resolution must be one of {RESOLUTIONS}, not {self.resolution}")
        if self.num_classes < 1:
            raise ValueError("a conditional GAN needs at least one class")
        if self.aux_classifier and self.arch != "sngan":
            raise ValueError("the auxiliary classifier exists for the sngan discriminator only")

    @property
    def upsamplings(self) -> int:
        """Number of 2x steps from the 4x4 seed to the output resolution."""
        return {32: 3, 64: 4}[self.resolution]
