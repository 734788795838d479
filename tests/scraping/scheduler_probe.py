"""A Scrapy extension for the tests: every request the scheduler is given, written to disk.

Scrapy's JOBDIR queue holds a request only until it is sent, so a crawl that ends
normally leaves the queue empty, and a test that greps the job folder afterwards could
miss a token that did pass through it. With this extension (EXTENSIONS setting) every
request handed to the scheduler is also appended, serialised the way JOBDIR stores it,
to `OUT/.jobs/scheduled.pickles`: what the queue would hold if the crawl stopped at
that moment. The tests grep it like every other file.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from scrapy import signals
from scrapy.crawler import Crawler


class SchedulerProbe:
    """Append each scheduled request, as JOBDIR would pickle it, to one file."""

    def __init__(self, crawler: Crawler) -> None:
        self.path = Path(crawler.settings["IMAGES_STORE"]) / ".jobs" / "scheduled.pickles"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        crawler.signals.connect(self.scheduled, signal=signals.request_scheduled)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SchedulerProbe:
        return cls(crawler)

    def scheduled(self, request: Any, spider: Any) -> None:
        with self.path.open("ab") as handle:
            handle.write(pickle.dumps(request.to_dict(spider=spider), protocol=4))
