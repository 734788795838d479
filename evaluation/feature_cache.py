"""The ImageNet network's outputs for a real split, computed once and cached on disk.

A dataset's splits are measured again at every evaluation of every checkpoint of every run
on it; their features depend only on the files, the resolution they are read at and the
network, so those three make the cache key (for images already in memory, such as
cgan-eval's CIFAR-10 reference read at the judge's resolution: their bytes and the network).
A cache file is input like any other: one that does not match what its key promises is
recomputed, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cgan.common.errors import EvaluationError
from cgan.common.files import atomic_path
from cgan.common.imagenet.runner import ImageNetRunner, Predictions
from cgan.training.data import find_images, load_folder

BATCH = 100
_FIELDS = ("names", "classes", "pooled", "probabilities")


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/cgan-label2image/features (~/.cache when unset), as pip and
    clean-fid keep theirs."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cgan-label2image" / "features"


def check_cache_dir(cache_dir: Path) -> None:
    """Refuse, before minutes of features, a cache path that cannot become a folder: an
    existing file (or a dangling link), or a path under one; mkdir would fail only once
    the features are computed."""
    path = Path(cache_dir)
    for existing in (path, *path.parents):
        if existing.is_dir():
            return
        if existing.exists() or existing.is_symlink():
            raise EvaluationError(f"--feature-cache {cache_dir}: {existing} is not a folder")


@dataclass(frozen=True)
class FolderFeatures:
    """A class folder's images through the network, in sorted file order per class."""

    names: list[str]  # the sorted class folder names; `classes` indexes them
    classes: np.ndarray  # int [N]
    predictions: Predictions

    def __len__(self) -> int:
        return len(self.classes)

    def first_per_class(self, count: int) -> FolderFeatures:
        """The first `count` images of each class (all of a smaller class)."""
        keep = np.concatenate(
            [np.flatnonzero(self.classes == k)[:count] for k in range(len(self.names))]
        )
        return FolderFeatures(
            self.names,
            self.classes[keep],
            Predictions(self.predictions.probabilities[keep], self.predictions.pooled[keep]),
        )


def cache_key(folder: Path, resolution: int, runner: ImageNetRunner) -> str:
    """sha256 of every file's label, name, size and modification time, the resolution and
    the network's description (weights hash and input protocol)."""
    listing = [
        [label, path.name, stat.st_size, stat.st_mtime_ns]
        for label, files in find_images(folder).items()
        for path in files
        for stat in (path.stat(),)
    ]
    text = json.dumps([resolution, runner.describe(), listing], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _read(path: Path) -> FolderFeatures | None:
    """The cached features, or None for a file that is missing or not what it should be."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in _FIELDS}
    except (OSError, ValueError, KeyError, EOFError):
        return None
    names, classes = arrays["names"], arrays["classes"]
    pooled, probabilities = arrays["pooled"], arrays["probabilities"]
    count = len(classes)
    if (
        names.dtype.kind != "U"
        or classes.dtype.kind != "i"
        or classes.shape != (count,)
        or pooled.shape[0] != count
        or probabilities.shape[0] != count
        or pooled.dtype != np.float32
        or probabilities.dtype != np.float32
        or (count and not 0 <= classes.min() <= classes.max() < len(names))
        or not (np.isfinite(pooled).all() and np.isfinite(probabilities).all())
    ):
        return None
    return FolderFeatures([str(n) for n in names], classes, Predictions(probabilities, pooled))


def folder_features(
    folder: Path, resolution: int, runner: ImageNetRunner, cache_dir: Path | None
) -> FolderFeatures:
    """Every image of `folder`, centre-cropped to `resolution` as training reads it, through
    the network; read from `cache_dir` when it holds this folder's features, else computed
    and stored there (no caching with None)."""
    path = None
    if cache_dir is not None:
        path = cache_dir / f"{cache_key(folder, resolution, runner)}.npz"
        cached = _read(path)
        if cached is not None:
            return cached
    data = load_folder(folder, resolution)
    features = FolderFeatures(
        list(data.names), data.labels.astype(np.int64), runner.predict_all(data.images, BATCH)
    )
    if path is not None:
        _write(path, features)
    return features


def image_features(
    images: np.ndarray,
    classes: np.ndarray,
    names: list[str],
    runner: ImageNetRunner,
    cache_dir: Path | None,
) -> Predictions:
    """uint8 images in memory (``classes`` index ``names``) through the network; kept in
    `cache_dir` under the hash of their bytes, labels and the network's description."""
    images, classes = np.ascontiguousarray(images, np.uint8), np.asarray(classes, np.int64)
    path = None
    if cache_dir is not None:
        digest = hashlib.sha256(json.dumps([runner.describe(), names, images.shape]).encode())
        digest.update(classes.tobytes())
        digest.update(images.tobytes())
        path = cache_dir / f"images-{digest.hexdigest()}.npz"
        cached = _read(path)
        if cached is not None and np.array_equal(cached.classes, classes):
            return cached.predictions
    predictions = runner.predict_all(images, BATCH)
    if path is not None:
        _write(path, FolderFeatures(list(names), classes, predictions))
    return predictions


def _write(path: Path, features: FolderFeatures) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as temporary, temporary.open("wb") as out:
            np.savez(
                out,
                names=np.array(features.names),
                classes=features.classes,
                pooled=features.predictions.pooled,
                probabilities=features.predictions.probabilities,
            )
    except OSError as exc:
        raise EvaluationError(
            f"cannot keep features in the cache {path.parent}: {exc.strerror or exc}"
        ) from None
