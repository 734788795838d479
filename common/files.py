"""Writing a file so that a reader never sees half of it: a temporary file, then a rename.

A crash or Ctrl-C mid-write leaves the old file (or none) and at most a hidden
`.NAME.*.tmp` beside it, never a truncated model, config or progress record. Temporary
names are unique, so two writers (two workers of one run) cannot rename each other's file.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success it replaces `target`."""
    target = Path(target)
    if not target.parent.is_dir():  # else mkstemp names its own temporary file, not the folder
        raise FileNotFoundError(errno.ENOENT, "no such folder", str(target.parent))
    descriptor, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(descriptor)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(name, 0o666 & ~umask)  # mkstemp's 0600 would hide the file from other users
    temporary = Path(name)
    try:
        yield temporary
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def write_bytes_atomic(target: Path, data: bytes) -> None:
    with atomic_path(target) as temporary:
        temporary.write_bytes(data)


def write_text_atomic(target: Path, text: str) -> None:
    with atomic_path(target) as temporary:
        temporary.write_text(text, encoding="utf-8")


def resolves_inside(path: Path, root: Path) -> bool:
    """Whether `path`, links resolved, lies in `root`: a dataset's links may point within
    it, never out of it (to files the user did not name)."""
    try:
        return Path(path).resolve().is_relative_to(Path(root).resolve())
    except (OSError, RuntimeError):  # a loop of links
        return False


def same_file(first: Path, second: Path) -> bool:
    """Whether two paths name one file, links followed (False when either is missing): an
    output must never replace the input it is computed from."""
    try:
        return os.path.samefile(first, second)
    except OSError:
        return False
