"""A scraped or built dataset on disk: its class folders, their images, and the marker that
says a folder was written by `cgan-scrape build` (build, merge and verify all read these)."""

from __future__ import annotations

from pathlib import Path

from cgan.common.errors import ScrapeError
from cgan.common.files import resolves_inside
from cgan.common.images import is_image_file

MARKER = "cgan-scrape build"  # in report.json of a built dataset


def class_folders(src: Path) -> list[Path]:
    """Sub-folders that are classes (hidden and `_` folders are bookkeeping)."""
    return sorted(p for p in src.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def class_images(folder: Path) -> list[Path]:
    """A class folder's image files, sorted (hidden files are partial downloads)."""
    return sorted(path for path in folder.iterdir() if path.is_file() and is_image_file(path))


def refuse_link_out(path: Path, root: Path, what: str) -> None:
    """Refuse `path` (existing, or a dangling link) when it resolves outside `root`: reading,
    appending to or deleting through it would touch a file the user never named."""
    if (path.is_symlink() or path.exists()) and not resolves_inside(path, root):
        raise ScrapeError(
            f"{what} {path} is a link out of {root}; refusing to use it (replace the link "
            "with a real file or folder, or give another folder)"
        )


def refuse_nested(src: Path, out: Path, error: type[ScrapeError] = ScrapeError) -> None:
    """Refuse an --out that is --src or inside it (the build would read what it writes), and
    a --src inside --out (the build replaces --out, deleting the source with it)."""
    real, target = src.resolve(), out.resolve()
    if target == real or real in target.parents:
        raise error(f"--out must not be --src {src} or inside it")
    if target in real.parents:
        raise error(f"--src {src} is inside --out {out}, which the build replaces")
