"""Turn scraped class folders into a training-ready dataset.

Every image is centre-cropped to a square and resized to ``--size``, so the
trainer reads fixed-size images straight from ``OUT/<class>/``. Classes with
too few images are dropped (a GAN class with ten examples only memorises).
The result is built in a temporary folder and swapped in at the end, so a
failed or interrupted build never leaves half a dataset behind.
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
from cgan.scraping.tables import format_table

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
REPORT_NAME = "report.json"
MAX_SOURCE_PIXELS = 80_000_000
_MARKER = "cgan-scrape build"


class BuildError(ScrapeError):
    """Bad builder input (missing folder, refusing to overwrite); a usage error."""


@dataclass
class BuildOptions:
    """What ``cgan-scrape build`` was asked to do."""

    src: Path
    out: Path
    size: int = 64
    min_per_class: int = 1
    fmt: str = "png"
    quality: int = 95
    allow_upscale: bool = False
    report: Path | None = None


@dataclass
class ClassReport:
    """Outcome for one class folder."""

    kept: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    dropped: bool = False


def square_resize(image: Image.Image, size: int) -> Image.Image:
    """Centre crop to the largest square, then resize to ``size`` x ``size``."""
    return ImageOps.fit(image, (size, size), method=Image.Resampling.LANCZOS, centering=(0.5, 0.5))


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB with transparency flattened onto white (a GAN has no alpha channel)."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def load_image(path: Path, size: int, allow_upscale: bool) -> Image.Image:
    """Open, check and convert one source image; raise ValueError(reason) if unusable."""
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
            return to_rgb(ImageOps.exif_transpose(image))
    except (UnidentifiedImageError, Image.DecompressionBombError):
        raise ValueError("not_an_image") from None
    except OSError:
        raise ValueError("corrupt") from None


def class_folders(src: Path) -> list[Path]:
    """Sub-folders that are classes (hidden and ``_`` folders are bookkeeping)."""
    return sorted(p for p in src.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def _build_class(folder: Path, dest: Path, options: BuildOptions) -> ClassReport:
    report = ClassReport()
    dest.mkdir(parents=True, exist_ok=True)
    suffix = ".png" if options.fmt == "png" else ".jpg"
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        try:
            image = square_resize(
                load_image(path, options.size, options.allow_upscale), options.size
            )
        except ValueError as exc:
            report.rejected[str(exc)] += 1
            continue
        target = dest / (path.stem + suffix)
        if options.fmt == "png":
            image.save(target, "PNG", optimize=False)
        else:
            image.save(target, "JPEG", quality=options.quality)
        report.kept += 1
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
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        reports = {
            folder.name: _build_class(folder, tmp / folder.name, options) for folder in folders
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
        options.report.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return reports


def report_json(options: BuildOptions, reports: dict[str, ClassReport]) -> dict[str, Any]:
    """The report as written to ``OUT/report.json``."""
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
