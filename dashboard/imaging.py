"""Turning generated uint8 arrays into what the browser shows and the user downloads.

Enlarging is nearest-neighbour, so that 32x32 samples stay crisp instead of being blurred
by the browser; PNG compression is kept light because it sits on every re-render.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image

from cgan.common.images import make_grid
from cgan.inference.requests import check_request

TARGET_TILE_PX = 96
MAX_ZOOM = 8
PNG_COMPRESS_LEVEL = 1  # level 6 (PIL's default) triples the encode time for ~20% smaller files


def auto_zoom(image_size: int) -> int:
    """The enlargement that shows a tile at about TARGET_TILE_PX pixels."""
    return max(1, min(MAX_ZOOM, round(TARGET_TILE_PX / max(1, image_size))))


def enlarge(image: np.ndarray, scale: int) -> np.ndarray:
    """One uint8 [H, W, 3] image enlarged `scale` times by pixel repetition."""
    return image if scale <= 1 else image.repeat(scale, axis=0).repeat(scale, axis=1)


def png_bytes(picture: Image.Image | np.ndarray) -> bytes:
    image = picture if isinstance(picture, Image.Image) else Image.fromarray(picture)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def grid_png(
    images: np.ndarray, rows: int, scale: int, row_labels: Sequence[str] | None = None
) -> bytes:
    """The grid picture the views show and offer for download, as PNG bytes."""
    check_request(len(images), images.shape[1], scale)
    return png_bytes(make_grid(images, rows=rows, scale=scale, row_labels=row_labels))


def gif_bytes(frames: np.ndarray, scale: int, frame_ms: int, bounce: bool) -> bytes:
    """An endlessly looping animated GIF; `bounce` plays it forth and back so that the
    loop has no jump from the last frame to the first."""
    order = list(range(len(frames)))
    if bounce and len(frames) > 2:
        order += order[-2:0:-1]
    check_request(len(order), frames.shape[1], scale)
    pictures = [Image.fromarray(enlarge(frames[i], scale)) for i in order]
    buffer = io.BytesIO()
    pictures[0].save(
        buffer, format="GIF", save_all=True, append_images=pictures[1:], duration=frame_ms, loop=0
    )
    return buffer.getvalue()
