"""A trained generator copied into a wider one that draws the same images (Net2WiderNet,
Chen, Goodfellow & Shlens 2016), so a long run can gain capacity without losing its hours.

Every hidden channel of the wide generator is a copy of one of the narrow one's: the first
`narrow` are the originals, the rest are drawn at random. A layer that writes channels
repeats its kernel's output slices along that map; a layer that reads them repeats its
input slices and divides each by how many copies its channel has, so the sum it computes
is unchanged. Batch norms see identical statistics on a channel and its copies, in training
and inference alike. Copies that stayed exact would get exact gradients and never part, so
the copies' incoming kernels get a little noise: the images move by a fraction of a grey
level and the new channels can learn their own features.
"""

from __future__ import annotations

import keras
import numpy as np

from cgan.common.errors import TrainingError
from cgan.training.models.layers import ConditionalBatchNorm

# The noise on a copied channel's incoming kernel, as a share of that kernel's spread.
COPY_NOISE = 0.01


def channel_map(narrow: int, wide: int, seed: int) -> np.ndarray:
    """Which narrow channel each wide channel copies: itself for the first `narrow`."""
    if wide < narrow:
        raise TrainingError(f"a generator can only be widened: {wide} < {narrow} channels")
    extra = np.random.default_rng(seed).integers(0, narrow, wide - narrow)
    return np.concatenate([np.arange(narrow), extra])


class _Widener:
    """Fills one wide generator from one narrow one along a channel map."""

    def __init__(self, mapping: np.ndarray, narrow: int, noise: float, seed: int) -> None:
        self.mapping = mapping
        self.narrow = narrow
        self.copies = np.bincount(mapping, minlength=self.narrow).astype(np.float32)
        self.noise = noise
        self.rng = np.random.default_rng(seed)

    def take(self, value: np.ndarray, axis: int) -> np.ndarray:
        return np.take(value, self.mapping, axis=axis)

    def written(self, kernel: np.ndarray) -> np.ndarray:
        """A kernel's output channels (last axis) repeated, the copies a little apart."""
        wide = self.take(kernel, -1)
        new = wide[..., self.narrow :]
        spread = float(kernel.std()) or 1.0
        new += self.noise * spread * self.rng.standard_normal(new.shape).astype(np.float32)
        return wide

    def read(self, kernel: np.ndarray, axis: int) -> np.ndarray:
        """A kernel's input channels repeated, each share divided among its copies."""
        shape = [1] * kernel.ndim
        shape[axis] = len(self.mapping)
        return self.take(kernel, axis) / self.copies[self.mapping].reshape(shape)

    def layer(
        self, source: keras.layers.Layer, target: keras.layers.Layer, output: bool = False
    ) -> None:
        """One layer's weights; `output` for the RGB layer, which only reads channels."""
        values = [np.asarray(w.numpy()) for w in source.weights]
        if isinstance(target, keras.layers.Dense):  # noise -> the 4x4 seed, channels last
            kernel, bias = values
            columns = kernel.reshape(kernel.shape[0], -1, self.narrow)
            wide_kernel = self.written(columns).reshape(kernel.shape[0], -1)
            values = [wide_kernel, self.take(bias.reshape(-1, self.narrow), -1).reshape(-1)]
        elif isinstance(target, keras.layers.Conv2D):
            kernel, bias = values
            kernel = self.read(kernel, axis=2)
            if not output:
                kernel, bias = self.written(kernel), self.take(bias, -1)
            values = [kernel, bias]
        elif isinstance(target, ConditionalBatchNorm | keras.layers.BatchNormalization):
            values = [self.take(value, -1) for value in values]  # per channel, or per class
        else:
            raise TrainingError(f"cannot widen a {type(target).__name__} layer")
        for weight, value in zip(target.weights, values, strict=True):
            if tuple(weight.shape) != value.shape:
                raise TrainingError(
                    f"widening: {weight.path} is {tuple(weight.shape)}, got {value.shape}"
                )
            weight.assign(value.astype(np.float32))


def widen_generator(
    source: keras.Model, target: keras.Model, seed: int, noise: float = COPY_NOISE
) -> keras.Model:
    """Fill `target` (the same builder, more channels) from the trained `source` and return
    it; G and its EMA widened with the same seed get the same map and the same noise."""
    theirs = [layer for layer in source.layers if layer.weights]
    mine = [layer for layer in target.layers if layer.weights]
    if len(theirs) != len(mine):
        raise TrainingError("widening: the generators differ in depth")
    narrow = theirs[-1].weights[0].shape[2]  # the RGB layer reads every hidden channel
    wide = mine[-1].weights[0].shape[2]
    widener = _Widener(channel_map(narrow, wide, seed), narrow, noise, seed + 1)
    for their_layer, my_layer in zip(theirs[:-1], mine[:-1], strict=True):
        widener.layer(their_layer, my_layer)
    widener.layer(theirs[-1], mine[-1], output=True)
    return target
