"""Datasets as in-memory uint8 arrays plus label names: CIFAR-10 through keras.datasets
(the path users with internet access take), a class-folder dataset ROOT/<label>/*.jpg (the
shared CIFAR-10 copy and what `cgan-scrape build` writes), or the synthetic shapes of
`cgan.training.shapes`. A records folder (cgan.common.records, written by `cgan-prepare` or
`cgan-scrape build --format records`) is the exception: it may be larger than memory, so
only its manifest is loaded. The tf.data pipelines are in `cgan.training.pipeline`.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from cgan.common.cli import first_line
from cgan.common.errors import TrainingError
from cgan.common.files import resolves_inside
from cgan.common.images import (
    IMAGE_SUFFIXES,
    MAX_SOURCE_PIXELS,
    centre_crop_resize,
    fit_to_resolution,
    is_image_file,
)
from cgan.common.records import MANIFEST_NAME, RecordManifest, read_manifest
from cgan.training.labelled import LabelledImages
from cgan.training.shapes import make_shapes


@dataclass
class RecordSet:
    """A records folder: names and counts from its manifest, the pixels left on disk
    for `cgan.training.pipeline.make_record_dataset` to stream."""

    manifest: RecordManifest

    @property
    def names(self) -> list[str]:
        return list(self.manifest.names)

    @property
    def folder(self) -> Path:
        return self.manifest.folder

    def __len__(self) -> int:
        return self.manifest.total

    def class_counts(self) -> dict[str, int]:
        return dict(self.manifest.class_counts)


# The most memory the synthetic shapes may take as uint8 pixels: the set is made in memory
# and copied once more into the input pipeline. A larger set: cgan-prepare synthetic writes
# it to disk, where it is streamed.
SYNTHETIC_BYTES = 512 * 2**20


def check_synthetic_size(classes: int, per_class: int, resolution: int) -> None:
    """Refuse, before anything is allocated, a synthetic set too large to make in memory (a
    hand-edited config.toml may ask for 11 GiB); checked where the set is made, so a run's
    export never depends on it."""
    size = classes * per_class * resolution**2 * 3
    if size > SYNTHETIC_BYTES:
        raise TrainingError(
            f"synthetic data of {classes} classes x {per_class} images at "
            f"{resolution}x{resolution} takes {size / 2**30:.1f} GiB in memory, more than "
            f"{SYNTHETIC_BYTES // 2**20} MiB: write it to disk with cgan-prepare synthetic "
            "and train on that folder"
        )


def load_dataset(
    data: str,
    resolution: int,
    *,
    seed: int = 0,
    synthetic_classes: int = 10,
    synthetic_per_class: int = 200,
    workers: int = 8,
) -> LabelledImages | RecordSet:
    """`data` is "cifar10", "synthetic", or the path of a class-folder dataset or of a
    records folder."""
    if data == "synthetic":
        check_synthetic_size(synthetic_classes, synthetic_per_class, resolution)
        return make_shapes(synthetic_classes, synthetic_per_class, resolution, seed=seed)
    if data == "cifar10":
        return load_cifar10(resolution)
    if is_records_folder(Path(data)):
        return load_records(data, resolution)
    return load_folder(data, resolution, workers=workers)


def is_records_folder(root: Path) -> bool:
    """A manifest, or shards without one (an unfinished folder, which load_records refuses)."""
    return root.is_dir() and ((root / MANIFEST_NAME).exists() or any(root.glob("shard-*.tfrecord")))


def load_records(root: str | Path, resolution: int) -> RecordSet:
    """The manifest of a records folder, checked; no pixel is read."""
    manifest = read_manifest(root)
    side = manifest.resolution
    if side != resolution:
        raise TrainingError(
            f"records folder {root} holds {side}x{side} images: train with --resolution "
            f"{side}, or prepare the data again with --resolution {resolution}"
        )
    return RecordSet(manifest)


CIFAR10_LABELS = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]


def cifar10_arrays() -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10's training split as keras.datasets gives it: uint8 [50000, 32, 32, 3]
    images and int32 labels."""
    import keras

    try:
        (images, labels), _ = keras.datasets.cifar10.load_data()
    except Exception as exc:  # noqa: BLE001 - any download failure means the same to the user
        raise TrainingError(
            f"could not download CIFAR-10 ({first_line(exc, 120)}); without internet, pass "
            "--data PATH to a class-folder copy such as ../shared/datasets/cifar10/train"
        ) from None
    return images, labels.reshape(-1).astype(np.int32)


def load_cifar10(resolution: int) -> LabelledImages:
    images, labels = cifar10_arrays()
    if resolution != images.shape[1]:
        images = np.stack([fit_to_resolution(image, resolution) for image in images])
    return LabelledImages(images, labels, list(CIFAR10_LABELS))


def find_images(root: Path) -> dict[str, list[Path]]:
    """Sorted label folder name -> sorted image files; labels are the sorted folder names."""
    if not root.exists():
        raise TrainingError(f"data folder {root} does not exist")
    if not root.is_dir():
        raise TrainingError(f"data folder {root} is not a directory")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    classes = [folder for folder in folders if resolves_inside(folder, root)]
    if not classes:
        raise TrainingError(
            f"data folder {root} has no class folders (expected {root}/<label>/*.jpg)"
        )
    found, outside = {}, len(folders) - len(classes)  # class folders linked out of the dataset
    for folder in classes:
        files = sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p))
        inside = [p for p in files if resolves_inside(p, root)]
        if files and not inside:
            raise TrainingError(
                f"class folder {folder} holds only links to files outside {root}: copy them in"
            )
        outside, files = outside + len(files) - len(inside), inside
        if not files:
            raise TrainingError(
                f"class folder {folder} has no image files ({', '.join(sorted(IMAGE_SUFFIXES))})"
            )
        found[folder.name] = files
    if outside:
        print(f"skipped {outside} link(s) to folders or files outside {root}", file=sys.stderr)
    return found


def decode_image(path: Path, resolution: int) -> np.ndarray | None:
    """A uint8 [resolution, resolution, 3] centre crop, or None for an unreadable file or
    one of more than MAX_SOURCE_PIXELS (told by its header, before any decoding)."""
    try:
        with Image.open(path) as image:
            if image.width * image.height > MAX_SOURCE_PIXELS:
                return None
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
        decoded = list(pool.map(lambda p: decode_image(p, resolution), paths, chunksize=64))
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
