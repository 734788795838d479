"""Images of any size and mode -> the network's input: RGB, centre crop, bicubic resize.

ImageNet evaluation crops the central 87.5 % (224 of 256) of the shorter side before
resizing, and that is the default for photographs. Tiny images whose object fills the frame
(CIFAR-10, a GAN's 32x32 samples) are better resized whole: ``crop=1.0``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageOps

from cgan.common.imagenet.architecture import INPUT_SIZE

PHOTO_CROP = 0.875
WHOLE_IMAGE = 1.0


def to_rgb(image: Image.Image) -> Image.Image:
    """Upright RGB; transparency flattened onto white as the scraper's builder does."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def prepare(
    image: Image.Image | np.ndarray, size: int = INPUT_SIZE, crop: float = PHOTO_CROP
) -> np.ndarray:
    """float32 [size, size, 3] RGB in [0, 255] from one image (PIL or uint8 HxWx3)."""
    if not 0 < crop <= 1:
        raise ValueError(f"crop must be in (0, 1], got {crop}")
    if isinstance(image, np.ndarray):
        picture = Image.fromarray(np.asarray(image, np.uint8)).convert("RGB")
    else:
        picture = to_rgb(image)
    width, height = picture.size
    side = min(width, height) * crop
    left, top = (width - side) / 2, (height - side) / 2
    resized = picture.resize(
        (size, size), Image.Resampling.BICUBIC, box=(left, top, left + side, top + side)
    )
    return np.asarray(resized, np.float32)


def prepare_batch(
    images: Sequence[Image.Image | np.ndarray], size: int = INPUT_SIZE, crop: float = PHOTO_CROP
) -> np.ndarray:
    """float32 [N, size, size, 3] from a sequence of images."""
    if len(images) == 0:
        return np.zeros((0, size, size, 3), np.float32)
    return np.stack([prepare(image, size, crop) for image in images])
