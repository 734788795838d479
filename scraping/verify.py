"""`cgan-scrape verify`: the content check on a class-folder dataset that already exists.

Images are decoded and resized in worker threads and judged in batches on onnxruntime;
nothing is moved unless `--move-rejected DIR` is given, and then only off-topic images
(to `DIR/<label>/`). When the folder is a crawl's output, each moved image also gets a
manifest line (`rejected`, `off_topic`), so a later crawl never fetches it again.
"""

from __future__ import annotations

import json
import shutil
import sys
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from cgan.common.errors import ScrapeError
from cgan.common.files import resolves_inside, write_text_atomic
from cgan.common.imagenet.preprocess import prepare
from cgan.common.progress import Progress
from cgan.scraping.contentcheck import OFF_TOPIC, ContentCheck, Verdict
from cgan.scraping.folders import class_folders, class_images
from cgan.scraping.manifest import (
    FIELDS,
    KEPT,
    MANIFEST_NAME,
    REJECTED,
    Manifest,
    latest_by_url,
    utc_now,
)
from cgan.scraping.report import format_table

KEPT_DECISION, UNCHECKED, UNREADABLE = "kept", "unchecked", "unreadable"
MAX_PIXELS = 80_000_000  # larger files are reported unreadable, never decoded

# MAX_PIXELS decides; Pillow's warning would only repeat it on the terminal.
warnings.simplefilter("ignore", Image.DecompressionBombWarning)


class VerifyError(ScrapeError):
    """Bad request (missing folder, unsafe --move-rejected): a usage error."""


@dataclass
class VerifyOptions:
    """What `cgan-scrape verify` was asked to do."""

    src: Path
    report: Path | None = None
    move_rejected: Path | None = None
    batch_size: int = 32
    workers: int = 4
    progress: bool = True  # images checked so far, on stderr


@dataclass
class LabelCounts:
    """Per label: the decisions, and what the label was mapped to."""

    mapping: str
    checked: bool
    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys((KEPT_DECISION, OFF_TOPIC, UNCHECKED, UNREADABLE), 0)
    )


@dataclass(frozen=True)
class ImageDecision:
    """One image: its decision and most likely ImageNet classes; where it went if moved."""

    path: str
    label: str
    decision: str
    top: tuple[tuple[str, float], ...] = ()
    moved_to: str | None = None


def find_images(src: Path, log: IO[str] | None = None) -> dict[str, list[Path]]:
    """Class folder name -> its image files, sorted (hidden and `_` folders skipped).

    A class folder or image that is a link out of `src` is skipped, and said on `log`
    (stderr): judging it would read, and --move-rejected move, a file the user never named.
    """
    if not src.is_dir():
        raise VerifyError(f"--src {src} does not exist or is not a folder")
    folders = class_folders(src)
    skipped = sum(1 for folder in folders if not resolves_inside(folder, src))
    found = {}
    for folder in (folder for folder in folders if resolves_inside(folder, src)):
        files = class_images(folder)
        found[folder.name] = [path for path in files if resolves_inside(path, src)]
        skipped += len(files) - len(found[folder.name])
    if not found:
        raise VerifyError(f"--src {src} has no class folders (expected {src}/<label>/*.jpg)")
    if skipped:
        print(
            f"cgan-scrape verify: skipped {skipped} link(s) to folders or files outside {src}",
            file=log or sys.stderr,
        )
    return found


def _load(path: Path, size: int, crop: float) -> np.ndarray | None:
    """Prepared pixels, or None for a file that is not a readable image."""
    try:
        with Image.open(path) as image:
            if image.width * image.height > MAX_PIXELS:
                return None
            image.draft("RGB", (size, size))  # JPEG: decode at a reduced scale, much faster
            return prepare(image, size, crop)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
        return None


def _batches(
    paths: list[Path], check: ContentCheck, options: VerifyOptions, pool: ThreadPoolExecutor
) -> Iterator[tuple[list[Path], list[np.ndarray | None]]]:
    size, crop = check.runner.input_size, check.runner.crop
    for start in range(0, len(paths), options.batch_size):
        chunk = paths[start : start + options.batch_size]
        yield chunk, list(pool.map(lambda p: _load(p, size, crop), chunk))


def _judge_label(
    label: str,
    paths: list[Path],
    check: ContentCheck,
    options: VerifyOptions,
    pool: ThreadPoolExecutor,
    progress: Progress,
) -> list[ImageDecision]:
    decisions = []
    checked = check.concept(label).checked
    for chunk, pixels in _batches(paths, check, options, pool):
        readable = [i for i, p in enumerate(pixels) if p is not None]
        verdicts: dict[int, Verdict] = {}
        if checked and readable:
            batch = np.stack([pixels[i] for i in readable])
            verdicts = dict(zip(readable, check.check_pixels(label, batch), strict=True))
        for i, path in enumerate(chunk):
            relative = str(path.relative_to(options.src))
            if pixels[i] is None:
                decisions.append(ImageDecision(relative, label, UNREADABLE))
            elif not checked:
                decisions.append(ImageDecision(relative, label, UNCHECKED))
            else:
                verdict = verdicts[i]
                decision = KEPT_DECISION if verdict.on_topic else OFF_TOPIC
                decisions.append(ImageDecision(relative, label, decision, verdict.top))
        progress.advance(len(chunk))
    return decisions


