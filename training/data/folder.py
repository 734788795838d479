"""Class-folder datasets, ROOT/<label>/*.jpg: CIFAR-10's shared copy and what the scraper writes."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from cgan.common.errors import TrainingError
from cgan.training.data.images import centre_crop_resize
from cgan.training.data.source import LabelledImages

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


def find_images(root: Path) -> dict[str, list[Path]]:
    """Sorted label folder name -> sorted image files; labels are the sorted folder names."""
    if not root.exists():
        raise TrainingError(f"data folder {root} does not exist")
    if not root.is_dir():
        raise TrainingError(f"data folder {root} is not a directory")
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise TrainingError(
            f"data folder {root} has no class folders (expected {root}/<label>/*.jpg)"
        )
    found = {}
    for folder in classes:
        files = sorted(
            p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not files:
            raise TrainingError(
                f"class folder {folder} has no image files ({', '.join(sorted(IMAGE_SUFFIXES))})"
            )
        found[folder.name] = files
    return found


def _decode(path: Path, resolution: int) -> np.ndarray | None:
    try:
        with Image.open(path) as image:
            return np.asarray(centre_crop_resize(image, resolution))
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
        return None


def load_folder(root: str | Path, resolution: int, workers: int = 8) -> LabelledImages:
    """Decode every image once into memory; unreadable files are skipped and counted."""
    found = find_images(Path(root))
    names = list(found)
    paths = [p for files in found.values() for p in files]
    labels = np.concatenate(
        [np.full(len(files), k, np.int32) for k, files in enumerate(found.values())]
    )
    with ThreadPoolExecutor(max_workers=workers) as pool:
        decoded = list(pool.map(lambda p: _decode(p, resolution), paths, chunksize=64))
    ok = np.array([image is not None for image in decoded])
    skipped = [str(p) for p, good in zip(paths, ok, strict=True) if not good]
    labels = labels[ok]
    empty = [names[k] for k in range(len(names)) if not np.any(labels == k)]
    if empty:
        raise TrainingError(f"class folder(s) with no readable image in {root}: {', '.join(empty)}")
    if skipped:
        print(
            f"skipped {len(skipped)} unreadable image file(s) in {root}, e.g. {skipped[0]}",
            file=sys.stderr,
        )
    images = np.stack([image for image in decoded if image is not None])
    return LabelledImages(images, labels, names, skipped)
