"""What one generation request may ask for, checked before anything is allocated.

Seeds are parsed from lists such as "0-15,42" (the stylegan generate.py convention). A
3 kB model can declare (or secretly produce) 2048x2048 images, and a grid of ten thousand
seeds at 32x zoom is tens of GiB: every caller estimates a request's pixels first and
refuses it with one line instead of running out of memory.
"""

from __future__ import annotations

import re

from cgan.common.errors import InferenceError

MAX_SEED = 2**32 - 1

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


# ASCII digits only (int() also takes other scripts' digits), and few enough that int() is
# quick and never refuses: anything longer is beyond MAX_SEED anyway.
_NUMBER = r"([0-9]{1,30})"
_PART = re.compile(rf"^\s*{_NUMBER}\s*(?:-\s*{_NUMBER}\s*)?$", re.ASCII)


def parse_seeds(text: str, limit: int) -> list[int]:
    """Comma-separated seeds and inclusive ranges; order kept, at most `limit` in all."""
    seeds: list[int] = []
    for part in text.split(","):
        match = _PART.match(part)
        if not match:
            raise InferenceError(f"bad --seeds {text!r}: use numbers and ranges like 0-15,42")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) else first
        if last < first:
            raise InferenceError(f"bad --seeds range {part.strip()!r}: the end is before the start")
        if last > MAX_SEED:
            raise InferenceError(f"seed {last} is beyond the largest seed {MAX_SEED}")
        if len(seeds) + last - first + 1 > limit:
            raise InferenceError(f"--seeds {text!r} asks for more than {limit} images")
        seeds.extend(range(first, last + 1))
    return seeds
