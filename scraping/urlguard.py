"""Refuse requests for non-http(s) URLs and for private network addresses.

A downloader middleware, so every request Scrapy sends goes through it: image
downloads from the images pipeline, robots.txt fetches (it runs before the
robots.txt middleware, so a refused host is not even asked for robots.txt)
and every redirect, since RedirectMiddleware hands its new request back to
the engine and it comes through here again. A redirect Scrapy will not
follow (to ``file:`` or ``data:``) is refused here too, so the manifest says
``unsafe_url`` rather than ``http_302``.

Search API pages (``meta[API_PAGE]``) only get the scheme check: their URLs
come from the operator's settings, not from strangers, and the tests serve
them from 127.0.0.1. ``ALLOW_PRIVATE_ADDRESSES = True`` turns the address
check off for everything (a local mirror, the tests' fake APIs).

DNS: a host name is resolved through the reactor's own resolver, not a
separate ``socket.getaddrinfo``. It runs in the reactor's thread pool (no
blocking), bounded by ``DNS_TIMEOUT``, and, more importantly, Scrapy's resolver
caches its answer (``DNSCACHE_ENABLED``), so the downloader then connects to
exactly the addresses checked here. A separate lookup would leave a DNS
rebinding gap: a hostile name server answers a public address to the check
and 127.0.0.1 to the connection. Every address the resolver returns is
checked: with Scrapy's default resolver that is the one IPv4 address the
downloader uses; with ``TWISTED_DNS_RESOLVER =
"scrapy.resolver.CachingHostnameResolver"`` it is every IPv4 and IPv6 one.
With ``DNSCACHE_ENABLED = False`` the downloader looks the name up again and
the gap reopens. Behind an HTTP proxy the names are still resolved here, and a
name that cannot be resolved is not fetched (fail closed), even if the proxy could.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from urllib.parse import urljoin

from scrapy.exceptions import CannotResolveHostError, IgnoreRequest
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet import defer
from twisted.internet.interfaces import IAddress, IHostResolution, IResolutionReceiver
from zope.interface import implementer

from cgan.scraping.addresses import address_refusal, ip_literal, scheme_refusal

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.statscollectors import StatsCollector
    from typing_extensions import Self

#: ``Request.meta`` key marking a search API page (URL from the settings).
API_PAGE = "cgan_api_page"

_REDIRECTS = frozenset({301, 302, 303, 307, 308})

Resolver = Callable[[str], Awaitable[list[str]]]


class UnsafeURL(IgnoreRequest):
    """A request refused before any connection; ``detail`` says why."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class UrlGuardMiddleware:
    """Let through only http(s) requests to public addresses (see the module docstring)."""

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
        """Why ``request`` must not be sent, or None."""
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
    """Every address the reactor's resolver gives for ``host`` (the downloader's view)."""
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
