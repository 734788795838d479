"""Retries that back off exponentially and honour ``Retry-After``.

Scrapy's RetryMiddleware re-queues at once. APIs that answer 429 or 503 say
how long to wait in ``Retry-After``; retrying sooner is rude and usually
fails again. This subclass waits (without blocking the crawl) before handing
the retry back, and gives up when the server asks for an unreasonable wait.
"""

from __future__ import annotations

import logging
import random
import time
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.response import response_status_message

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.settings import BaseSettings
    from typing_extensions import Self

logger = logging.getLogger(__name__)


def parse_retry_after(value: bytes | str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date)."""
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if not text:
        return None
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter: half fixed, half random, capped."""
    ceiling = min(cap, base * (2 ** max(0, attempt)))
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


async def sleep(seconds: float) -> None:
    """Non-blocking sleep that works on any Twisted reactor, asyncio or not."""
    if seconds <= 0:
        return
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    await maybe_deferred_to_future(deferLater(reactor, seconds, lambda: None))


class BackoffRetryMiddleware(RetryMiddleware):
    """RetryMiddleware plus waiting: Retry-After when given, else 2^n backoff."""

    def __init__(self, settings: BaseSettings) -> None:
        super().__init__(settings)
        self.backoff_base = settings.getfloat("RETRY_BACKOFF_BASE", 1.0)
        self.backoff_max = settings.getfloat("RETRY_BACKOFF_MAX", 60.0)
        self.retry_after_max = settings.getfloat("RETRY_AFTER_MAX", 300.0)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        middleware = cls(crawler.settings)
        middleware.crawler = crawler
        return middleware

    async def process_response(
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Request | Response:
        if request.meta.get("dont_retry") or response.status not in self.retry_http_codes:
            return response
        wait = parse_retry_after(response.headers.get("Retry-After"))
        if wait is not None and wait > self.retry_after_max:
            logger.warning(
                "%s asks to wait %.0fs (more than RETRY_AFTER_MAX=%.0fs); giving up on %s",
                response.status,
                wait,
                self.retry_after_max,
                request.url,
            )
            return response
        retry = self._retry(request, response_status_message(response.status))
        if retry is None:
            return response
        if wait is None:
            wait = self._backoff(request)
        else:
            self.crawler.stats.inc_value("retry/retry_after_honoured")
        await sleep(wait)
        return retry

    async def process_exception(
        self, request: Request, exception: Exception, spider: Spider | None = None
    ) -> Request | Response | None:
        if request.meta.get("dont_retry") or not isinstance(exception, self.exceptions_to_retry):
            return None
        retry = self._retry(request, exception)
        if retry is not None:
            await sleep(self._backoff(request))
        return retry

    def _backoff(self, request: Request) -> float:
        return backoff_delay(
            request.meta.get("retry_times", 0), self.backoff_base, self.backoff_max
        )
