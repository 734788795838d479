"""The project's downloader middlewares, in the order a request meets them.

1. `UrlGuardMiddleware` refuses requests for non-http(s) URLs and for private network
   addresses, before any connection and before robots.txt is fetched.
2. `ConcurrentSafeRobotsTxtMiddleware` replaces Scrapy's robots.txt check, which lets
   through requests that wait together for a host's robots.txt.
3. `BackoffRetryMiddleware` replaces Scrapy's retries: it waits, honouring `Retry-After`.

settings.py lists them in DOWNLOADER_MIDDLEWARES; docs/scraping.md says why each exists.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.exceptions import CannotResolveHostError, IgnoreRequest
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from scrapy.utils.response import response_status_message
from twisted.internet import defer
from twisted.internet.interfaces import IAddress, IHostResolution, IResolutionReceiver
from zope.interface import implementer

from cgan.scraping.addresses import address_refusal, ip_literal, scheme_refusal

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.robotstxt import RobotParser
    from scrapy.settings import BaseSettings
    from scrapy.statscollectors import StatsCollector
    from typing_extensions import Self

logger = logging.getLogger(__name__)

# --- 1. URL guard ---------------------------------------------------------------------------

# Request.meta key marking a search API page (its URL comes from the settings).
API_PAGE = "cgan_api_page"

_REDIRECTS = frozenset({301, 302, 303, 307, 308})

Resolver = Callable[[str], Awaitable[list[str]]]


class UnsafeURL(IgnoreRequest):
    """A request refused before any connection; `detail` says why."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class UrlGuardMiddleware:
    """Let through only http(s) requests to public addresses.

    Image URLs come from strangers, so a result such as `file:///home/me/photo.jpg` or
    `http://169.254.169.254/latest/meta-data/` must never be fetched (addresses.py says
    which addresses count as private). As a downloader middleware it sees every request
    Scrapy sends: image downloads, robots.txt fetches (it runs before the
    robots.txt middleware, so a refused host is not even asked for robots.txt) and every
    redirect, since RedirectMiddleware hands its new request back to the engine and it
    comes through here again. A redirect Scrapy will not follow (to `file:` or `data:`)
    is refused here too, so the manifest says `unsafe_url` rather than `http_302`.

    Search API pages (`meta[API_PAGE]`) only get the scheme check: their URLs come from
    the operator's settings, not from strangers, and the tests serve them from
    127.0.0.1. ALLOW_PRIVATE_ADDRESSES = True turns the address check off for everything
    (a local mirror, the tests' fake APIs).

    DNS: a host name is resolved through the reactor's own resolver, not a separate
    `socket.getaddrinfo`. It runs in the reactor's thread pool (no blocking), bounded by
    DNS_TIMEOUT, and, more importantly, Scrapy's resolver caches its answer
    (DNSCACHE_ENABLED), so the downloader then connects to exactly the addresses checked
    here. A separate lookup would leave a DNS rebinding gap: a hostile name server
    answers a public address to the check and 127.0.0.1 to the connection. Every address
    the resolver returns is checked: with Scrapy's default resolver that is the one IPv4
    address the downloader uses; with TWISTED_DNS_RESOLVER =
    "scrapy.resolver.CachingHostnameResolver" it is every IPv4 and IPv6 one. With
    DNSCACHE_ENABLED = False the downloader looks the name up again and the gap reopens.
    Behind an HTTP proxy the names are still resolved here, and a name that cannot be
    resolved is not fetched (fail closed), even if the proxy could.
    """

    def __init__(
        self, allow_private: bool, resolve: Resolver, stats: StatsCollector | None = None
    ) -> None:
        self.allow_private = allow_private
        self.resolve = resolve
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        settings = crawler.settings
        timeout = settings.getfloat("DNS_TIMEOUT", 60.0)

        async def resolve(host: str) -> list[str]:
            return await resolve_with_reactor(host, timeout)

        return cls(settings.getbool("ALLOW_PRIVATE_ADDRESSES"), resolve, crawler.stats)

    async def process_request(self, request: Request, spider: Spider | None = None) -> None:
        why = await self.refusal(request)
        if why is not None:
            self._refuse(request, why)

    def process_response(
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Response:
        location = response.headers.get("Location")
        if response.status in _REDIRECTS and location and not request.meta.get("dont_redirect"):
            target = urljoin(request.url, location.decode("latin-1"))
            why = scheme_refusal(target)
            if why is not None:
                self._refuse(request, f"redirect to {target}: {why}")
        return response

    async def refusal(self, request: Request) -> str | None:
        """Why `request` must not be sent, or None."""
        why = scheme_refusal(request.url)
        if why is not None or self.allow_private or request.meta.get(API_PAGE):
            return why
        host = urlparse_cached(request).hostname or ""
        if ip_literal(host) is not None:
            return address_refusal(host, [host])
        return address_refusal(host, await self.resolve(host))

    def _refuse(self, request: Request, why: str) -> None:
        if self.stats is not None:
            self.stats.inc_value("cgan/unsafe_url")
        if request.meta.get("redirect_urls") and not why.startswith("redirect"):
            why = f"redirect to {request.url}: {why}"
        raise UnsafeURL(why)


async def resolve_with_reactor(host: str, timeout: float) -> list[str]:
    """Every address the reactor's resolver gives for `host` (the downloader's view)."""
    from twisted.internet import reactor

    found: list[str] = []
    done: defer.Deferred[list[str]] = defer.Deferred()

    @implementer(IResolutionReceiver)
    class Receiver:
        def resolutionBegan(self, resolution: IHostResolution) -> None:
            pass

        def addressResolved(self, address: IAddress) -> None:
            found.append(address.host)

        def resolutionComplete(self) -> None:
            if not done.called:
                done.callback(found)

    reactor.nameResolver.resolveHostName(Receiver(), host)
    done.addTimeout(timeout, reactor)
    try:
        addresses = await maybe_deferred_to_future(done)
    except defer.TimeoutError:
        raise CannotResolveHostError(f"DNS lookup for {host} took over {timeout:g}s") from None
    if not addresses:
        raise CannotResolveHostError(f"DNS lookup for {host} failed")
    return addresses


# --- 2. robots.txt --------------------------------------------------------------------------


class ConcurrentSafeRobotsTxtMiddleware(RobotsTxtMiddleware):
    """Give every request waiting for a host's robots.txt its own answer.

    Scrapy's RobotsTxtMiddleware (2.19) parks every request that arrives while a host's
    robots.txt is still downloading on one shared Deferred. Awaiting that Deferred from
    several coroutines hands the parser to the first waiter only; the others receive None,
    which means "no robots.txt", and are let through. Image downloads start in bursts, so
    without this the first batch sent to every new host would ignore robots.txt.
    """

    async def robot_parser(self, request: Request) -> RobotParser | None:
        parsers: dict[str, Any] = getattr(self, "_parsers", {})
        netloc = urlparse_cached(request).netloc
        pending = parsers.get(netloc)
        if not isinstance(pending, defer.Deferred):
            return await super().robot_parser(request)
        waiter: defer.Deferred[RobotParser | None] = defer.Deferred()

        def relay(result: Any) -> Any:
            # Scrapy stores the parser (or None on error) before firing.
            waiter.callback(parsers.get(netloc))
            return result

        pending.addBoth(relay)
        return await maybe_deferred_to_future(waiter)


# --- 3. retries -----------------------------------------------------------------------------


def parse_retry_after(value: bytes | str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP-date)."""
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
    """A non-blocking sleep that works on any Twisted reactor, asyncio or not."""
    if seconds <= 0:
        return
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    await maybe_deferred_to_future(deferLater(reactor, seconds, lambda: None))


class BackoffRetryMiddleware(RetryMiddleware):
    """RetryMiddleware plus waiting: Retry-After when given, else 2^n backoff.

    Scrapy's RetryMiddleware re-queues at once. APIs that answer 429 or 503 say how long
    to wait in `Retry-After`; retrying sooner is rude and usually fails again. This
    subclass waits (without blocking the crawl) before handing the retry back, and gives
    up when the server asks for an unreasonable wait (RETRY_AFTER_MAX).
    """

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
