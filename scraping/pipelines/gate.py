"""First pipeline: wait for a per-label slot and a download slot, or drop the item."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from itemadapter import ItemAdapter
from scrapy import signals
from scrapy.exceptions import DropItem
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.defer import DeferredSemaphore

from cgan.scraping.state import CrawlState

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from typing_extensions import Self


class QuotaGatePipeline:
    """Admit an item only while its label can still keep another image.

    Two gates: the per-label quota (what makes ``--limit`` exact under
    concurrency, see :mod:`scraping.quota`) and a cap on images being
    downloaded at once (CGAN_MAX_IN_FLIGHT, default CONCURRENT_REQUESTS).
    The cap keeps the rest waiting here rather than queued inside Scrapy's
    downloader, so Ctrl-C stops after the few downloads in progress. Items
    that don't get through are dropped quietly and not written to the
    manifest, so a later run can still try them.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.state = CrawlState.for_crawler(crawler)
        settings = crawler.settings
        size = settings.getint("CGAN_MAX_IN_FLIGHT") or settings.getint("CONCURRENT_REQUESTS", 16)
        self.downloads = DeferredSemaphore(max(1, size))
        self._holding: set[int] = set()
        # Whatever happens to an item after the gate, its slots come back.
        for signal in (signals.item_scraped, signals.item_dropped, signals.item_error):
            crawler.signals.connect(self._item_done, signal=signal)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    async def process_item(self, item: Any, spider: Spider | None = None) -> Any:
        label = ItemAdapter(item).get("label")
        token = id(item)
        if label not in self.state.quota.limits:
            raise DropItem(f"unknown label {label!r}", log_level="DEBUG")
        if not await maybe_deferred_to_future(self.state.quota.acquire(label, token)):
            raise DropItem(f"label {label!r} is full", log_level="DEBUG")
        await maybe_deferred_to_future(self.downloads.acquire())
        self._holding.add(token)
        if not self.crawler.crawling:
            raise DropItem("crawl is shutting down", log_level="DEBUG")
        if self.state.quota.is_full(label):
            raise DropItem(f"label {label!r} is full", log_level="DEBUG")
        return item

    def _item_done(self, item: Any, **_: Any) -> None:
        token = id(item)
        self.state.quota.abandon(token)  # no-op when the manifest pipeline already decided
        if token in self._holding:
            self._holding.discard(token)
            self.downloads.release()
