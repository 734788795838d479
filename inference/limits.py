"""Bounds on what one request may cost, checked before anything is allocated.

A 3 kB model can declare (or secretly produce) 2048x2048 images, and a grid of ten
thousand seeds at 32x zoom is tens of GiB: every caller estimates a request's pixels
first and refuses it with one line instead of running out of memory.
"""

from __future__ import annotations

from cgan.common.errors import InferenceError

MAX_IMAGE_SIZE = 1024  # largest image side a model may have
MAX_REQUEST_BYTES = 2**30  # uint8 pixels one request may produce, zoom included
MAX_LATENT_DIM = 4096


def request_bytes(images: int, image_size: int, scale: int = 1, latent_dim: int = 0) -> int:
    """uint8 RGB bytes of `images` tiles of image_size^2 pixels enlarged `scale` times,
    plus their float32 noise vectors."""
    return images * (image_size * image_size * 3 * scale * scale + 4 * latent_dim)


def check_request(images: int, image_size: int, scale: int = 1, latent_dim: int = 0) -> None:
    """Refuse a request whose pixels and noise would exceed MAX_REQUEST_BYTES."""
    needed = request_bytes(images, image_size, scale, latent_dim)
    if needed > MAX_REQUEST_BYTES:
        zoom = f" at {scale}x zoom" if scale > 1 else ""
        raise InferenceError(
            f"{images} images of {image_size}x{image_size}{zoom} need "
            f"{needed / 2**30:.1f} GiB; the limit is {MAX_REQUEST_BYTES / 2**30:.0f} GiB "
            "per request: ask for fewer images or a smaller zoom"
        )
