"""DiffAugment (Zhao et al. 2020): differentiable augmentations applied to real and fake alike.

With small datasets D memorises the real images; augmenting both sides of the game with
the same differentiable transforms keeps D honest without leaking augmentations into G.
Written with keras.ops and keras.random only.
"""

from __future__ import annotations

import keras
from keras import ops

from cgan.training.models.spec import AUGMENT_POLICIES as POLICIES


def _colour(x, seed):
    batch = ops.shape(x)[0]
    brightness = keras.random.uniform((batch, 1, 1, 1), -0.5, 0.5, seed=seed)
    x = x + brightness * 2.0  # images are in [-1, 1]: twice the [0, 1] range of the paper
    mean = ops.mean(x, axis=-1, keepdims=True)
    saturation = keras.random.uniform((batch, 1, 1, 1), 0.0, 2.0, seed=seed)
    x = (x - mean) * saturation + mean
    mean = ops.mean(x, axis=(1, 2, 3), keepdims=True)
    contrast = keras.random.uniform((batch, 1, 1, 1), 0.5, 1.5, seed=seed)
    return (x - mean) * contrast + mean


def _shift_matrix(batch, size: int, max_shift: int, seed):
    """One-hot [B, size, size + 2 * max_shift] rows that pick a shifted window of a padded axis."""
    shift = keras.random.randint((batch, 1), -max_shift, max_shift + 1, seed=seed)
    index = ops.arange(size)[None, :] + max_shift + shift
    return ops.one_hot(index, size + 2 * max_shift)


def _translation(x, seed, ratio: float = 0.125):
    """Shift by up to `ratio` of the size, filling with zeros, as matrix products (portable)."""
    batch, height, width = ops.shape(x)[0], x.shape[1], x.shape[2]
    pad_h, pad_w = int(height * ratio + 0.5), int(width * ratio + 0.5)
    padded = ops.pad(x, ((0, 0), (pad_h, pad_h), (pad_w, pad_w), (0, 0)))
    rows = ops.cast(_shift_matrix(batch, height, pad_h, seed), x.dtype)
    cols = ops.cast(_shift_matrix(batch, width, pad_w, seed), x.dtype)
    x = ops.einsum("bhp,bpwc->bhwc", rows, padded)
    return ops.einsum("bwq,bhqc->bhwc", cols, x)


def _cutout(x, seed, ratio: float = 0.5):
    """Zero a square of `ratio` times the size at a random place per image."""
    batch, height, width = ops.shape(x)[0], x.shape[1], x.shape[2]
    cut_h, cut_w = int(height * ratio + 0.5), int(width * ratio + 0.5)
    cy = keras.random.randint((batch, 1, 1), 0, height + (1 - cut_h % 2), seed=seed)
    cx = keras.random.randint((batch, 1, 1), 0, width + (1 - cut_w % 2), seed=seed)
    ys = ops.arange(height)[None, :, None]
    xs = ops.arange(width)[None, None, :]
    inside = (ops.abs(ys - cy) * 2 < cut_h) & (ops.abs(xs - cx) * 2 < cut_w)
    return x * ops.cast(ops.logical_not(inside), x.dtype)[..., None]


_TRANSFORMS = {"color": _colour, "translation": _translation, "cutout": _cutout}


def diff_augment(x, policies: tuple[str, ...], seed: keras.random.SeedGenerator):
    """Apply the named transforms in the paper's order: colour, translation, cutout."""
    unknown = set(policies) - set(POLICIES)
    if unknown:
        raise ValueError(f"unknown DiffAugment policy {sorted(unknown)}; choose from {POLICIES}")
    for name in ("color", "translation", "cutout"):
        if name in policies:
            x = _TRANSFORMS[name](x, seed)
    return x
