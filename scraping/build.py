"""`cgan-scrape build`: turn scraped class folders into a training-ready dataset.

Every image is centre-cropped to a square and resized to `--size` the way training does
it (cgan.common.images), so the trainer reads fixed-size images straight from
`OUT/<class>/`. Classes with too few images are dropped (a GAN class with ten examples
only memorises). The result is built in a temporary folder and swapped in at the end, so
a failed or interrupted build never leaves half a dataset behind.

With `--format records` the images go into TFRecord shards plus records.json instead
(cgan.common.records): a dataset larger than memory, which cgan-train streams from disk.

With several `--src` (the shards of a split crawl, or any crawl folders) the images are
first merged across them without duplicates (merge.py), and `OUT/manifest.jsonl` gets one
line per image of the dataset, saying where it came from.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from cgan.common.errors import ScrapeError
from cgan.common.files import resolves_inside, write_text_atomic
from cgan.common.images import MAX_SOURCE_PIXELS, centre_crop_resize
from cgan.common.labels import labels_problem
from cgan.common.progress import Progress
from cgan.common.records import RecordsWriter
from cgan.scraping.folders import MARKER, class_folders, class_images, refuse_nested
from cgan.scraping.manifest import MANIFEST_NAME
from cgan.scraping.merge import Merge, merge_crawls, merged_row
from cgan.scraping.report import format_table
from cgan.scraping.settings import PHASH_MAX_DISTANCE

REPORT_NAME = "report.json"


class BuildError(ScrapeError):
    """Bad builder input (missing folder, refusing to overwrite); a usage error."""


@dataclass
class BuildOptions:
    """What `cgan-scrape build` was asked to do."""

    src: Path | list[Path]  # several: crawl folders merged without duplicates
    out: Path
    size: int = 64
    min_per_class: int = 1
    fmt: str = "png"
    quality: int = 95
    allow_upscale: bool = False
    report: Path | None = None
    progress: bool = True  # images built so far, on stderr
    phash_distance: int = PHASH_MAX_DISTANCE  # with several src: near-duplicate bits
    split: str = "all"  # all, or train / val: the two sides of a held-out split
    val_fraction: float = 0.2  # the share of each class that --split val keeps

    def src_folders(self) -> list[Path]:
        """`src` as a list, one folder or several."""
        return list(self.src) if isinstance(self.src, list) else [self.src]


@dataclass
class ClassReport:
    """Outcome for one class folder."""

    kept: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    dropped: bool = False
    kept_paths: list[Path] = field(default_factory=list)  # --format records: no files to list


def square_image(path: Path, size: int, allow_upscale: bool) -> Image.Image:
    """One source image, upright, as an RGB `size` x `size` square; ValueError(reason) if
    it is unusable."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > MAX_SOURCE_PIXELS:
                raise ValueError("too_large")
            if min(width, height) < size and not allow_upscale:
                raise ValueError("too_small")
            if image.format == "JPEG":
                image.draft("RGB", (size * 2, size * 2))  # decode at reduced scale: much faster
            image.load()
            return centre_crop_resize(ImageOps.exif_transpose(image), size)
    except (UnidentifiedImageError, Image.DecompressionBombError):
        raise ValueError("not_an_image") from None
    except OSError:
        raise ValueError("corrupt") from None


def in_split(path: Path, split: str, val_fraction: float) -> bool:
    """Whether an image belongs to `split`. The draw is a hash of the file's name, so the
    train and val builds of one crawl never share an image, whatever else they were given,
    and a crawl that grows keeps its old images on their side."""
    if split == "all":
        return True
    draw = int.from_bytes(hashlib.sha1(path.name.encode()).digest()[:8], "big") / 2.0**64
    return (draw < val_fraction) == (split == "val")


