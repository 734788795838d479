"""Datasets larger than memory: fixed-size examples in TFRecord shards plus records.json.

The format is written and read here without TensorFlow, because the dataset build of the
scraping stage writes it and scraping may import only `cgan.common`; training streams it
with tf.data (`cgan.training.pipeline.make_record_dataset`).

A records folder holds

    shard-00000-of-00012.tfrecord ...  standard TFRecord framing: uint64 length (little
                                       endian), masked CRC32C of the length, the payload,
                                       masked CRC32C of the payload
    records.json                       the manifest, written last and atomically: a folder
                                       without it is unfinished and is never read

The payload of one example is its label as a little-endian int32 followed by the raw
uint8 pixels H x W x 3: no JPEG, so reading costs one reshape (a 64x64 example is 12,292
bytes) and every record of a set has the same size, which lets the manifest check a
shard's byte size exactly. The writer shuffles the examples across shards with a seeded
permutation when it finishes, so every shard holds a mix of classes whatever order its
caller added them in (the dataset build goes class by class).
"""

from __future__ import annotations

import json
import math
import re
import struct
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

import numpy as np

from cgan.common.errors import RecordsError
from cgan.common.files import write_text_atomic

FORMAT = "cgan-records"
VERSION = 1
MANIFEST_NAME = "records.json"
LABEL_BYTES = 4  # int32, little endian, before the pixels
FRAME_BYTES = 16  # length (8) + its CRC (4) + the payload's CRC (4)
DEFAULT_IMAGES_PER_SHARD = 4096  # 50 MB shards at 64x64, 13 MB at 32x32
MAX_RESOLUTION = 4096
MAX_SHARDS = 99_999  # five digits in the shard names
MAX_CLASSES = 100_000
MAX_NAME_CHARS = 200
MAX_TOTAL = 10**12
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
STAGING_NAME = ".records-staging.bin"
_SHARD_NAME = re.compile(r"shard-(\d{5})-of-(\d{5})\.tfrecord")
_CRC_MASK_DELTA = 0xA282EAD8


def payload_bytes(resolution: int) -> int:
    """Bytes of one example's payload: the label, then resolution^2 * 3 pixels."""
    return LABEL_BYTES + resolution * resolution * 3


def shard_name(index: int, count: int) -> str:
    return f"shard-{index:05d}-of-{count:05d}.tfrecord"


def _crc32c() -> Callable[[Any], int]:
    """google-crc32c's C implementation, imported only where records are written or read."""
    try:
        import google_crc32c
    except ImportError:
        raise RecordsError(
            "records datasets need the google-crc32c package (pip install google-crc32c; "
            "it is in the train and scrape extras)"
        ) from None
    return google_crc32c.value


def _mask(crc: np.ndarray | int) -> Any:
    """TFRecord's masked CRC: rotate right by 15 bits, add a constant (mod 2^32)."""
    if isinstance(crc, np.ndarray):
        crc = crc.astype(np.uint32)
        return ((crc >> np.uint32(15)) | (crc << np.uint32(17))) + np.uint32(_CRC_MASK_DELTA)
    return (((crc >> 15) | (crc << 17)) + _CRC_MASK_DELTA) & 0xFFFFFFFF


def masked_crc32c(data: Any) -> int:
    """The masked CRC32C of a bytes-like object, as TFRecord frames store it."""
    return _mask(_crc32c()(data))


def _length_header(payload: int) -> bytes:
    """The first 12 bytes of every frame of a set: all its payloads have one length."""
    length = struct.pack("<Q", payload)
    return length + struct.pack("<I", masked_crc32c(length))


def _names_problem(names: Any) -> str | None:
    """Why a list of label names is unusable, or None."""
    if not isinstance(names, list) or not names:
        return "names must be a non-empty list"
    if len(names) > MAX_CLASSES:
        return f"more than {MAX_CLASSES} names"
    for name in names:
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_CHARS:
            return f"label name {str(name)[:40]!r} must be text of 1 to {MAX_NAME_CHARS} chars"
        if any(ord(char) < 32 for char in name):
            return f"label name {name[:40]!r} holds control characters"
    if len(set(names)) != len(names):
        return "label names repeat"
    return None


