"""The one way images become square model inputs, shared by the dataset build and training."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

# What the dataset build, the content check and training read as images.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})


def is_image_file(path) -> bool:
    """A visible file with an image suffix (hidden files are partial downloads or metadata)."""
    return not path.name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB, with transparency composited on white rather than dropped to black."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def centre_crop_resize(image: Image.Image, size: int) -> Image.Image:
    """The largest centred square, resized to `size` with Lanczos: no stretched subject."""
    image = to_rgb(image)
    if image.size == (size, size):
        return image
    return ImageOps.fit(image, (size, size), method=Image.Resampling.LANCZOS, centering=(0.5, 0.5))


def fit_to_resolution(array: np.ndarray, resolution: int) -> np.ndarray:
    """A uint8 HxWx3 array as a resolution x resolution one (a no-op when it already is)."""
    if array.shape[:2] == (resolution, resolution):
        return array
    return np.asarray(centre_crop_resize(Image.fromarray(array), resolution))
