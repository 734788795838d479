"""Map a failed download to the short reason stored in the manifest or the report."""

from __future__ import annotations

from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
)
from twisted.internet import error as twisted_error

from cgan.scraping.imagecheck import ImageRejected
from cgan.scraping.urlguard import UnsafeURL

_BY_TYPE: tuple[tuple[tuple[type[BaseException], ...], str], ...] = (
    ((DownloadTimeoutError, twisted_error.TimeoutError, TimeoutError), "timeout"),
    (
        (
            CannotResolveHostError,
            DownloadConnectionRefusedError,
            twisted_error.DNSLookupError,
            twisted_error.ConnectError,
            twisted_error.ConnectionLost,
            twisted_error.ConnectionDone,
        ),
        "connection_error",
    ),
    ((ResponseDataLossError,), "data_loss"),
    ((DownloadFailedError,), "download_error"),
)

#: Failures that mean the host could not be reached at all (nothing answered).
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


def reason_for(exc: BaseException) -> ImageRejected:
    """An :class:`ImageRejected` describing why a download produced no bytes."""
    if isinstance(exc, ImageRejected):
        return exc
    if isinstance(exc, UnsafeURL):
        return ImageRejected("unsafe_url", exc.detail)
    detail = f"{type(exc).__name__}: {exc}".rstrip(": ")
    if isinstance(exc, IgnoreRequest):
        reason = "robots" if "robots" in str(exc).lower() else "ignored"
        return ImageRejected(reason, str(exc))
    if isinstance(exc, DownloadCancelledError):
        # Scrapy cancels a download that exceeds download_maxsize.
        reason = "too_large" if "size" in str(exc).lower() else "cancelled"
        return ImageRejected(reason, detail)
    for types, reason in _BY_TYPE:
        if isinstance(exc, types):
            return ImageRejected(reason, detail)
    return ImageRejected("download_error", detail)


def unreachable(exc: BaseException) -> str | None:
    """A short phrase when ``exc`` means nothing answered (refused, no DNS, timeout), else None.

    These are the failures that make a whole source unusable, as opposed to
    one bad answer (HTTP 500, robots.txt, malformed JSON).
    """
    for types, phrase in _UNREACHABLE:
        if isinstance(exc, types):
            return phrase
    return None
