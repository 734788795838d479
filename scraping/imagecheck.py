"""Decide whether downloaded bytes are a usable training image.

Pure functions, no Scrapy: the pipeline runs `analyse` in a worker
thread. The cheap checks come first and nothing is decoded before the
declared size has been checked, so a tiny file claiming to be 100k x 100k
pixels is rejected from its header alone.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import imagehash
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

# Our own IMAGE_MAX_PIXELS decides; Pillow's warning would only repeat it.
warnings.simplefilter("ignore", Image.DecompressionBombWarning)

# Formats worth training on; anything else is rejected as not_an_image.
ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "MPO"})


class ImageRejected(Exception):
    """An image (or its download) failed a check; `reason` is the manifest code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class ImageLimits:
    """Thresholds from the Scrapy settings (see `scraping/settings.py`)."""

    min_width: int = 128
    min_height: int = 128
    max_bytes: int = 15 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_aspect: float = 3.0


@dataclass(frozen=True)
class ImageFacts:
    """What the pipeline needs to dedupe, store and record a good image."""

    sha1: str
    phash: str
    width: int
    height: int
    format: str
    store_bytes: bytes


def sha1_of(body: bytes) -> str:
    """Content hash used for file names and exact-duplicate detection."""
    return hashlib.sha1(body).hexdigest()  # noqa: S324 - identity, not security


def check_content_type(content_type: str | None) -> None:
    """Reject responses that announce themselves as not being an image.

    A missing header is let through: the decode step decides then.
    """
    if not content_type:
        return
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime.startswith("image/") or mime in {"application/octet-stream", "binary/octet-stream"}:
        return
    raise ImageRejected("bad_content_type", mime)


def check_byte_size(body: bytes, limits: ImageLimits) -> None:
    """Reject empty bodies and bodies over `max_bytes`."""
    if not body:
        raise ImageRejected("not_an_image", "empty body")
    if len(body) > limits.max_bytes:
        raise ImageRejected("too_large", f"{len(body)} bytes > {limits.max_bytes}")


def check_declared_size(width: int, height: int, limits: ImageLimits) -> None:
    """Size checks that need only the header: pixels, minimum size, aspect ratio."""
    if width * height > limits.max_pixels:
        raise ImageRejected("too_large", f"{width}x{height} px > {limits.max_pixels} px")
    if width < limits.min_width or height < limits.min_height:
        raise ImageRejected(
            "too_small", f"{width}x{height} < {limits.min_width}x{limits.min_height}"
        )
    aspect = max(width, height) / max(1, min(width, height))
    if aspect > limits.max_aspect:
        raise ImageRejected(
            "bad_aspect", f"{width}x{height} ratio {aspect:.2f} > {limits.max_aspect}"
        )


def open_header(body: bytes) -> Image.Image:
    """Open lazily (header only) and map Pillow's refusals to reasons."""
    try:
        image = Image.open(io.BytesIO(body))
    except Image.DecompressionBombError as exc:
        raise ImageRejected("too_large", f"decompression bomb: {exc}") from None
    except UnidentifiedImageError:
        raise ImageRejected("not_an_image", "unrecognised image data") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected("corrupt", str(exc)) from None
    if image.format not in ALLOWED_FORMATS:
        raise ImageRejected("not_an_image", f"unsupported format {image.format}")
    return image


def decode_fully(body: bytes) -> Image.Image:
    """verify() then a full load(): catches bad CRCs and truncated data."""
    try:
        Image.open(io.BytesIO(body)).verify()
        image = Image.open(io.BytesIO(body))
        image.load()
    except Image.DecompressionBombError as exc:
        raise ImageRejected("too_large", f"decompression bomb: {exc}") from None
    except Exception as exc:  # Pillow raises many types for broken files
        raise ImageRejected("corrupt", f"{type(exc).__name__}: {exc}") from None
    return image


Converter = Callable[[Image.Image, bytes], bytes]


def analyse(
    body: bytes, content_type: str | None, limits: ImageLimits, to_storable: Converter
) -> ImageFacts:
    """Run every per-image check; return facts or raise `ImageRejected`.

    `to_storable` turns the decoded, upright image into the bytes to save
    (the pipeline passes ImagesPipeline's own JPEG conversion).
    """
    check_content_type(content_type)
    check_byte_size(body, limits)
    header = open_header(body)
    check_declared_size(*header.size, limits)
    image = decode_fully(body)
    upright = image
    if image.getexif().get(ExifTags.Base.Orientation, 1) not in (0, 1):
        # A rotated copy has no format, so the converter re-encodes it upright
        # instead of saving the original (sideways) JPEG bytes.
        upright = ImageOps.exif_transpose(image)
        check_declared_size(*upright.size, limits)
    try:
        phash = str(imagehash.phash(upright))
        store_bytes = to_storable(upright, body)
    except (OSError, ValueError) as exc:
        raise ImageRejected("corrupt", f"cannot convert: {exc}") from None
    width, height = upright.size
    return ImageFacts(
        sha1=sha1_of(body),
        phash=phash,
        width=width,
        height=height,
        format=str(image.format),
        store_bytes=store_bytes,
    )
