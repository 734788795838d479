"""`cgan-prepare`: write a dataset as a records folder that `cgan-train --data` streams
from disk, for sets larger than memory (format: cgan.common.records).

DATA is cifar10 (through keras.datasets), synthetic (the coloured shapes, --classes and
--per-class) or a class-folder path ROOT/<label>/*.jpg. Images are decoded, centre-cropped
and resized the way training does it, a chunk at a time: the set is never held in memory.
The folder is written beside OUT under a hidden name and renamed at the end, so OUT is
either complete or absent.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cgan.common.cli import (
    OneLineArgumentParser,
    non_negative_int,
    positive_int,
    run_command,
)
from cgan.common.errors import TrainingError
from cgan.common.images import fit_to_resolution
from cgan.common.progress import Progress
from cgan.common.records import DEFAULT_IMAGES_PER_SHARD, RecordManifest, RecordsWriter
from cgan.training.data import (
    CIFAR10_LABELS,
    cifar10_arrays,
    decode_image,
    find_images,
    is_records_folder,
)

PROG = "cgan-prepare"
# cgan.training.models.spec.RESOLUTIONS, which cannot be imported without Keras and
# TensorFlow (600 MB, seconds); tests/training/test_records.py keeps the two equal.
RESOLUTIONS = (32, 64)
CHUNK = 1024  # images decoded (or made) between two writes

EXAMPLES = """\
examples:
  # the shared CIFAR-10 copy, streamed by cgan-train --data data/cifar10-records
  cgan-prepare ../shared/datasets/cifar10/train data/cifar10-records --resolution 32

  # a scraped and built dataset at 64x64, smaller shards
  cgan-prepare data/mine-64 data/mine-64-records --resolution 64 --images-per-shard 2048

  # 200,000 synthetic shapes at 64x64 (2.4 GB)
  cgan-prepare synthetic /tmp/shapes-64 --resolution 64 --classes 10 --per-class 20000
