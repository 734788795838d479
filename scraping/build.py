"""`cgan-scrape build`: turn scraped class folders into a training-ready dataset.

Every image is centre-cropped to a square and resized to `--size` the way training does
it (cgan.common.images), so the trainer reads fixed-size images straight from
`OUT/<class>/`. Classes with too few images are dropped (a GAN class with ten examples
only memorises). The result is built in a temporary folder and swapped in at the end, so
a failed or interrupted build never leaves half a dataset behind.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from PIL import Image, ImageOps, UnidentifiedImageError

from cgan.common.errors import ScrapeError
from cgan.common.files import write_text_atomic
from cgan.common.images import centre_crop_resize, is_image_file
from cgan.common.progress import Progress
from cgan.scraping.report import format_table

REPORT_NAME = "report.json"
MAX_SOURCE_PIXELS = 80_000_000
_MARKER = "cgan-scrape build"


class BuildError(ScrapeError):
    """Bad builder input (missing folder, refusing to overwrite); a usage error."""


@dataclass
class BuildOptions:
    """What `cgan-scrape build` was asked to do."""

    src: Path
    out: Path
    size: int = 64
    min_per_class: int = 1
    fmt: str = "png"
    quality: int = 95
    allow_upscale: bool = False
    report: Path | None = None
    progress: bool = True  # images built so far, on stderr


@dataclass
class ClassReport:
    """Outcome for one class folder."""

    kept: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    dropped: bool = False


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


def class_folders(src: Path) -> list[Path]:
    """Sub-folders that are classes (hidden and `_` folders are bookkeeping)."""
    return sorted(p for p in src.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def class_images(folder: Path) -> list[Path]:
    """A class folder's image files, sorted (hidden files are partial downloads)."""
    return sorted(path for path in folder.iterdir() if path.is_file() and is_image_file(path))


def _build_class(
    paths: list[Path], dest: Path, options: BuildOptions, progress: Progress
) -> ClassReport:
    report = ClassReport()
    dest.mkdir(parents=True, exist_ok=True)
    suffix = ".png" if options.fmt == "png" else ".jpg"
    for path in paths:
        try:
            image = square_image(path, options.size, options.allow_upscale)
        except ValueError as exc:
            report.rejected[str(exc)] += 1
        else:
            target = dest / (path.stem + suffix)
            if options.fmt == "png":
                image.save(target, "PNG", optimize=False)
            else:
                image.save(target, "JPEG", quality=options.quality)
            report.kept += 1
        progress.advance()
    return report


def _replace_output(tmp: Path, out: Path) -> None:
    if out.exists():
        is_old_build = (out / REPORT_NAME).is_file() and _MARKER in (out / REPORT_NAME).read_text(
            encoding="utf-8", errors="replace"
        )
        if not is_old_build and any(out.iterdir()):
            raise BuildError(f"refusing to replace {out}: it is not empty and not a previous build")
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out)


def build_dataset(options: BuildOptions, log: IO[str] | None = None) -> dict[str, ClassReport]:
    """Build the dataset; return the per-class report (also written as JSON)."""
    log = log or sys.stderr
    src, out = options.src, options.out
    if not src.is_dir():
        raise BuildError(f"--src {src} does not exist or is not a folder")
    if out.resolve() == src.resolve() or src.resolve() in out.resolve().parents:
        raise BuildError("--out must not be --src or inside it")
    folders = class_folders(src)
    if not folders:
        raise BuildError(f"--src {src} has no class folders (expected {src}/<label>/*.jpg)")
    images = {folder.name: class_images(folder) for folder in folders}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    total = sum(len(paths) for paths in images.values())
    try:
        with Progress("cgan-scrape build", total, "images", enabled=options.progress) as progress:
            reports = {
                name: _build_class(paths, tmp / name, options, progress)
                for name, paths in images.items()
            }
        for name, report in reports.items():
            if report.kept < options.min_per_class:
                report.dropped = True
                shutil.rmtree(tmp / name)
                print(
                    f"cgan-scrape build: dropping class {name!r}: {report.kept} usable images "
                    f"< --min-per-class {options.min_per_class}",
                    file=log,
                )
        if all(report.dropped for report in reports.values()):
            raise BuildError(f"no class has at least {options.min_per_class} usable images")
        data = report_json(options, reports)
        (tmp / REPORT_NAME).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        _replace_output(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    if options.report is not None:
        options.report.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(options.report, json.dumps(data, indent=2) + "\n")
    return reports


def report_json(options: BuildOptions, reports: dict[str, ClassReport]) -> dict[str, Any]:
    """The report as written to `OUT/report.json`."""
    return {
        "builder": _MARKER,
        "src": str(options.src),
        "size": options.size,
        "format": options.fmt,
        "min_per_class": options.min_per_class,
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
