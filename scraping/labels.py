"""Parse and validate class labels.

A label is both a folder name the trainer reads as a class and a search term.
``name=search words`` keeps the folder name short while searching for
something more precise; underscores in a bare name become spaces in the query.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_NAME_RE = re.compile(r"^\w[\w-]{0,63}$")


@dataclass(frozen=True)
class LabelSpec:
    """One class: the folder name and the words sent to each source."""

    name: str
    query: str

    def encode(self) -> str:
        """Serialise as ``name=query`` so it survives a Scrapy setting round trip."""
        return f"{self.name}={self.query}"


def parse_label(text: str) -> LabelSpec:
    """Turn ``cat`` or ``red_fox=red fox`` into a :class:`LabelSpec`."""
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
