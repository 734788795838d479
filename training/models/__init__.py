"""Generator and discriminator builders, written with keras.layers and keras.ops only.

Nothing here imports TensorFlow, so the same models can be rebuilt under another Keras
backend (JAX on a GPU machine, for instance).
"""

from __future__ import annotations

import keras

from cgan.training.models import dcgan, projected, sngan
from cgan.training.models.spec import ARCHS, ModelSpec

__all__ = ["ARCHS", "ModelSpec", "build_discriminator", "build_generator"]

_BUILDERS = {"dcgan": dcgan, "sngan": sngan}


def build_generator(spec: ModelSpec, name: str = "generator") -> keras.Model:
    """generator(noise [B, latent_dim], label [B]) -> image [B, H, W, 3] in [-1, 1]."""
    return _BUILDERS[spec.arch].build_generator(spec, name=name)


def build_discriminator(spec: ModelSpec, name: str = "discriminator") -> keras.Model:
    """discriminator(image [B, H, W, 3], label [B]) -> logit [B, 1], plus class logits
    [B, num_classes] as a second output when spec.aux_classifier is set. With
    spec.projected, D reads a frozen ImageNet network's features and gives one logit per
    scale, [B, heads] (models/projected.py; needs the ImageNet weights)."""
    if spec.projected:
        return projected.build_discriminator(spec, name=name)
    return _BUILDERS[spec.arch].build_discriminator(spec, name=name)
