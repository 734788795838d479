"""Bringing any image to the square RGB model resolution."""

from __future__ import annotations

import numpy as np
from PIL import Image


def centre_crop_resize(image: Image.Image, resolution: int) -> Image.Image:
    """Crop the largest centred square, then resize: no stretching of the subject."""
    image = image.convert("RGB")
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    image = image.crop((left, top, left + side, top + side))
    if side != resolution:
        image = image.resize((resolution, resolution), Image.Resampling.BICUBIC, reducing_gap=2.0)
    return image


def fit_to_resolution(array: np.ndarray, resolution: int) -> np.ndarray:
    return np.asarray(centre_crop_resize(Image.fromarray(array), resolution))
