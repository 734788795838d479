"""The project's downloader middlewares, in the order a request meets them.

1. `UrlGuardMiddleware` refuses requests for non-http(s) URLs and for private network
   addresses, before any connection and before robots.txt is fetched.
2. `ConcurrentSafeRobotsTxtMiddleware` replaces Scrapy's robots.txt check, which lets
   through requests that wait together for a host's robots.txt.
3. `BackoffRetryMiddleware` replaces Scrapy's retries: it waits, honouring `Retry-After`.
4. `RateLimitMiddleware` paces every host by the rate-limit headers it sends and a source's
   API by the budget the source declares (ratelimit.py), so the crawl does not run into 429s.
5. `CredentialsMiddleware` puts a source's bearer token or API key on its API requests and
   takes it off again when the answer comes back (auth.py).

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

from scrapy import signals
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
from cgan.scraping.auth import (
    AUTH_GENERATION,
    AUTH_RETRIED,
    AUTHORISED,
    KEYED,
    REDACTOR,
    ApiKey,
    AuthError,
    TokenCache,
    install_redactor,
)
from cgan.scraping.ratelimit import HostPace, RateLimited, announced_limits, pause
from cgan.scraping.transport import API_PAGE, BUDGETED

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
    127.0.0.1. A redirect from an API page is checked like any other request: its target
    is the server's choice. ALLOW_PRIVATE_ADDRESSES = True turns the address check off for
    everything (a local mirror, the tests' fake APIs).

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
        # An API page's own URL is the operator's; where it redirects to is the server's say.
        operators = request.meta.get(API_PAGE) and not request.meta.get("redirect_urls")
        if why is not None or self.allow_private or operators:
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


# --- 4. rate limits -------------------------------------------------------------------------

_CLAIM = "cgan_ratelimit_host"  # Request.meta: the host whose HostPace counts it in flight


class RateLimitMiddleware:
    """Wait before a request rather than be refused with a 429 after it.

    Two kinds of limit (ratelimit.py). Every answer's rate-limit headers (Reddit's
    `X-Ratelimit-*`, the `X-RateLimit-*` and `RateLimit-*` forms, Openverse's per-scope
    ones) update a `HostPace` for its host, read from Scrapy's response_downloaded signal
    so that every raw answer counts, retried, redirected or not. The host's next request
    then waits its turn: the remaining requests are spread evenly over what is left of
    the window, and when none remain it waits for the reset. A page a source marks
    BUDGETED also waits for the source's `RequestBudget` (Openverse's documented 20 a
    minute and 200 a day for anonymous clients), which is counted across runs.

    A wait longer than RATELIMIT_MAX_WAIT is not waited: the request fails with
    RateLimited, which stops the source for now with the time it frees up (base.py), and
    makes an image `http_429` in the manifest (a transient reason, retried by
    --retry-failed). Waits end early when the crawl is stopped (Ctrl-C). `Retry-After`
    on a 429 or 503 stays with BackoffRetryMiddleware, per request: one throttled image
    must not stall a whole host. RATELIMIT_ENABLED = False turns the header pacing off;
    a source's budget always applies.
    """

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        self.crawler = crawler
        self.enabled = settings.getbool("RATELIMIT_ENABLED", True)
        self.max_wait = max(0.0, settings.getfloat("RATELIMIT_MAX_WAIT", 300.0))
        self.margin = max(0.0, settings.getfloat("RATELIMIT_MARGIN", 1.0))
        self.unknown_reset = max(0.0, settings.getfloat("RATELIMIT_UNKNOWN_RESET", 60.0))
        self.hosts: dict[str, HostPace] = {}
        crawler.signals.connect(self._downloaded, signal=signals.response_downloaded)
        crawler.signals.connect(self._left, signal=signals.request_left_downloader)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def _running(self) -> bool:
        engine = self.crawler.engine
        return engine is None or bool(getattr(engine, "running", True))

    async def process_request(self, request: Request, spider: Spider | None = None) -> None:
        key = urlparse_cached(request).netloc
        budget = getattr(self.crawler.spider, "budget", None)
        if not request.meta.get(BUDGETED):
            budget = None
        while True:
            now, wall = time.monotonic(), time.time()
            host = self.hosts.get(key) if self.enabled else None
            host_wait = host.wait(now) if host is not None else 0.0
            refusal = budget.refusal(wall, self.max_wait) if budget is not None else None
            if refusal is None and host_wait > self.max_wait:
                why = f"{key} announces that its rate limit is spent"
                refusal = RateLimited(why, wall + host_wait)
            if refusal is not None:
                self.crawler.stats.inc_value("cgan/ratelimit/refused")
                raise refusal
            wait = max(host_wait, budget.wait(wall) if budget is not None else 0.0)
            if wait <= 0:
                break
            self.crawler.stats.inc_value("cgan/ratelimit/waited")
            logger.debug("rate limit: %s waits %.2fs", request.url, wait)
            await pause(min(wait, 1.0), self._running)  # then look again: answers may tell more
        if budget is not None:
            budget.spend(wall)
        self.hosts.setdefault(key, self._new_pace()).claim(now)
        request.meta[_CLAIM] = key

    def process_exception(
        self, request: Request, exception: Exception, spider: Spider | None = None
    ) -> None:
        self._left(request)  # never reached the downloader (a later middleware refused it)

    def _new_pace(self) -> HostPace:
        return HostPace(margin=self.margin, unknown_reset=self.unknown_reset)

    def _downloaded(self, response: Response, request: Request, **_: Any) -> None:
        headers = {}
        for name, values in response.headers.items():
            text = name.decode("latin-1").lower()
            if "ratelimit" in text and values and len(headers) < 40:  # a hostile flood: cut
                headers[text] = values[-1].decode("latin-1")[:200]
        if not headers:
            return
        announced = announced_limits(headers)
        if announced:
            key = urlparse_cached(request).netloc
            self.hosts.setdefault(key, self._new_pace()).observe(announced, time.monotonic())
            self.crawler.stats.inc_value("cgan/ratelimit/announced")

    def _left(self, request: Request, **_: Any) -> None:
        key = request.meta.pop(_CLAIM, None)
        host = self.hosts.get(key) if key is not None else None
        if host is not None:
            host.release()
            if host.idle:
                del self.hosts[key]


# --- 5. credentials: OAuth tokens and API keys -----------------------------------------------


class CredentialsMiddleware:
    """Send a source's API requests with its token or key, and nothing else with them.

    Credentials are added here, after the scheduler and after the rate-limit wait, only to
    requests for the API's own host (so a redirect elsewhere never carries them), and taken
    off again as soon as the answer or an error comes back: before retries and redirects
    copy the request into new ones that the scheduler may write to disk (JOBDIR), and
    before the spider (and Scrapy's log) sees the answer. Two kinds (auth.py):

    - A spider with an `oauth` client (auth.OAuthClient: Reddit's Data API, Openverse with
      credentials) marks its API pages AUTHORISED; they get `Authorization: <scheme>
      <token>` from the source's TokenCache (one fetch, shared; renewed before it
      expires). A 401 drops the token and sends the request once more with a new one; a
      second 401 means the API refuses the application: AuthError, and the source fails.
    - A spider with an `api_key` (auth.ApiKey: Pixabay) marks its API pages KEYED; they
      get the key as a query parameter. The URL is changed on the request in place, since
      a new request would go back through the scheduler; the answer gets the URL without
      the key, and so does a redirect's `Location`.

    Every token and key is registered with REDACTOR, which blanks it in any log line that
    would still contain one, and it is blanked in the message of a download error.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.cache: TokenCache | None = None
        self._registered: ApiKey | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    # --- tokens ---------------------------------------------------------------------------

    def _tokens(self) -> TokenCache | None:
        client = getattr(self.crawler.spider, "oauth", None)
        if client is None:
            return None
        if self.cache is None or self.cache.client is not client:
            install_redactor()
            self.cache = TokenCache(client, self._fetch, on_secret=REDACTOR.add)
        return self.cache

    async def _fetch(self, request: Request) -> Response:
        assert self.crawler.engine is not None
        return await self.crawler.engine.download_async(request)

    # --- keys -----------------------------------------------------------------------------

    def _key(self) -> ApiKey | None:
        key = getattr(self.crawler.spider, "api_key", None)
        if key is not None and key is not self._registered:
            install_redactor()
            for secret in key.secrets():
                REDACTOR.add(secret)
            self._registered = key
        return key

    @staticmethod
    def _set_url(request: Request, url: str) -> None:
        # On this very request: one returned from here would go back through the scheduler.
        if url != request.url:
            request._set_url(url)

    # --- the downloader's calls -----------------------------------------------------------

    async def process_request(self, request: Request, spider: Spider | None = None) -> None:
        if request.meta.get(KEYED):
            key = self._key()
            if key is not None and urlparse_cached(request).netloc == key.api_host:
                self._set_url(request, key.add_to(request.url))
        if not request.meta.get(AUTHORISED):
            return
        tokens = self._tokens()
        if tokens is None or urlparse_cached(request).netloc != tokens.client.api_host:
            return
        token, generation = await tokens.get()
        request.headers[b"Authorization"] = f"{tokens.client.scheme} {token}"
        request.meta[AUTH_GENERATION] = generation

    def process_response(
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Request | Response:
        key = self._key() if request.meta.get(KEYED) else None
        if key is not None:
            self._set_url(request, key.remove_from(request.url))
            if key.remove_from(response.url) != response.url:
                response = response.replace(url=key.remove_from(response.url))
            location = response.headers.get(b"Location")
            if location is not None:
                text = location.decode("latin-1")
                if key.remove_from(text) != text:
                    response.headers[b"Location"] = key.remove_from(text)
        if not request.meta.get(AUTHORISED):
            return response
        sent_token = request.headers.pop(b"Authorization", None) is not None
        tokens = self._tokens()
        if response.status != 401 or not sent_token or tokens is None:
            return response
        source = tokens.client.source
        self.crawler.stats.inc_value(f"cgan/{source}/token_refused")
        if request.meta.get(AUTH_RETRIED):
            raise AuthError(
                "the API refuses a fresh access token (HTTP 401); check that the "
                f"application behind {tokens.client.names[0]} may use it"
            )
        tokens.invalidate(request.meta.get(AUTH_GENERATION))
        retry = request.replace(dont_filter=True)
        retry.meta[AUTH_RETRIED] = True
        return retry

    def process_exception(
        self, request: Request, exception: Exception, spider: Spider | None = None
    ) -> None:
        key = self._key() if request.meta.get(KEYED) else None
        if key is not None:
            self._set_url(request, key.remove_from(request.url))
            # "Getting <url> took longer than ...": the spider reports the message.
            exception.args = tuple(
                key.scrub(arg) if isinstance(arg, str) else arg for arg in exception.args
            )
        if request.meta.get(AUTHORISED):
            request.headers.pop(b"Authorization", None)
