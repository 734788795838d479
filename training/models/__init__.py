"""Generator and discriminator builders, written with keras.layers and keras.ops only.

Nothing here imports TensorFlow, so the same models can be rebuilt under another Keras
backend (JAX on a GPU machine, for instance).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

from cgan.training.models.spec import ARCHS, ModelSpec

if TYPE_CHECKING:
    import keras

__all__ = ["ARCHS", "ModelSpec", "build_discriminator", "build_generator"]


def _builder(name: str) -> ModuleType:
    """Imported when first used: the command lines check their options and configs
    through `spec` without waiting seconds for Keras."""
    return importlib.import_module(f"cgan.training.models.{name}")


def build_generator(spec: ModelSpec, name: str = "generator") -> keras.Model:
    """generator(noise [B, latent_dim], label [B]) -> image [B, H, W, 3] in [-1, 1]."""
    return _builder(spec.arch).build_generator(spec, name=name)


def build_discriminator(spec: ModelSpec, name: str = "discriminator") -> keras.Model:
    """discriminator(image [B, H, W, 3], label [B]) -> logit [B, 1], plus class logits
    [B, num_classes] as a second output when spec.aux_classifier is set. With
    spec.projected, D reads a frozen ImageNet network's features and gives one logit per
    scale, [B, heads] (models/projected.py; needs the ImageNet weights)."""
    module = "projected" if spec.projected else spec.arch
    return _builder(module).build_discriminator(spec, name=name)
