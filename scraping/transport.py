"""What the spiders, the middlewares and the token fetch share about a request: the meta
keys that mark it, and the failures that mean no server answered at all. Its own module so
that each of them imports it at module level (no import cycle between them)."""

from __future__ import annotations

from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadConnectionRefusedError,
    DownloadTimeoutError,
)
from twisted.internet import error as twisted_error

# Request.meta key marking a search API page (its URL comes from the settings).
API_PAGE = "cgan_api_page"
# Request.meta key marking a page that counts against its source's RequestBudget.
BUDGETED = "cgan_budgeted"

# Failures that mean nothing answered at all, as opposed to one bad answer (HTTP 500,
# robots.txt, malformed JSON): they make the whole source fail, not one label's search.
_UNREACHABLE: tuple[tuple[tuple[type[BaseException], ...], str], ...] = (
    ((DownloadConnectionRefusedError, twisted_error.ConnectionRefusedError), "connection refused"),
    ((CannotResolveHostError, twisted_error.DNSLookupError), "DNS lookup failed"),
    (
        (
            DownloadTimeoutError,
            twisted_error.TimeoutError,
            twisted_error.TCPTimedOutError,
            TimeoutError,
        ),
        "timed out",
    ),
    ((twisted_error.ConnectError,), "could not connect"),
)


def unreachable(exc: BaseException) -> str | None:
    """A short phrase when `exc` means nothing answered (refused, no DNS, timeout), else None."""
    for types, phrase in _UNREACHABLE:
        if isinstance(exc, types):
            return phrase
    return None
