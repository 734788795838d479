"""What every spider writing into one output folder shares: quota, duplicates, manifest.

Several spiders (one per source) run in one process and must agree on what is already
kept: the per-label limit, the duplicate index and the manifest belong to the output
folder, not to a spider. On start the state is rebuilt from the manifest, which is what
makes a crawl resumable without downloading anything twice.
"""

from __future__ import annotations

import logging
import re
from collections import Counter, defaultdict, deque
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from twisted.internet.defer import Deferred, succeed

from cgan.common.files import resolves_inside
from cgan.scraping.dedupe import DedupIndex
from cgan.scraping.manifest import KEPT, MANIFEST_NAME, Manifest, is_transient, latest_by_url

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)

_OWN_FILE = re.compile(r"^[0-9a-f]{40}\.jpg$")


class LabelQuota:
    """Per-label download slots that keep the kept count at or under `--limit`.

    Downloads run concurrently, so "stop at 500" needs bookkeeping: an item may start
    downloading only while kept + in flight < limit. Others wait; when a download is
    rejected its slot goes to the next waiter, and once the label is full every waiter is
    told to give up. Kept can therefore never pass the limit, and nothing is downloaded
    that could not be kept.
    """

    def __init__(self) -> None:
        self.limits: dict[str, int] = {}
        self.kept: defaultdict[str, int] = defaultdict(int)
        self.in_flight: defaultdict[str, int] = defaultdict(int)
        self._waiters: defaultdict[str, deque[Deferred[bool]]] = defaultdict(deque)
        self._holders: dict[int, str] = {}

    def set_limit(self, label: str, limit: int) -> None:
        self.limits[label] = limit

    def is_full(self, label: str) -> bool:
        """True once `label` has kept its limit."""
        return self.kept[label] >= self.limits.get(label, 0)

    def has_room(self, label: str) -> bool:
        """True while a new download for `label` could still be kept."""
        return self.kept[label] + self.in_flight[label] < self.limits.get(label, 0)

    def acquire(self, label: str, token: int) -> Deferred[bool]:
        """Fire True once `token` holds a slot, or False if the label filled up."""
        if self.is_full(label):
            return succeed(False)
        if self.has_room(label):
            self._hold(label, token)
            return succeed(True)
        waiter: Deferred[bool] = Deferred()
        waiter.addCallback(self._granted, label, token)
        self._waiters[label].append(waiter)
        return waiter

    def finish(self, token: int, kept: bool) -> None:
        """Free `token`'s slot, counting it as kept or handing it to a waiter."""
        label = self._holders.pop(token, None)
        if label is None:
            return
        self.in_flight[label] -= 1
        if kept:
            self.kept[label] += 1
        self._wake(label)

    def abandon(self, token: int) -> None:
        """Free the slot of an item that failed without a decision."""
        self.finish(token, kept=False)

    def close(self) -> None:
        """Tell every waiter to give up (the crawl is ending)."""
        for label in list(self._waiters):
            waiters = self._waiters.pop(label)
            while waiters:
                waiters.popleft().callback(None)

    def _hold(self, label: str, token: int) -> None:
        self.in_flight[label] += 1
        self._holders[token] = label

    def _granted(self, granted: bool | None, label: str, token: int) -> bool:
        # Runs when a waiter is woken: None means "give up", True means a slot was
        # freed for it and it now takes it.
        if granted:
            self._hold(label, token)
            return True
        return False

    def _wake(self, label: str) -> None:
        waiters = self._waiters.get(label)
        if not waiters:
            return
        if self.is_full(label):
            while waiters:
                waiters.popleft().callback(None)
        elif self.has_room(label):
            waiters.popleft().callback(True)


class CrawlState:
    """Manifest, duplicate index, quota and URL bookkeeping for one output folder."""

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
        """The state for this crawler's IMAGES_STORE, created on first use."""
        return cls.for_settings(crawler.settings)

    @classmethod
    def for_settings(cls, settings: BaseSettings) -> CrawlState:
        """The state for the IMAGES_STORE of `settings`, created on first use."""
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
                file = self.out_dir / path
                if path and resolves_inside(file, self.out_dir) and file.is_file():
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
        # A hard stop between saving a file and writing its manifest line leaves a file
        # nobody recorded; it would be downloaded again anyway, so drop it. Only ever a
        # file inside the output folder: linked folders and files are left alone.
        if not self.out_dir.is_dir():
            return
        folders = [
            folder
            for folder in sorted(self.out_dir.iterdir())
            if folder.is_dir() and not folder.name.startswith(".")
        ]
        for folder in folders:
            if folder.is_symlink() or not resolves_inside(folder, self.out_dir):
                # The crawl never makes one, so it holds no orphan of this crawl's (and a
                # class folder linked out was refused before the crawl began).
                continue
            for file in folder.iterdir():
                rel = f"{folder.name}/{file.name}"
                if not _OWN_FILE.match(file.name) or rel in kept_paths:
                    continue
                if file.is_symlink() or not resolves_inside(file, self.out_dir):
                    logger.warning("leaving %s alone: a link, not a file this crawl saved", rel)
                    continue
                logger.warning("removing %s: saved by an interrupted run but never recorded", rel)
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
