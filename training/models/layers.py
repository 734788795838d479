"""Custom layers the conditional architectures share (keras.ops only)."""

from __future__ import annotations

import keras
from keras import layers, ops


class ConditionalBatchNorm(layers.Layer):
    """Batch norm whose gain and bias are looked up from the class label.

    This is how SNGAN-projection and BigGAN let the label steer every stage of the
    generator rather than only its input.
    """

    def __init__(
        self,
        num_classes: int,
        momentum: float = 0.9,
        epsilon: float = 1e-5,
        synchronized: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.momentum = momentum
        self.epsilon = epsilon
        self.synchronized = synchronized
        self.norm = layers.BatchNormalization(
            momentum=momentum,
            epsilon=epsilon,
            center=False,
            scale=False,
            synchronized=synchronized,
        )

    def build(self, input_shape) -> None:
        image_shape, _ = input_shape
        channels = image_shape[-1]
        self.norm.build(image_shape)
        # Slightly different per class from the start, so the label matters at step 0.
        normal = keras.initializers.RandomNormal
        self.gain = layers.Embedding(
            self.num_classes, channels, embeddings_initializer=normal(1.0, 0.02)
        )
        self.bias = layers.Embedding(
            self.num_classes, channels, embeddings_initializer=normal(0.0, 0.02)
        )
        self.gain.build((None,))
        self.bias.build((None,))

    def call(self, inputs, training=None):
        x, label = inputs
        x = self.norm(x, training=training)
        gain = ops.expand_dims(ops.expand_dims(self.gain(label), 1), 1)
        bias = ops.expand_dims(ops.expand_dims(self.bias(label), 1), 1)
        return x * ops.cast(gain, x.dtype) + ops.cast(bias, x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "synchronized": self.synchronized,
        }


class NearestUpsample2x(layers.Layer):
    """2x nearest-neighbour upsampling as concat + reshape.

    Same result as UpSampling2D, but it exports to two Concat and two Reshape nodes
    instead of the Tile/Slice chain that UpSampling2D's repeat becomes in ONNX, which keeps
    onnxruntime inference fast.
    """

    def call(self, x):
        height, width, channels = x.shape[1], x.shape[2], x.shape[3]
        x = ops.reshape(ops.concatenate([x, x], axis=-1), (-1, height, 2 * width, channels))
        return ops.reshape(ops.concatenate([x, x], axis=2), (-1, 2 * height, 2 * width, channels))

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        return (batch, 2 * height, 2 * width, channels)


class GlobalSumPooling2D(layers.Layer):
    """Sum over height and width: the pooling of the SNGAN projection discriminator."""

    def call(self, x):
        return ops.sum(x, axis=(1, 2))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])


class ProjectionLogit(layers.Layer):
    """logit = psi(h) + <embed(y), h>: the class enters D as an inner product."""

    def __init__(self, num_classes: int, spectral_norm: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.spectral_norm = spectral_norm

    def build(self, input_shape) -> None:
        features_shape, _ = input_shape
        dense = layers.Dense(1, dtype=self.dtype_policy)
        # A bias-free Dense on the one-hot label is an embedding table that
        # SpectralNormalization can wrap (its Embedding path casts to the int input dtype).
        embed = layers.Dense(features_shape[-1], use_bias=False, dtype=self.dtype_policy)
        if self.spectral_norm:  # the wrappers must share the head's (float32) policy
            dense = layers.SpectralNormalization(dense, dtype=self.dtype_policy)
            embed = layers.SpectralNormalization(embed, dtype=self.dtype_policy)
        self.unconditional = dense
        self.class_embedding = embed
        self.unconditional.build(features_shape)
        self.class_embedding.build((None, self.num_classes))

    def call(self, inputs, training=None):
        features, label = inputs
        one_hot = ops.one_hot(label, self.num_classes, dtype=features.dtype)
        class_vector = self.class_embedding(one_hot, training=training)
        projection = ops.sum(class_vector * features, axis=-1, keepdims=True)
        return self.unconditional(features, training=training) + projection

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], 1)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "spectral_norm": self.spectral_norm,
        }


def label_input(name: str = "label") -> keras.KerasTensor:
    """Integer class index per sample, shape [B]."""
    return keras.Input(shape=(), dtype="int32", name=name)
