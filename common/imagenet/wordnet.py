"""WordNet 3.0 nouns, read straight from the database files (Debian's ``wordnet-base``).

ImageNet-1k's class ids are WordNet 3.0 noun synset offsets (``n02084071`` is dog), so the
ImageNet classes that count as a word are the ones in the hyponym closure of the word's
synsets. Two files are enough: ``index.noun`` (lemma -> its synsets, most frequent sense
first) and ``data.noun``, whose lines begin with their own byte offset, so a synset is one
seek away and a closure reads only the synsets it visits. Pointers ``~`` and ``~i`` lead
to hyponyms (kinds and instances).
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cgan.common.errors import ImageNetError

DEFAULT_DIR = Path("/usr/share/wordnet")
ENV_VARIABLE = "CGAN_WORDNET_DIR"
INSTALL_HINT = (
    f"install Debian's wordnet-base (apt-get install wordnet-base) or set "
    f"{ENV_VARIABLE} to a WordNet 3.0 dict folder"
)
_OFFSET = re.compile(r"^\d{8}$")
_HYPONYM_POINTERS = frozenset({"~", "~i"})
# WordNet's noun detachment rules (morphy): plural suffix -> singular.
_SUFFIXES = (
    ("ses", "s"),
    ("xes", "x"),
    ("zes", "z"),
    ("ches", "ch"),
    ("shes", "sh"),
    ("men", "man"),
    ("ies", "y"),
    ("s", ""),
)


@dataclass(frozen=True)
class Synset:
    """One noun synset: its offset (as in ``n02084071``), lemmas, hyponyms and gloss."""

    offset: str
    words: tuple[str, ...]
    hyponyms: tuple[str, ...]
    gloss: str

    @property
    def wnid(self) -> str:
        return f"n{self.offset}"


class WordNet:
    """Noun lookups on one WordNet 3.0 database folder."""

    def __init__(self, folder: str | Path | None = None) -> None:
        folder = Path(folder or os.environ.get(ENV_VARIABLE, "") or DEFAULT_DIR)
        self.folder = folder
        self.data_path = folder / "data.noun"
        missing = [
            p.name
            for p in (self.data_path, folder / "index.noun", folder / "noun.exc")
            if not p.is_file()
        ]
        if missing:
            raise ImageNetError(
                f"WordNet is not installed ({', '.join(missing)} missing in "
                f"{folder}): {INSTALL_HINT}"
            )
        self._index = _read_index(folder / "index.noun")
        self._exceptions = _read_exceptions(folder / "noun.exc")
        self._cache: dict[str, Synset] = {}

    def synset(self, offset: str) -> Synset:
        """The synset at this 8-digit offset; an error when there is none."""
        if not _OFFSET.match(offset):
            raise ImageNetError(f"{offset!r} is not an 8-digit WordNet noun offset")
        if offset not in self._cache:
            with self.data_path.open("rb") as handle:
                self._cache[offset] = self._read_synset(offset, handle)
        return self._cache[offset]

    def _read_synset(self, offset: str, handle: BinaryIO) -> Synset:
        handle.seek(int(offset))
        line = handle.readline().decode("latin-1")
        if not line.startswith(offset + " "):
            raise ImageNetError(f"WordNet has no noun synset n{offset}")
        try:
            return _parse_data_line(line)
        except (IndexError, ValueError):
            raise ImageNetError(f"{self.data_path} is damaged at offset {offset}") from None

    def senses(self, word: str) -> list[str]:
        """Offsets of the noun senses of ``word`` (any case, spaces or underscores, plurals),
        most frequent first; empty when WordNet does not know it as a noun."""
        for lemma in self.lemma_candidates(word):
            if lemma in self._index:
                return list(self._index[lemma])
        return []

    def lemma_candidates(self, word: str) -> list[str]:
        """Spellings to look up: as written (lower case, underscores), then singulars."""
        base = "_".join(word.strip().lower().replace("_", " ").split())
        forms = [base, base.replace("-", "_")]
        for form in list(forms):
            forms.extend(self._exceptions.get(form, ()))
            forms.extend(
                form[: -len(suffix)] + ending
                for suffix, ending in _SUFFIXES
                if form.endswith(suffix) and len(form) > len(suffix) + 1
            )
        return list(dict.fromkeys(forms))

    def closure(self, offsets: list[str] | tuple[str, ...]) -> set[str]:
        """The synsets themselves and all their hyponyms, transitively."""
        seen: set[str] = set()
        stack = [self.synset(offset).offset for offset in offsets]
        with self.data_path.open("rb") as handle:  # one handle for the whole walk
            while stack:
                offset = stack.pop()
                if offset in seen:
                    continue
                seen.add(offset)
                if offset not in self._cache:
                    self._cache[offset] = self._read_synset(offset, handle)
                stack.extend(self._cache[offset].hyponyms)
        return seen


def _parse_data_line(line: str) -> Synset:
    fields, _, gloss = line.partition(" | ")
    parts = fields.split()
    count = int(parts[3], 16)
    words = tuple(parts[4 + 2 * i] for i in range(count))
    at = 4 + 2 * count
    pointers = int(parts[at])
    hyponyms = []
    for i in range(pointers):
        symbol, target, pos = parts[at + 1 + 4 * i : at + 4 + 4 * i]
        if symbol in _HYPONYM_POINTERS and pos == "n":
            hyponyms.append(target)
    return Synset(parts[0], words, tuple(hyponyms), gloss.strip())


def _read_index(path: Path) -> dict[str, tuple[str, ...]]:
    index: dict[str, tuple[str, ...]] = {}
    with path.open(encoding="latin-1") as handle:
        for line in handle:
            if line.startswith(" "):
                continue  # the licence header
            parts = line.split()
            try:
                synsets = int(parts[2])
                offsets = tuple(parts[-synsets:]) if synsets else ()
            except (IndexError, ValueError):
                raise ImageNetError(f"{path} is damaged near {line[:40]!r}") from None
            index[parts[0]] = offsets
    return index


def _read_exceptions(path: Path) -> dict[str, tuple[str, ...]]:
    exceptions: dict[str, tuple[str, ...]] = {}
    with path.open(encoding="latin-1") as handle:
        for line in handle:
            parts = line.split()
            if len(parts) >= 2:
                exceptions[parts[0]] = tuple(parts[1:])
    return exceptions


def load_wordnet(folder: str | Path | None = None) -> WordNet:
    """One parsed index per folder and process (``CGAN_WORDNET_DIR``, else Debian's)."""
    return _cached(str(folder or os.environ.get(ENV_VARIABLE, "") or DEFAULT_DIR))


@functools.lru_cache(maxsize=4)
def _cached(folder: str) -> WordNet:
    return WordNet(folder)
