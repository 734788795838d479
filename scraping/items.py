"""What a crawl handles: the labels it was asked for, and one item per image URL found.

A label is both a folder name the trainer reads as a class and a search term;
`name=search words` keeps the folder name short while searching for something more
precise, and underscores in a bare name become spaces in the query.

The item is a dataclass (Scrapy reads it through itemadapter), so this module imports
no Scrapy: the command line validates labels before Scrapy is loaded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

_NAME_RE = re.compile(r"^\w[\w-]{0,63}$")


@dataclass(frozen=True)
class LabelSpec:
    """One class: the folder name and the words sent to each source."""

    name: str
    query: str

    def encode(self) -> str:
        """`name=query`, so that it survives a round trip through a Scrapy setting."""
        return f"{self.name}={self.query}"


def parse_label(text: str) -> LabelSpec:
    """`cat` or `red_fox=red fox` as a LabelSpec; ValueError says what is wrong."""
    name, sep, query = text.partition("=")
    name = name.strip()
    query = " ".join(query.split()) if sep else name.replace("_", " ")
    if not name:
        raise ValueError(f"empty label in {text!r}")
    if not _NAME_RE.match(name) or name.startswith("_"):
        raise ValueError(
            f"bad label {name!r}: use letters, digits, '_' or '-' (it becomes a folder name)"
        )
    if not query:
        raise ValueError(f"label {name!r} has an empty search query")
    return LabelSpec(name=name, query=query)


def parse_labels(values: Iterable[str]) -> list[LabelSpec]:
    """Split comma/space separated values into unique labels, keeping order."""
    specs: dict[str, LabelSpec] = {}
    for value in values:
        for part in value.split(","):
            # "cat dog" (one quoted Makefile variable) means two labels.
            pieces = [part] if "=" in part else part.split()
            for piece in pieces:
                if piece.strip():
                    spec = parse_label(piece)
                    specs.setdefault(spec.name, spec)
    if not specs:
        raise ValueError("no labels given")
    return list(specs.values())


@dataclass(eq=False)  # identity, not contents: the pipelines key their slots on id(item)
class LabelledImage:
    """A candidate image. Spiders fill the first block, pipelines the second."""

    # Filled by the spider from the source's API answer.
    label: str | None = None
    query: str | None = None
    source: str | None = None
    image_urls: list[str] = field(default_factory=list)  # one URL; ImagesPipeline's input
    licence: str | None = None
    licence_url: str | None = None
    author: str | None = None
    source_page: str | None = None
    title: str | None = None

    # Filled by the pipelines.
    images: list[dict[str, Any]] = field(default_factory=list)  # ImagesPipeline's result
    status: str | None = None
    reason: str | None = None
    detail: str | None = None
    sha1: str | None = None
    phash: str | None = None
    width: int | None = None
    height: int | None = None
    bytes: int | None = None
    path: str | None = None
