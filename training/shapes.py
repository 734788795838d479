"""Coloured shapes whose class decides both shape and colour: a dataset made in code.

It lets tests and demos train in a minute and check, with a measure independent of the
GAN (mean colour), that the generator learnt what the label means.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from cgan.training.labelled import LabelledImages

SHAPES = ("disc", "square", "triangle", "cross", "ring")
COLOURS = {
    "red": (230, 40, 40),
    "green": (40, 200, 60),
    "blue": (50, 80, 235),
    "yellow": (235, 220, 40),
    "magenta": (220, 50, 220),
    "cyan": (40, 220, 225),
    "orange": (245, 140, 20),
    "white": (240, 240, 240),
    "purple": (120, 40, 180),
    "lime": (160, 240, 60),
}
MAX_CLASSES = len(COLOURS)


def class_names(num_classes: int) -> list[str]:
    colours = list(COLOURS)
    return [f"{colours[k]}-{SHAPES[k % len(SHAPES)]}" for k in range(num_classes)]


def _shape_mask(shape: str, size: int, cy: float, cx: float, radius: float) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    dy, dx = y - cy, x - cx
    if shape == "disc":
        return dy**2 + dx**2 <= radius**2
    if shape == "square":
        return (np.abs(dy) <= radius * 0.85) & (np.abs(dx) <= radius * 0.85)
    if shape == "triangle":
        return (dy <= radius * 0.7) & (dy >= -radius) & (np.abs(dx) <= (dy + radius) * 0.6)
    if shape == "cross":
        bar = radius * 0.35
        return ((np.abs(dy) <= bar) & (np.abs(dx) <= radius)) | (
            (np.abs(dx) <= bar) & (np.abs(dy) <= radius)
        )
    if shape == "ring":
        r2 = dy**2 + dx**2
        return (r2 <= radius**2) & (r2 >= (radius * 0.55) ** 2)
    raise ValueError(shape)


def _check_classes(num_classes: int) -> None:
    if not 1 <= num_classes <= MAX_CLASSES:
        raise ValueError(f"the synthetic dataset has 1 to {MAX_CLASSES} classes")


def make_shapes(num_classes: int, per_class: int, resolution: int, seed: int = 0) -> LabelledImages:
    """Deterministic for a given seed; backgrounds are noisy dark grey."""
    _check_classes(num_classes)  # before allocating
    total = num_classes * per_class
    images = np.empty((total, resolution, resolution, 3), np.uint8)
    labels = np.empty(total, np.int32)
    start = 0
    for chunk_images, chunk_labels in iter_shapes(num_classes, per_class, resolution, seed=seed):
        end = start + len(chunk_labels)
        images[start:end], labels[start:end] = chunk_images, chunk_labels
        start = end
    return LabelledImages(images, labels, class_names(num_classes))


def iter_shapes(
    num_classes: int, per_class: int, resolution: int, seed: int = 0, chunk: int = 1024
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The images of `make_shapes`, same seed same pixels, as (uint8 images, int32
    labels) chunks of at most `chunk`: a set larger than memory can be written as it is
    made (cgan-prepare). Class by class, like make_shapes."""
    _check_classes(num_classes)
    rng = np.random.default_rng(seed)
    colours = list(COLOURS.values())
    labels = np.repeat(np.arange(num_classes, dtype=np.int32), per_class)
    for start in range(0, len(labels), chunk):
        chunk_labels = labels[start : start + chunk]
        images = np.empty((len(chunk_labels), resolution, resolution, 3), np.uint8)
        for i, label in enumerate(chunk_labels):
            background = rng.normal(40, 12, (resolution, resolution, 3))
            radius = rng.uniform(0.25, 0.38) * resolution
            cy, cx = rng.uniform(radius, resolution - radius, size=2)
            mask = _shape_mask(SHAPES[label % len(SHAPES)], resolution, cy, cx, radius)
            colour = np.asarray(colours[label], np.float32) * rng.uniform(0.85, 1.0)
            image = np.where(mask[..., None], colour, background)
            images[i] = np.clip(image, 0, 255).astype(np.uint8)
        yield images, chunk_labels