def _build_class(
    paths: list[Path],
    dest: Path,
    options: BuildOptions,
    progress: Progress,
    records: RecordsWriter | None = None,
    label: int = 0,
) -> ClassReport:
    """Square every image into `dest`, or as example `label` of `records` when given."""
    report = ClassReport()
    if records is None:
        dest.mkdir(parents=True, exist_ok=True)
    suffix = ".png" if options.fmt == "png" else ".jpg"
    for path in paths:
        try:
            if not resolves_inside(path, path.parent.parent):  # src/<label>/<file>
                raise ValueError("link_out_of_src")
            image = square_image(path, options.size, options.allow_upscale)
        except ValueError as exc:
            report.rejected[str(exc)] += 1
        else:
            target = dest / (path.stem + suffix)
            if records is not None:
                records.add(np.asarray(image), label)
                report.kept_paths.append(path)
            elif options.fmt == "png":
                image.save(target, "PNG", optimize=False)
            else:
                image.save(target, "JPEG", quality=options.quality)
            report.kept += 1
        progress.advance()
    return report


def _is_old_build(out: Path) -> bool:
    report = out / REPORT_NAME
    return report.is_file() and MARKER in report.read_text(encoding="utf-8", errors="replace")


def check_output(out: Path) -> None:
    """Refuse an --out the build could not replace, before anything is built: a file, or a
    folder that is neither empty nor a previous build."""
    if out.exists() and not out.is_dir():
        raise BuildError(f"--out {out} is a file, not a folder")
    if out.is_dir() and not _is_old_build(out) and any(out.iterdir()):
        raise BuildError(f"refusing to replace {out}: it is not empty and not a previous build")


def check_report(report: Path | None, srcs: list[Path]) -> None:
    """Refuse a --report path that could not be written (a folder, or under a file), or that
    would land in a --src (it would mark the crawl as a built dataset), before the dataset
    is replaced."""
    if report is None:
        return
    if report.is_dir():
        raise BuildError(f"--report {report} is a folder; give a file name")
    parent = report.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise BuildError(f"--report {report}: {parent} is a file, not a folder")
    for src in srcs:
        if resolves_inside(report, src):
            raise BuildError(f"--report {report} must not be inside --src {src}")


def _replace_output(tmp: Path, out: Path) -> None:
    if out.exists():
        check_output(out)  # again: it may have changed during the build
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out)


def _one_folder(src: Path, out: Path) -> dict[str, list[Path]]:
    """The images of a single --src: every class folder's image files."""
    if not src.is_dir():
        raise BuildError(f"--src {src} does not exist or is not a folder")
    refuse_nested(src, out, BuildError)
    folders = class_folders(src)
    if not folders:
        raise BuildError(f"--src {src} has no class folders (expected {src}/<label>/*.jpg)")
    return {folder.name: class_images(folder) for folder in folders}