"""


# (uint8 images [n, R, R, 3], int32 labels [n], source items consumed: n plus the skipped)
Chunk = tuple[np.ndarray, np.ndarray, int]


@dataclass
class Source:
    """Label names, how many items there are, and the images a chunk at a time."""

    names: list[str]
    total: int
    chunks: Iterator[Chunk]
    skipped: list[str]  # unreadable files, filled in as the chunks are read


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(prog=PROG, description=__doc__, epilog=EXAMPLES)
    parser.add_argument("data", help="cifar10, synthetic, or a class-folder path")
    parser.add_argument("out", type=Path, help="records folder to create (absent or empty)")
    parser.add_argument("--resolution", type=int, choices=RESOLUTIONS, required=True)
    parser.add_argument(
        "--images-per-shard",
        type=positive_int,
        default=DEFAULT_IMAGES_PER_SHARD,
        help=f"examples per shard file (default {DEFAULT_IMAGES_PER_SHARD})",
    )
    parser.add_argument(
        "--seed",
        type=non_negative_int,
        default=0,
        help="of the shuffle across shards, and of the synthetic images (default 0)",
    )
    parser.add_argument("--classes", type=positive_int, default=10, help="synthetic: classes")
    parser.add_argument(
        "--per-class", type=positive_int, default=200, help="synthetic: images per class"
    )
    parser.add_argument(
        "--workers", type=positive_int, default=8, help="threads decoding a class folder"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(PROG, lambda: run(args))


def run(args: argparse.Namespace) -> int:
    source = open_source(args)
    manifest = prepare(
        source, args.out, args.resolution, args.images_per_shard, args.seed, quiet=args.quiet
    )
    side = manifest.resolution
    print(
        f"{manifest.total} images in {len(manifest.names)} classes at {side}x{side}, "
        f"{len(manifest.shards)} shard(s) -> {args.out}",
        file=sys.stderr,
    )
    return 0


def open_source(args: argparse.Namespace) -> Source:
    """Check DATA and OUT before anything is read or written."""
    out = args.out
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise TrainingError(f"refusing to write into {out}: it exists and is not an empty folder")
    if args.data == "synthetic":
        from cgan.training.shapes import MAX_CLASSES, class_names, iter_shapes

        if args.classes > MAX_CLASSES:
            raise TrainingError(f"--classes: the synthetic dataset has 1 to {MAX_CLASSES}")
        shapes = iter_shapes(args.classes, args.per_class, args.resolution, args.seed, CHUNK)
        chunks = ((images, labels, len(labels)) for images, labels in shapes)
        return Source(class_names(args.classes), args.classes * args.per_class, chunks, [])
    if args.data == "cifar10":
        return Source(list(CIFAR10_LABELS), 50_000, _cifar10_chunks(args.resolution), [])
    root = Path(args.data)
    inside = out.resolve() == root.resolve() or root.resolve() in out.resolve().parents
    if root.exists() and inside:
        raise TrainingError("OUT must not be DATA or inside it")
    if is_records_folder(root):
        raise TrainingError(f"{root} is already a records folder; cgan-train reads it as it is")
    found = find_images(root)
    skipped: list[str] = []
    chunks = _folder_chunks(found, args.resolution, args.workers, skipped)
    return Source(list(found), sum(map(len, found.values())), chunks, skipped)


def _cifar10_chunks(resolution: int) -> Iterator[Chunk]:
    images, labels = cifar10_arrays()  # keras.datasets holds its 150 MB in memory anyway
    for start in range(0, len(labels), CHUNK):
        chunk = images[start : start + CHUNK]
        if resolution != chunk.shape[1]:
            chunk = np.stack([fit_to_resolution(image, resolution) for image in chunk])
        yield chunk, labels[start : start + CHUNK], len(chunk)


def _folder_chunks(
    found: dict[str, list[Path]], resolution: int, workers: int, skipped: list[str]
) -> Iterator[Chunk]:
    """Decoded images a chunk of files at a time; unreadable files go to `skipped`."""
    files = [(path, label) for label, paths in enumerate(found.values()) for path in paths]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for start in range(0, len(files), CHUNK):
            part = files[start : start + CHUNK]
            decoded = list(pool.map(lambda item: decode_image(item[0], resolution), part))
            pairs = list(zip(part, decoded, strict=True))
            images = [image for _, image in pairs if image is not None]
            labels = [label for (_, label), image in pairs if image is not None]
            skipped.extend(str(path) for (path, _), image in pairs if image is None)
            stacked = (
                np.stack(images) if images else np.empty((0, resolution, resolution, 3), np.uint8)
            )
            yield stacked, np.array(labels, np.int32), len(part)


def prepare(
    source: Source,
    out: Path,
    resolution: int,
    images_per_shard: int,
    seed: int,
    quiet: bool = False,
) -> RecordManifest:
    """Write `source` as a records folder at `out`: into a hidden sibling, then renamed."""
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    work.chmod(0o777 & ~umask)  # mkdtemp's 0700 would hide the dataset from other users
    try:
        writer = RecordsWriter(
            work, source.names, resolution, images_per_shard=images_per_shard, seed=seed
        )
        with writer:
            with Progress(PROG, source.total, "images", enabled=not quiet) as progress:
                for images, labels, consumed in source.chunks:
                    writer.add_many(images, labels)
                    progress.advance(consumed)
            if source.skipped:
                print(
                    f"skipped {len(source.skipped)} unreadable image file(s), "
                    f"e.g. {source.skipped[0]}",
                    file=sys.stderr,
                )
            with Progress(f"{PROG} shuffle", len(writer), "images", enabled=not quiet) as bar:
                manifest = writer.finish(advance=bar.advance)
        if out.exists():
            out.rmdir()  # checked empty by open_source
        work.rename(out)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return dataclasses.replace(manifest, folder=out)


if __name__ == "__main__":
    sys.exit(main())
