"""A scraped or built dataset on disk: its class folders, their images, and the marker that
says a folder was written by `cgan-scrape build` (build, merge and verify all read these)."""

from __future__ import annotations

from pathlib import Path

from cgan.common.images import is_image_file

MARKER = "cgan-scrape build"  # in report.json of a built dataset


def class_folders(src: Path) -> list[Path]:
    """Sub-folders that are classes (hidden and `_` folders are bookkeeping)."""
    return sorted(p for p in src.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def class_images(folder: Path) -> list[Path]:
    """A class folder's image files, sorted (hidden files are partial downloads)."""
    return sorted(path for path in folder.iterdir() if path.is_file() and is_image_file(path))
