"""State shared by every spider writing into one output folder.

Several spiders (one per source) run in one process and must agree on what
is already kept: the per-label limit, the duplicate index and the manifest
are all per output folder, not per spider. On start the state is rebuilt from
the manifest, which is what makes a crawl resumable without downloading
anything twice.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

from scrapy.crawler import Crawler
from scrapy.settings import BaseSettings

from cgan.scraping.dedupe import DedupIndex
from cgan.scraping.manifest import KEPT, MANIFEST_NAME, Manifest, is_transient, latest_by_url
from cgan.scraping.quota import LabelQuota

logger = logging.getLogger(__name__)

_OWN_FILE = re.compile(r"^[0-9a-f]{40}\.jpg$")


class CrawlState:
    """Manifest, duplicate index, quota and URL bookkeeping for one ``OUT``."""

    _registry: ClassVar[dict[Path, CrawlState]] = {}

    def __init__(self, out_dir: Path, max_distance: int, retry_failed: bool = False) -> None:
        self.out_dir = out_dir
        self.manifest = Manifest(out_dir / MANIFEST_NAME)
        self.dedupe = DedupIndex(max_distance)
        self.quota = LabelQuota()
        self.pending: Counter[str] = Counter()
        self.known_urls: set[str] = set()
        self._claimed: set[str] = set()
        self._users = 0
        self._load(retry_failed)

    @classmethod
    def for_crawler(cls, crawler: Crawler) -> CrawlState:
        """The state for this crawler's ``IMAGES_STORE``, created on first use."""
        return cls.for_settings(crawler.settings)

    @classmethod
    def for_settings(cls, settings: BaseSettings) -> CrawlState:
        """Same as :meth:`for_crawler`, from settings alone."""
        out_dir = Path(settings.get("IMAGES_STORE") or "data/scraped").resolve()
        state = cls._registry.get(out_dir)
        if state is None:
            state = cls(
                out_dir,
                max_distance=settings.getint("PHASH_MAX_DISTANCE", 6),
                retry_failed=settings.getbool("CGAN_RETRY_FAILED"),
            )
            cls._registry[out_dir] = state
        return state

    def _load(self, retry_failed: bool) -> None:
        latest = latest_by_url(self.manifest.load())
        kept_paths: set[str] = set()
        missing = 0
        for url, record in latest.items():
            if record["status"] == KEPT:
                path = record.get("path") or ""
                kept_paths.add(path)
                self.dedupe.add(record.get("sha1") or url, record.get("phash"), record["label"])
                if (self.out_dir / path).is_file():
                    self.quota.kept[record["label"]] += 1
                else:
                    missing += 1
            elif retry_failed and is_transient(record.get("reason")):
                continue
            self.known_urls.add(url)
        if latest:
            logger.info(
                "resuming from %s: %d URLs already decided, %d images kept",
                self.manifest.path,
                len(latest),
                sum(self.quota.kept.values()),
            )
        if missing:
            logger.info(
                "%d kept images were deleted from disk; their labels get topped up", missing
            )
        self._remove_orphans(kept_paths)

    def _remove_orphans(self, kept_paths: set[str]) -> None:
        # A hard stop between saving a file and writing its manifest line leaves
        # a file nobody recorded; it would be re-downloaded anyway, so drop it.
        if not self.out_dir.is_dir():
            return
        for folder in self.out_dir.iterdir():
            if not folder.is_dir() or folder.name.startswith("."):
                continue
            for file in folder.iterdir():
                rel = f"{folder.name}/{file.name}"
                if _OWN_FILE.match(file.name) and rel not in kept_paths:
                    logger.warning(
                        "removing %s: saved by an interrupted run but never recorded", rel
                    )
                    file.unlink()

    def attach(self) -> None:
        """A pipeline starts using the manifest."""
        self._users += 1
        self.manifest.open()

    def detach(self) -> None:
        """A pipeline is done; the last one closes the manifest and frees the state."""
        self._users -= 1
        if self._users <= 0:
            self.quota.close()
            self.manifest.close()
            self._registry.pop(self.out_dir, None)

    def claim_url(self, url: str) -> bool:
        """True the first time a URL is offered this run and it isn't in the manifest."""
        if url in self.known_urls or url in self._claimed:
            return False
        self._claimed.add(url)
        return True

    def record(self, record: dict[str, Any]) -> None:
        """Append a decision to the manifest."""
        self.manifest.append(record)
        self.known_urls.add(record["url"])
