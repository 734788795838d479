"""The append-only JSONL manifest: one line per image decision.

Every image the crawl tried ends up as exactly one line, `kept` or `rejected` with a
reason. Lines are written whole and flushed at once, so an interrupted crawl leaves at
worst one partial last line, which `Manifest.load` trims before new lines are appended.
When a URL appears twice (only after `--retry-failed`) the later line wins.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from cgan.common.errors import ScrapeError
from cgan.scraping.folders import refuse_link_out

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.jsonl"
KEPT = "kept"
REJECTED = "rejected"

# Fields every line carries, in this order (None when unknown).
FIELDS = (
    "url",
    "label",
    "source",
    "licence",
    "licence_url",
    "author",
    "source_page",
    "title",
    "status",
    "reason",
    "detail",
    "sha1",
    "phash",
    "width",
    "height",
    "bytes",
    "path",
    "time",
)

# Fields the tools read from a line: a line where one holds another type is malformed.
_TEXT_FIELDS = ("label", "path", "sha1", "phash", "reason", "time")
_PHASH = re.compile(r"^[0-9a-f]{16}$")

# Failures worth another try on a later run with --retry-failed.
TRANSIENT_REASONS = frozenset({"timeout", "connection_error", "data_loss", "http_429"})


def is_transient(reason: str | None) -> bool:
    """Whether a rejection could go away by itself (server trouble, not the image)."""
    return bool(reason) and (reason in TRANSIENT_REASONS or reason.startswith("http_5"))


def utc_now() -> str:
    """Timestamp for a manifest line; seconds are enough to order a crawl."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def make_record(**values: Any) -> dict[str, Any]:
    """A manifest line with every field present, in a stable order."""
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise KeyError(f"unknown manifest fields: {sorted(unknown)}")
    record = {field: values.get(field) for field in FIELDS}
    if record["time"] is None:
        record["time"] = utc_now()
    return record


def is_well_formed(record: object) -> bool:
    """Whether a parsed line is a decision the tools can use: a non-empty `url` and
    `status`, the fields they read text or null, a perceptual hash in hex. A line of other
    types (hand edited, or from another tool) is skipped like one that is not JSON."""
    if not isinstance(record, dict):
        return False
    if not all(isinstance(record.get(key), str) and record[key] for key in ("url", "status")):
        return False
    if not all(record.get(key) is None or isinstance(record[key], str) for key in _TEXT_FIELDS):
        return False
    return record.get("phash") is None or bool(_PHASH.match(record["phash"]))


class Manifest:
    """Reader and appender for `OUT/manifest.jsonl`."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fh: IO[str] | None = None
        self.skipped_lines = 0

    def load(self) -> list[dict[str, Any]]:
        """Read every valid line, trimming a partial last line left by a hard stop.

        A manifest that is a link out of its folder is refused (ScrapeError): trimming it
        would cut a file the user never named."""
        self.check_inside()
        if not self.path.exists():
            return []
        try:
            raw = self.path.read_bytes()
            if raw and not raw.endswith(b"\n"):
                cut = raw.rfind(b"\n") + 1
                logger.warning(
                    "manifest %s ends with a partial line (interrupted run); dropping it",
                    self.path,
                )
                with self.path.open("r+b") as fh:
                    fh.truncate(cut)
                raw = raw[:cut]
        except OSError as exc:
            raise ScrapeError(f"manifest {self.path}: {exc.strerror or exc}") from None
        records = []
        self.skipped_lines = 0
        for line in raw.decode("utf-8", errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, RecursionError):  # RecursionError: [[[[...
                self.skipped_lines += 1
                continue
            if is_well_formed(record):
                records.append(record)
            else:
                self.skipped_lines += 1
        if self.skipped_lines:
            logger.warning(
                "manifest %s: ignored %d unreadable lines", self.path, self.skipped_lines
            )
        return records

    def open(self) -> None:
        """Open for appending (creating the folder); loading first repairs the tail."""
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.check_inside()
            self._fh = self.path.open("a", encoding="utf-8")

    def check_inside(self) -> None:
        """Refuse a manifest that is a link (even a dangling one) out of its folder."""
        refuse_link_out(self.path, self.path.parent, "manifest")

    def append(self, record: dict[str, Any]) -> None:
        """Write one whole line and flush it, so a crash can't tear earlier lines."""
        if self._fh is None:
            self.open()
        assert self._fh is not None
        self._fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._fh.flush()

    def close(self) -> None:
        """Flush to disk and close; safe to call twice."""
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            self._fh = None


def latest_by_url(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Collapse repeated URLs (from retried failures) to their last decision."""
    latest: dict[str, dict[str, Any]] = {}
    for record in records:
        latest[record["url"]] = record
    return latest


def read_manifest(out_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Load `OUT/manifest.jsonl` (an empty list when there is none)."""
    return Manifest(Path(out_dir) / MANIFEST_NAME).load()