def build_dataset(options: BuildOptions, log: IO[str] | None = None) -> dict[str, ClassReport]:
    """Build the dataset; return the per-class report (also written as JSON)."""
    log = log or sys.stderr
    out, srcs = options.out, options.src_folders()
    merge: Merge | None = None
    if len(srcs) == 1:
        images = _one_folder(srcs[0], out)
    else:
        merge = merge_crawls(srcs, out, options.phash_distance, log)
        images = merge.images
        if not any(images.values()):
            raise BuildError(f"the --src folders have no kept images ({', '.join(map(str, srcs))})")
    problem = labels_problem(list(images))
    if problem:  # training and the exporter would refuse these names: say so first
        raise BuildError(f"the class folders cannot be a model's labels: {problem}")
    check_output(out)  # before building: a refusal after it would waste the work
    check_report(options.report, srcs)
    images = {
        name: [path for path in paths if in_split(path, options.split, options.val_fraction)]
        for name, paths in images.items()
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    total = sum(len(paths) for paths in images.values())
    records = None
    try:
        if options.fmt == "records":  # the writer mixes the classes across its shards
            records = RecordsWriter(tmp, list(images), options.size)
        with Progress("cgan-scrape build", total, "images", enabled=options.progress) as progress:
            reports = {
                name: _build_class(paths, tmp / name, options, progress, records, label)
                for label, (name, paths) in enumerate(images.items())
            }
        if merge is not None:
            for name, removed in merge.removed.items():
                reports[name].rejected.update(removed)
            print(f"cgan-scrape build: {merge.summary_line()}", file=log)
        for name, report in reports.items():
            if report.kept < options.min_per_class:
                report.dropped = True
                if records is not None:
                    records.drop_class(list(reports).index(name))
                else:
                    shutil.rmtree(tmp / name)
                print(
                    f"cgan-scrape build: dropping class {name!r}: {report.kept} usable images "
                    f"< --min-per-class {options.min_per_class}",
                    file=log,
                )
        if all(report.dropped for report in reports.values()):
            raise BuildError(f"no class has at least {options.min_per_class} usable images")
        data = report_json(options, reports, merge)
        if records is not None:
            records.finish()
        if merge is not None:
            kept = [p for r in reports.values() if not r.dropped for p in r.kept_paths]
            _write_manifest(tmp, merge, options, set(kept) if records is not None else None)
        (tmp / REPORT_NAME).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        _replace_output(tmp, out)
    finally:
        if records is not None and records.manifest is None:
            records.abort()  # closes its staging file
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    if options.report is not None:
        try:
            options.report.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(options.report, json.dumps(data, indent=2) + "\n")
        except OSError as exc:
            raise BuildError(
                f"built {out}, but cannot write --report {options.report}: {exc.strerror or exc}"
            ) from None
    return reports


def _write_manifest(
    tmp: Path, merge: Merge, options: BuildOptions, kept: set[Path] | None = None
) -> None:
    """`OUT/manifest.jsonl`: one line per image in the dataset, with its crawl line.
    `kept`: the source images a records build wrote (it has no image files to look for;
    its lines name an image `label/stem`)."""
    suffix = {"png": ".png", "records": ""}.get(options.fmt, ".jpg")
    lines = []
    for label, paths in merge.images.items():
        for path in paths:
            built = f"{label}/{path.stem}{suffix}"
            # not rejected by the build, class not dropped
            if (tmp / built).is_file() if kept is None else path in kept:
                lines.append(json.dumps(merged_row(merge.chosen[path], built), ensure_ascii=False))
    (tmp / MANIFEST_NAME).write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def report_json(
    options: BuildOptions, reports: dict[str, ClassReport], merge: Merge | None = None
) -> dict[str, Any]:
    """The report as written to `OUT/report.json`."""
    srcs = [str(src) for src in options.src_folders()]
    extra = {} if merge is None else {"merge": merge.report_json(options.phash_distance)}
    return {
        "builder": MARKER,
        "src": srcs[0] if len(srcs) == 1 else srcs,
        "size": options.size,
        "format": options.fmt,
        "min_per_class": options.min_per_class,
        "split": options.split,
        **({"val_fraction": options.val_fraction} if options.split != "all" else {}),
        "classes": {
            name: {
                "kept": r.kept,
                "rejected": sum(r.rejected.values()),
                "reasons": dict(r.rejected.most_common()),
                "dropped": r.dropped,
            }
            for name, r in reports.items()
        },
        "kept_classes": [name for name, r in reports.items() if not r.dropped],
        "total_images": sum(r.kept for r in reports.values() if not r.dropped),
        **extra,
    }


def render_report(reports: dict[str, ClassReport]) -> str:
    """Per-class table for the terminal."""
    rows = [
        [
            name,
            r.kept,
            sum(r.rejected.values()),
            ", ".join(f"{k}={v}" for k, v in r.rejected.most_common(3)) or "-",
            "dropped" if r.dropped else "kept",
        ]
        for name, r in reports.items()
    ]
    return format_table(["class", "images", "rejected", "reasons", "class status"], rows)
