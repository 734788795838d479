"""Last pipeline: write each decision to the manifest and free its slot."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from itemadapter import ItemAdapter

from cgan.scraping.manifest import FIELDS, KEPT, make_record
from cgan.scraping.state import CrawlState

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from typing_extensions import Self

logger = logging.getLogger(__name__)


class ManifestPipeline:
    """Append one manifest line per image, then count it against the quota.

    The line is written before the slot is freed, so whatever state an
    interrupt leaves, the manifest never claims more than is on disk.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.state = CrawlState.for_crawler(crawler)
        self.progress_every = max(1, crawler.settings.getint("CGAN_LIMIT", 100) // 10)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def open_spider(self, spider: Spider | None = None) -> None:
        self.state.attach()

    def close_spider(self, spider: Spider | None = None) -> None:
        self.state.detach()

    def process_item(self, item: Any, spider: Spider | None = None) -> Any:
        adapter = ItemAdapter(item)
        urls = adapter.get("image_urls") or []
        values = {key: adapter.get(key) for key in FIELDS if key not in ("url", "time")}
        record = make_record(url=urls[0] if urls else "", **values)
        self.state.record(record)
        kept = record["status"] == KEPT
        self.state.quota.finish(id(item), kept=kept)
        stats = self.crawler.stats
        stats.inc_value(f"cgan/{record['status']}")
        if kept:
            label = record["label"]
            count = self.state.quota.kept[label]
            if count % self.progress_every == 0 or self.state.quota.is_full(label):
                logger.info("%s: %d/%d kept", label, count, self.state.quota.limits.get(label, 0))
        else:
            stats.inc_value(f"cgan/rejected/{record['reason']}")
        return item
