"""SNGAN with a projection discriminator (Miyato & Koyama 2018), the BigGAN family's core.

G: residual up-blocks with conditional batch norm. D: spectrally normalised residual
down-blocks, sum pooling, and a projection of the label embedding onto the features.
Trained with the hinge loss.
"""

from __future__ import annotations

import keras
from keras import layers

from cgan.training.models.layers import (
    ConditionalBatchNorm,
    GlobalSumPooling2D,
    NearestUpsample2x,
    ProjectionLogit,
    label_input,
)
from cgan.training.models.spec import ModelSpec


def _sn(layer: layers.Layer) -> layers.Layer:
    return layers.SpectralNormalization(layer)


def _generator_block(x, label, channels: int, spec: ModelSpec):
    """CBN-ReLU-Up-Conv-CBN-ReLU-Conv, plus an upsampled 1x1 shortcut."""
    norm = lambda: ConditionalBatchNorm(spec.num_classes, synchronized=spec.sync_batch_norm)  # noqa: E731
    h = layers.ReLU()(norm()([x, label]))
    h = NearestUpsample2x()(h)
    h = layers.Conv2D(channels, 3, padding="same")(h)
    h = layers.ReLU()(norm()([h, label]))
    h = layers.Conv2D(channels, 3, padding="same")(h)
    shortcut = layers.Conv2D(channels, 1)(NearestUpsample2x()(x))
    return layers.Add()([h, shortcut])


def build_generator(spec: ModelSpec, name: str = "generator") -> keras.Model:
    noise = keras.Input(shape=(spec.latent_dim,), name="noise")
    label = label_input()
    width = spec.g_channels
    x = layers.Dense(4 * 4 * width)(noise)
    x = layers.Reshape((4, 4, width))(x)
    for _ in range(spec.upsamplings):
        x = _generator_block(x, label, width, spec)
    x = layers.ReLU()(layers.BatchNormalization(synchronized=spec.sync_batch_norm)(x))
    x = layers.Conv2D(3, 3, padding="same")(x)
    image = layers.Activation("tanh", dtype="float32", name="image")(x)
    return keras.Model([noise, label], image, name=name)


def _discriminator_block(x, channels: int, downsample: bool, first: bool = False):
    """(ReLU)-Conv-ReLU-Conv-(AvgPool), with a learnt shortcut where shapes change."""
    h = x if first else layers.ReLU()(x)
    h = _sn(layers.Conv2D(channels, 3, padding="same"))(h)
    h = _sn(layers.Conv2D(channels, 3, padding="same"))(layers.ReLU()(h))
    if downsample:
        h = layers.AveragePooling2D(2)(h)
    shortcut = x
    if first:
        shortcut = _sn(layers.Conv2D(channels, 1))(layers.AveragePooling2D(2)(x))
    elif downsample or x.shape[-1] != channels:
        shortcut = _sn(layers.Conv2D(channels, 1))(x)
        if downsample:
            shortcut = layers.AveragePooling2D(2)(shortcut)
    return layers.Add()([h, shortcut])


def build_discriminator(spec: ModelSpec, name: str = "discriminator") -> keras.Model:
    size = spec.resolution
    image = keras.Input(shape=(size, size, 3), name="image")
    label = label_input()
    width = spec.d_channels
    x = _discriminator_block(image, width, downsample=True, first=True)
    for _ in range(spec.upsamplings - 2):
        x = _discriminator_block(x, width, downsample=True)
    x = _discriminator_block(x, width, downsample=False)
    x = _discriminator_block(x, width, downsample=False)
    features = GlobalSumPooling2D()(layers.ReLU()(x))
    logit = ProjectionLogit(spec.num_classes, dtype="float32", name="logit")([features, label])
    if not spec.aux_classifier:
        return keras.Model([image, label], logit, name=name)
    # AC-GAN's head on the same features: D learns the classes from real images and G is
    # pushed towards images D can classify, a class signal stronger than the projection alone.
    class_logits = _sn(layers.Dense(spec.num_classes, dtype="float32", name="class_logits"))(
        features
    )
    return keras.Model([image, label], [logit, class_logits], name=name)
