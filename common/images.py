"""Images in and out of the models: square RGB inputs for the dataset build and training,
[-1, 1] outputs as uint8 pictures and grids for training samples, cards, the CLI and the
dashboard."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

# The largest source image any stage decodes (build, prepare, training from folders),
# checked from the header before decoding: 80 Mpx is about 240 MB as RGB.
MAX_SOURCE_PIXELS = 80_000_000

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


def to_uint8(images: np.ndarray) -> np.ndarray:
    """[-1, 1] floats to [0, 255] uint8, rounding rather than truncating."""
    return np.clip(np.rint((np.asarray(images, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def make_grid(
    images: np.ndarray,
    rows: int,
    scale: int = 1,
    padding: int = 2,
    row_labels: Sequence[str] | None = None,
    background: int = 255,
) -> Image.Image:
    """uint8 images [N, H, W, 3] laid out row by row, N = rows * columns.

    `scale` enlarges each tile by nearest neighbour so that 32x32 samples stay crisp;
    `row_labels` puts a name left of each row (one row per class, say).
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError("make_grid expects uint8 images shaped [N, H, W, 3]")
    count = images.shape[0]
    if rows < 1 or count % rows:
        raise ValueError(f"{count} images do not fill {rows} rows")
    columns = count // rows
    if scale > 1:
        images = images.repeat(scale, axis=1).repeat(scale, axis=2)
    height, width = images.shape[1:3]
    margin = 0
    if row_labels is not None:
        font = ImageFont.load_default()
        if len(row_labels) != rows:
            raise ValueError("one row label per row is needed")
        margin = max(int(font.getlength(name)) for name in row_labels) + 2 * padding + 4
    canvas = np.full(
        (rows * (height + padding) + padding, margin + columns * (width + padding) + padding, 3),
        background,
        np.uint8,
    )
    for index in range(count):
        r, c = divmod(index, columns)
        top = padding + r * (height + padding)
        left = margin + padding + c * (width + padding)
        canvas[top : top + height, left : left + width] = images[index]
    picture = Image.fromarray(canvas)
    if row_labels is not None:
        draw = ImageDraw.Draw(picture)
        for r, name in enumerate(row_labels):
            top = padding + r * (height + padding) + height // 2 - 6
            draw.text((padding + 2, top), name, fill=(0, 0, 0), font=font)
    return picture
