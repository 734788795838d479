"""Parsing seed lists such as "0-15,42" (the stylegan generate.py convention)."""

from __future__ import annotations

import re

from cgan.common.errors import InferenceError
from cgan.inference.generator import MAX_SEED

_PART = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


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
