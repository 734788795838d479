"""robots.txt checking that holds for concurrent first requests to a host.

Scrapy's RobotsTxtMiddleware (2.19) parks every request that arrives while a
host's robots.txt is still downloading on one shared Deferred. Awaiting that
Deferred from several coroutines hands the parser to the first waiter only;
the others receive None, which means "no robots.txt", and are let through.
Image downloads start in bursts, so without this fix the first batch sent to
every new host would ignore robots.txt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.robotstxt import RobotParser


class ConcurrentSafeRobotsTxtMiddleware(RobotsTxtMiddleware):
    """Give every waiting request its own Deferred, fired with the parsed robots.txt."""

    async def robot_parser(self, request: Request) -> RobotParser | None:
        parsers: dict[str, Any] = getattr(self, "_parsers", {})
        netloc = urlparse_cached(request).netloc
        pending = parsers.get(netloc)
        if not isinstance(pending, Deferred):
            return await super().robot_parser(request)
        waiter: Deferred[RobotParser | None] = Deferred()

        def relay(result: Any) -> Any:
            # Scrapy stores the parser (or None on error) before firing.
            waiter.callback(parsers.get(netloc))
            return result

        pending.addBoth(relay)
        return await maybe_deferred_to_future(waiter)