def check_move_target(src: Path, target: Path | None) -> None:
    """Refuse a --move-rejected folder the next run would read as a class, or SRC itself,
    and a manifest linked out of SRC (a move appends to it)."""
    if target is None:
        return
    Manifest(src / MANIFEST_NAME).check_inside()
    src_r, target_r = src.resolve(), target.resolve()
    if target_r == src_r:
        raise VerifyError("--move-rejected must not be --src")
    if src_r in target_r.parents:
        first = target_r.relative_to(src_r).parts[0]
        if not first.startswith(("_", ".")):
            raise VerifyError(
                f"--move-rejected {target} is inside --src, where {first}/ would "
                f"be read as a class; name it with a leading '_' "
                f"(e.g. {src / '_off_topic'})"
            )


def _free_name(target: Path) -> Path:
    candidate, n = target, 1
    while candidate.exists():
        candidate = target.with_name(f"{target.stem}-{n}{target.suffix}")
        n += 1
    return candidate


def move_rejected(decisions: list[ImageDecision], options: VerifyOptions) -> list[ImageDecision]:
    """Move off-topic images out of the dataset; record them in the crawl's manifest."""
    assert options.move_rejected is not None
    manifest_path = options.src / MANIFEST_NAME
    by_path: dict[str, dict[str, Any]] = {}
    if manifest_path.is_file():
        by_path = {
            record.get("path"): record
            for record in latest_by_url(Manifest(manifest_path).load()).values()
            if record.get("status") == KEPT
        }
    for label in sorted({item.label for item in decisions if item.decision == OFF_TOPIC}):
        folder = options.move_rejected / label  # every one checked before the first move
        if not resolves_inside(folder, options.move_rejected):
            raise VerifyError(f"{folder} is a link out of --move-rejected; refusing to move")
    manifest = Manifest(manifest_path)
    moved = []
    try:
        for item in decisions:
            if item.decision != OFF_TOPIC:
                moved.append(item)
                continue
            target = _free_name(options.move_rejected / item.label / Path(item.path).name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(options.src / item.path), target)
            moved.append(ImageDecision(item.path, item.label, item.decision, item.top, str(target)))
            record = by_path.get(item.path)
            if record is not None:
                values = {key: record.get(key) for key in FIELDS if key != "time"}
                detail = Verdict(False, item.top).detail()
                manifest.append(
                    {
                        **values,
                        "status": REJECTED,
                        "reason": OFF_TOPIC,
                        "detail": detail,
                        "path": None,
                        "time": utc_now(),
                    }
                )
    finally:
        manifest.close()
    return moved


def verify_folder(
    options: VerifyOptions, check: ContentCheck, progress_stream: IO[str] | None = None
) -> tuple[dict[str, LabelCounts], list[ImageDecision], float]:
    """Judge every image; returns per-label counts, per-image decisions and images/s."""
    found = find_images(options.src, progress_stream)
    check_move_target(options.src, options.move_rejected)
    total = sum(len(paths) for paths in found.values())
    decisions: list[ImageDecision] = []
    with (
        Progress(
            "cgan-scrape verify",
            total,
            "images",
            enabled=options.progress,
            stream=progress_stream,
        ) as progress,
        ThreadPoolExecutor(max_workers=options.workers) as pool,
    ):
        for label, paths in found.items():
            decisions.extend(_judge_label(label, paths, check, options, pool, progress))
    rate = progress.rate()
    if options.move_rejected is not None:
        decisions = move_rejected(decisions, options)
    counts = {
        label: LabelCounts(check.concept(label).describe(), check.concept(label).checked)
        for label in found
    }
    for item in decisions:
        counts[item.label].counts[item.decision] += 1
    return counts, decisions, rate


def report_json(
    options: VerifyOptions,
    check: ContentCheck,
    counts: dict[str, LabelCounts],
    decisions: list[ImageDecision],
    rate: float,
) -> dict[str, Any]:
    """The full report: rule and network, per label, per image."""
    return {
        "src": str(options.src),
        "check": check.describe(),
        "top_k": check.top_k,
        "min_prob": check.min_prob,
        "images_per_second": round(rate, 1),
        "moved_to": str(options.move_rejected) if options.move_rejected else None,
        "labels": {
            label: {"mapping": c.mapping, "checked": c.checked, **c.counts}
            for label, c in counts.items()
        },
        "images": [
            {
                "path": d.path,
                "label": d.label,
                "decision": d.decision,
                "top": [[name, round(prob, 4)] for name, prob in d.top],
                **({"moved_to": d.moved_to} if d.moved_to else {}),
            }
            for d in decisions
        ],
    }


def write_report(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def render(counts: dict[str, LabelCounts]) -> str:
    """The per-label table for the terminal."""
    rows = [
        [
            label,
            c.counts[KEPT_DECISION],
            c.counts[OFF_TOPIC],
            c.counts[UNCHECKED],
            c.counts[UNREADABLE],
            c.mapping.split(" -> ", 1)[1] if " -> " in c.mapping else c.mapping,
        ]
        for label, c in counts.items()
    ]
    return format_table(
        ["label", "kept", "off_topic", "unchecked", "unreadable", "ImageNet classes"], rows
    )
