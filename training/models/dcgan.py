"""The classic conditional DCGAN: the baseline of the original cGAN tutorials.

G sees the label as an embedding concatenated to the noise; D sees it as an extra
image channel. Trained with the binary cross-entropy loss.
"""

from __future__ import annotations

import keras
from keras import layers

from cgan.training.models.layers import label_input
from cgan.training.models.spec import ModelSpec


def build_generator(spec: ModelSpec, name: str = "generator") -> keras.Model:
    noise = keras.Input(shape=(spec.latent_dim,), name="noise")
    label = label_input()
    embedded = layers.Embedding(spec.num_classes, spec.embed_dim)(label)
    x = layers.Concatenate()([noise, embedded])
    width = spec.g_channels * 2 ** (spec.upsamplings - 1)
    x = layers.Dense(4 * 4 * width, use_bias=False)(x)
    x = layers.Reshape((4, 4, width))(x)
    x = layers.ReLU()(layers.BatchNormalization(synchronized=spec.sync_batch_norm)(x))
    for _ in range(spec.upsamplings - 1):
        width //= 2
        x = layers.Conv2DTranspose(width, 4, strides=2, padding="same", use_bias=False)(x)
        x = layers.ReLU()(layers.BatchNormalization(synchronized=spec.sync_batch_norm)(x))
    x = layers.Conv2DTranspose(3, 4, strides=2, padding="same")(x)
    image = layers.Activation("tanh", dtype="float32", name="image")(x)
    return keras.Model([noise, label], image, name=name)


def build_discriminator(spec: ModelSpec, name: str = "discriminator") -> keras.Model:
    size = spec.resolution
    image = keras.Input(shape=(size, size, 3), name="image")
    label = label_input()
    label_plane = layers.Embedding(spec.num_classes, spec.embed_dim)(label)
    label_plane = layers.Dense(size * size)(label_plane)
    label_plane = layers.Reshape((size, size, 1))(label_plane)
    x = layers.Concatenate()([image, label_plane])
    width = spec.d_channels
    for _ in range(spec.upsamplings):
        x = layers.Conv2D(width, 4, strides=2, padding="same")(x)
        x = layers.LeakyReLU(0.2)(x)
        width *= 2
    x = layers.Flatten()(x)
    logit = layers.Dense(1, dtype="float32", name="logit")(x)
    return keras.Model([image, label], logit, name=name)