@dataclass(frozen=True)
class RecordManifest:
    """What records.json says: the images' side, the labels, and every shard's count."""

    folder: Path
    resolution: int
    names: list[str]
    class_counts: dict[str, int]
    shards: list[tuple[str, int]]  # (file name, examples), in shard order
    seed: int = 0  # of the shuffle across shards, for the record

    @property
    def total(self) -> int:
        return sum(count for _, count in self.shards)

    @property
    def record_bytes(self) -> int:
        """Payload bytes of one example; a frame adds FRAME_BYTES."""
        return payload_bytes(self.resolution)

    def shard_paths(self) -> list[Path]:
        return [self.folder / name for name, _ in self.shards]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "resolution": self.resolution,
            "channels": 3,
            "record_bytes": self.record_bytes,
            "payload": "int32 label (little endian), then uint8 pixels [H, W, 3]",
            "names": list(self.names),
            "class_counts": dict(self.class_counts),
            "total": self.total,
            "seed": self.seed,
            "shards": [{"file": name, "count": count} for name, count in self.shards],
        }


class RecordsWriter:
    """Write a records folder: `add` / `add_many` examples in any order, then `finish`.

    Examples are appended to a hidden staging file; `finish` deals them out to the shards
    in a seeded random order (one shard at a time, each read from the staging file record
    by record), writes records.json last and deletes the staging file. Memory stays at one
    shard plus 4 bytes per example; the disk briefly holds the set twice. As a context
    manager it finishes on a clean exit and, on an error, removes everything it wrote.
    """

    def __init__(
        self,
        out_dir: Path,
        names: Sequence[str],
        resolution: int,
        *,
        images_per_shard: int = DEFAULT_IMAGES_PER_SHARD,
        seed: int = 0,
    ) -> None:
        problem = _names_problem(list(names))
        if problem:
            raise RecordsError(f"cannot write records: {problem}")
        if isinstance(resolution, bool) or not 1 <= int(resolution) <= MAX_RESOLUTION:
            raise RecordsError(f"cannot write records: resolution must be 1 to {MAX_RESOLUTION}")
        if images_per_shard < 1:
            raise RecordsError("cannot write records: images per shard must be at least 1")
        self.out_dir = Path(out_dir)
        self.names = list(names)
        self.resolution = int(resolution)
        self.images_per_shard = int(images_per_shard)
        self.seed = int(seed)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if (self.out_dir / MANIFEST_NAME).exists() or any(self.out_dir.glob("shard-*.tfrecord")):
            raise RecordsError(f"{self.out_dir} already holds a records dataset")
        self._payload = payload_bytes(self.resolution)
        self._staging_path = self.out_dir / STAGING_NAME
        self._staging = open(self._staging_path, "wb")  # noqa: SIM115 - closed in finish/abort
        self._labels = array("i")
        self._dropped: set[int] = set()
        self._written: list[Path] = []
        self.manifest: RecordManifest | None = None

    def __len__(self) -> int:
        """Examples added so far (dropped classes included)."""
        return len(self._labels)

    def add(self, image: np.ndarray, label: int) -> None:
        """One uint8 image [resolution, resolution, 3] and its label index."""
        self.add_many(np.asarray(image)[None], np.asarray([label]))

    def add_many(self, images: np.ndarray, labels: np.ndarray) -> None:
        """A chunk of uint8 images [N, resolution, resolution, 3] and their label indices."""
        if self.manifest is not None or self._staging.closed:
            raise RecordsError("the records writer is closed")
        images, labels = np.asarray(images), np.asarray(labels)
        side = self.resolution
        if images.dtype != np.uint8 or images.shape[1:] != (side, side, 3) or images.ndim != 4:
            raise RecordsError(
                f"records of {self.out_dir} take uint8 images [{side}, {side}, 3], "
                f"not {images.dtype} {list(images.shape[1:])}"
            )
        if labels.shape != (len(images),) or labels.dtype.kind not in "iu":
            raise RecordsError("one integer label per image is needed")
        if len(labels) and (labels.min() < 0 or labels.max() >= len(self.names)):
            raise RecordsError(f"labels must be 0 to {len(self.names) - 1}")
        rows = np.empty((len(images), self._payload), np.uint8)
        rows[:, :LABEL_BYTES] = labels.astype("<i4").view(np.uint8).reshape(-1, LABEL_BYTES)
        rows[:, LABEL_BYTES:] = images.reshape(len(images), -1)
        self._staging.write(rows.data)
        self._labels.frombytes(labels.astype(np.intc).tobytes())

    def drop_class(self, label: int) -> None:
        """Leave a class out of the set (a class with too few images, say); the labels of
        the classes after it move down so that they stay 0..K-1 in name order."""
        if not 0 <= label < len(self.names):
            raise RecordsError(f"labels must be 0 to {len(self.names) - 1}")
        self._dropped.add(label)

    def finish(self, advance: Callable[[int], None] | None = None) -> RecordManifest:
        """Shuffle the staged examples into the shards, write records.json, clean up.
        `advance(n)` is told of each shard's n examples as it is written."""
        if self.manifest is not None:
            return self.manifest
        try:
            self.manifest = self._finish(advance)
        except BaseException:
            self.abort()
            raise
        return self.manifest

    def _finish(self, advance: Callable[[int], None] | None) -> RecordManifest:
        self._staging.close()
        labels = np.frombuffer(self._labels, np.intc).astype(np.int32)
        counts = np.bincount(labels, minlength=len(self.names))
        kept = [k for k in range(len(self.names)) if k not in self._dropped]
        if not kept:
            raise RecordsError("every class was dropped: no records to write")
        empty = [self.names[k] for k in kept if counts[k] == 0]
        if empty:
            raise RecordsError(f"no images for class(es): {', '.join(empty)[:200]}")
        remap = np.full(len(self.names), -1, np.int32)
        remap[kept] = np.arange(len(kept), dtype=np.int32)
        order = np.flatnonzero(remap[labels] >= 0)
        order = order[np.random.default_rng(self.seed).permutation(len(order))]
        count = math.ceil(len(order) / self.images_per_shard)
        if count > MAX_SHARDS:
            raise RecordsError(
                f"{len(order)} images would need {count} shards (at most {MAX_SHARDS}): "
                "raise the images per shard"
            )
        header = np.frombuffer(_length_header(self._payload), np.uint8)
        shards = []
        with open(self._staging_path, "rb") as staged:
            for index, part in enumerate(np.array_split(order, count)):
                path = self.out_dir / shard_name(index, count)
                self._written.append(path)
                _write_shard(path, staged, self._payload, part, remap, header)
                shards.append((path.name, len(part)))
                if advance is not None:
                    advance(len(part))
        manifest = RecordManifest(
            folder=self.out_dir,
            resolution=self.resolution,
            names=[self.names[k] for k in kept],
            class_counts={self.names[k]: int(counts[k]) for k in kept},
            shards=shards,
            seed=self.seed,
        )
        write_text_atomic(
            self.out_dir / MANIFEST_NAME, json.dumps(manifest.to_json(), indent=1) + "\n"
        )
        self._staging_path.unlink(missing_ok=True)
        return manifest

    def abort(self) -> None:
        """Remove the staging file and the shards written so far; no records.json."""
        self._staging.close()
        self._staging_path.unlink(missing_ok=True)
        for path in self._written:
            path.unlink(missing_ok=True)
        self._written.clear()

    def __enter__(self) -> RecordsWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.finish()
        elif self.manifest is None:
            self.abort()


