"""Map a failed download to the short reason code stored in the manifest."""

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

from scraping.imagecheck import ImageRejected

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


def reason_for(exc: BaseException) -> ImageRejected:
    """An :class:`ImageRejected` describing why a download produced no bytes."""
    if isinstance(exc, ImageRejected):
        return exc
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