def _write_shard(
    path: Path,
    staged: BinaryIO,
    payload: int,
    part: np.ndarray,
    remap: np.ndarray,
    header: np.ndarray,
) -> None:
    """Frame the staged examples `part` (in that order) with relabelled payloads. The
    staging file is read record by record, not memory-mapped: a mapping would count the
    whole set in the process's resident memory as its pages are touched."""
    framed = np.empty((len(part), payload + FRAME_BYTES), np.uint8)
    framed[:, :12] = header
    for row in np.argsort(part, kind="stable"):  # front to back through the staging file
        staged.seek(int(part[row]) * payload)
        if staged.readinto(memoryview(framed[row, 12 : 12 + payload])) != payload:
            raise RecordsError(f"the staging file {STAGING_NAME} was cut short")
    labels = np.ascontiguousarray(framed[:, 12:16]).view("<i4").reshape(-1)
    framed[:, 12:16] = remap[labels].astype("<i4").view(np.uint8).reshape(-1, 4)
    value = _crc32c()
    crcs = np.fromiter(
        (value(row[12 : 12 + payload]) for row in framed), dtype=np.uint32, count=len(part)
    )
    framed[:, 12 + payload :] = _mask(crcs).astype("<u4").view(np.uint8).reshape(-1, 4)
    with open(path, "wb") as file:
        file.write(framed.data)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def read_manifest(folder: Path | str) -> RecordManifest:
    """records.json checked as hostile input, and every shard present at its exact size."""
    folder = Path(folder)
    path = folder / MANIFEST_NAME
    if not folder.is_dir():
        raise RecordsError(f"records folder {folder} does not exist or is not a folder")
    if not path.is_file():
        raise RecordsError(
            f"{folder} has no {MANIFEST_NAME}: not a records dataset, or an unfinished one"
        )
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise RecordsError(f"{path} is larger than {MAX_MANIFEST_BYTES // 2**20} MB")
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        reason = " ".join(str(exc).split())[:120] or type(exc).__name__
        raise RecordsError(f"{path} is not a readable JSON manifest ({reason})") from None

    def bad(problem: str) -> RecordsError:
        return RecordsError(f"{path}: {problem}")

    if not isinstance(data, dict):
        raise bad("expected a JSON object")
    if data.get("format") != FORMAT:
        raise bad(f"format is {str(data.get('format'))[:40]!r}, expected {FORMAT!r}")
    version = data.get("version")
    if not _whole(version) or version < 1:
        raise bad("version must be a whole number from 1")
    if version > VERSION:
        raise bad(f"format version {version} is newer than this program reads ({VERSION})")
    resolution = data.get("resolution")
    if not _whole(resolution) or not 1 <= resolution <= MAX_RESOLUTION:
        raise bad(f"resolution must be a whole number from 1 to {MAX_RESOLUTION}")
    if data.get("record_bytes") != payload_bytes(resolution):
        raise bad(f"record_bytes must be {payload_bytes(resolution)} at resolution {resolution}")
    names = data.get("names")
    problem = _names_problem(names)
    if problem:
        raise bad(problem)
    counts = data.get("class_counts")
    if not isinstance(counts, dict) or list(counts) != names:
        raise bad("class_counts must map every name, in the order of names, to its count")
    if not all(_whole(n) and 1 <= n <= MAX_TOTAL for n in counts.values()):
        raise bad("class_counts must be whole numbers of at least 1")
    total = data.get("total")
    if not _whole(total) or total != sum(counts.values()):
        raise bad("total must be the sum of class_counts")
    shards = data.get("shards")
    if not isinstance(shards, list) or not 1 <= len(shards) <= MAX_SHARDS:
        raise bad(f"shards must be a list of 1 to {MAX_SHARDS} entries")
    listed = []
    for index, entry in enumerate(shards):
        name = entry.get("file") if isinstance(entry, dict) else None
        count = entry.get("count") if isinstance(entry, dict) else None
        if not isinstance(name, str) or name != shard_name(index, len(shards)):
            raise bad(f"shard {index} must be named {shard_name(index, len(shards))}")
        if not _whole(count) or not 1 <= count <= MAX_TOTAL:
            raise bad(f"shard {name} needs a count of at least 1")
        listed.append((name, count))
    if sum(count for _, count in listed) != total:
        raise bad("the shard counts do not add up to total")
    seed = data.get("seed", 0)
    manifest = RecordManifest(
        folder=folder,
        resolution=resolution,
        names=list(names),
        class_counts=dict(counts),
        shards=listed,
        seed=seed if _whole(seed) else 0,
    )
    frame = manifest.record_bytes + FRAME_BYTES
    for shard, (name, count) in zip(manifest.shard_paths(), listed, strict=True):
        if not shard.is_file():
            raise RecordsError(f"{folder}: shard {name} is missing")
        size = shard.stat().st_size
        if size != count * frame:
            raise RecordsError(
                f"{shard} is {size} bytes, expected {count * frame} ({count} records): "
                "truncated or damaged; prepare the dataset again"
            )
    return manifest


def read_records(folder: Path | str) -> Iterator[tuple[np.ndarray, int]]:
    """Every (uint8 image [H, W, 3], label) in shard order, each frame's CRCs checked.
    Pure Python, for checks and tests; training streams the shards with tf.data."""
    manifest = read_manifest(folder)
    payload, side = manifest.record_bytes, manifest.resolution
    header = _length_header(payload)
    for path, count in zip(manifest.shard_paths(), (c for _, c in manifest.shards), strict=True):
        with open(path, "rb") as file:
            for index in range(count):
                frame = file.read(payload + FRAME_BYTES)
                if len(frame) < payload + FRAME_BYTES:
                    raise RecordsError(f"{path}: truncated at record {index}")
                if frame[:12] != header:
                    raise RecordsError(f"{path}: record {index} has a damaged length field")
                body = frame[12 : 12 + payload]
                if struct.unpack("<I", frame[12 + payload :])[0] != masked_crc32c(body):
                    raise RecordsError(f"{path}: record {index} fails its CRC check (damaged)")
                label = int.from_bytes(body[:LABEL_BYTES], "little", signed=True)
                if not 0 <= label < len(manifest.names):
                    raise RecordsError(f"{path}: record {index} has label {label}, out of range")
                yield (
                    np.frombuffer(body, np.uint8, offset=LABEL_BYTES).reshape(side, side, 3),
                    label,
                )
