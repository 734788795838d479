"""Unit tests for the crawl's safety and failure reporting: no network, no reactor.

Private addresses other than 127.0.0.1 are only ever handed to the decision
functions here; nothing is sent to them.
"""

from __future__ import annotations

import asyncio
import io
import logging
import sys
from types import SimpleNamespace
from typing import Any

import pytest
from scrapy import Request
from scrapy.downloadermiddlewares.redirect import RedirectMiddleware
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
)
from scrapy.http import Response
from scrapy.settings import Settings
from twisted.internet import error as twisted_error

from cgan.scraping.addresses import address_refusal, scheme_refusal
from cgan.scraping.middlewares import UnsafeURL, UrlGuardMiddleware
from cgan.scraping.pipelines import reason_for
from cgan.scraping.report import (
    FAILED,
    FINISHED,
    INTERRUPTED,
    SourceOutcome,
    log_file_only,
    mark_failed,
    nothing_gathered,
    source_outcome,
    terminal_lines,
)
from cgan.scraping.transport import API_PAGE, unreachable

# What the fake resolver answers; a name missing here fails the test if looked up.
DNS = {
    "cdn.example": ["93.184.216.34", "2606:4700:4700::1111"],
    "dual.example": ["93.184.216.34", "::1"],  # one bad address is enough to refuse
    "internal.example": ["10.0.0.7"],
    "mapped.example": ["::ffff:169.254.169.254"],
}


class Guard:
    """A UrlGuardMiddleware with a fake resolver that records its lookups."""

    def __init__(self, allow_private: bool = False) -> None:
        self.lookups: list[str] = []
        self.stats = FakeStats()
        self.middleware = UrlGuardMiddleware(allow_private, self._resolve, self.stats)

    async def _resolve(self, host: str) -> list[str]:
        self.lookups.append(host)
        return DNS[host]

    def refusal(self, request: Request) -> str | None:
        """The detail of the UnsafeURL raised for `request`, or None when let through."""
        try:
            asyncio.run(self.middleware.process_request(request))
        except UnsafeURL as exc:
            return exc.detail
        return None


class FakeStats:
    """The two calls the code under test makes on Scrapy's stats collector."""

    def __init__(self, values: dict[str, Any] | None = None) -> None:
        self.values = dict(values or {})

    def get_value(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set_value(self, key: str, value: Any) -> None:
        self.values[key] = value

    def inc_value(self, key: str, count: int = 1) -> None:
        self.values[key] = self.values.get(key, 0) + count


# --- which URLs are refused ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("file:///home/me/private.jpg", "scheme 'file' is not http or https"),
        ("data:image/jpeg;base64,/9j/4AAQ", "scheme 'data' is not http or https"),
        ("ftp://files.example/cat.jpg", "scheme 'ftp' is not http or https"),
        ("gopher://127.0.0.1:6379/_INFO", "scheme 'gopher' is not http or https"),
        ("http:///no-host.jpg", "no host"),
        ("http://127.0.0.1:8080/cat.jpg", "127.0.0.1 is a loopback address"),
        ("http://10.20.30.40/cat.jpg", "10.20.30.40 is a private address"),
        ("http://192.168.1.1/", "192.168.1.1 is a private address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("http://0.0.0.0:6379/", "0.0.0.0 is an unspecified address"),
        ("http://224.0.0.1/", "224.0.0.1 is a multicast address"),
        ("http://240.0.0.1/", "240.0.0.1 is a reserved address"),
        ("http://100.64.0.1/", "100.64.0.1 is a non-public address"),
        ("http://[::1]:8080/cat.jpg", "::1 is a loopback address"),
        ("http://[fe80::1]/", "fe80::1 is a link-local address"),
        ("http://[fd00::1]/", "fd00::1 is a private address"),
        ("http://[::ffff:127.0.0.1]/", "(IPv4 127.0.0.1) is a loopback address"),
        ("http://[::ffff:169.254.169.254]/", "(IPv4 169.254.169.254) is a link-local address"),
        ("http://[::ffff:10.0.0.1]/", "(IPv4 10.0.0.1) is a private address"),
        ("http://[2002:a9fe:a9fe::]/", "(IPv4 169.254.169.254) is a link-local address"),
        ("http://[64:ff9b::a9fe:a9fe]/", "(IPv4 169.254.169.254) is a link-local address"),
        ("http://dual.example/cat.jpg", "dual.example resolves to ::1, a loopback address"),
        ("http://internal.example/", "internal.example resolves to 10.0.0.7, a private address"),
        ("http://mapped.example/", "resolves to ::ffff:a9fe:a9fe (IPv4 169.254.169.254)"),
        ("http://93.184.216.34/cat.jpg", None),
        ("https://[2606:4700:4700::1111]/cat.jpg", None),
        ("https://cdn.example/cat.jpg", None),
    ],
)
def test_guard_refuses_unsafe_urls(url, expected):
    guard = Guard()
    why = guard.refusal(Request(url))
    if expected is None:
        assert why is None
    else:
        assert why is not None and expected in why
        assert guard.stats.values["cgan/unsafe_url"] == 1


def test_setting_allows_private_addresses_but_never_other_schemes():
    guard = Guard(allow_private=True)
    for url in ("http://127.0.0.1:8080/a.jpg", "http://[::1]/a.jpg", "http://internal.example/"):
        assert guard.refusal(Request(url)) is None, url
    assert guard.lookups == [], "nothing to resolve when any address is allowed"
    assert "scheme 'file'" in guard.refusal(Request("file:///etc/passwd"))


def test_ip_literals_are_not_resolved():
    guard = Guard()
    guard.refusal(Request("http://10.0.0.1/a.jpg"))
    guard.refusal(Request("http://[::1]/a.jpg"))
    assert guard.lookups == []
    guard.refusal(Request("http://cdn.example/a.jpg"))
    assert guard.lookups == ["cdn.example"]


def test_api_pages_get_only_the_scheme_check():
    guard = Guard()
    page = Request("http://127.0.0.1:8080/openverse/v1/images/?q=cat", meta={API_PAGE: True})
    assert guard.refusal(page) is None  # the operator's own setting, e.g. the test server
    bad = Request("file:///srv/answers.json", meta={API_PAGE: True})
    assert "scheme 'file'" in guard.refusal(bad)


def test_address_refusal_checks_every_address():
    assert address_refusal("cdn.example", ["93.184.216.34", "2606:4700::1"]) is None
    why = address_refusal("x.example", ["93.184.216.34", "2606:4700::1", "fe80::1%eth0"])
    assert why == "x.example resolves to fe80::1%eth0, a link-local address"
    assert "not an IP address" in address_refusal("x.example", ["nonsense"])
    assert scheme_refusal("HTTPS://Example.org/a.jpg") is None


# --- redirects go through the same check ---------------------------------------------------------


def _redirect(
    url: str, location: str, meta: dict | None = None
) -> tuple[Request, Request | Response]:
    """What Scrapy's RedirectMiddleware makes of a 302 from `url` to `location`."""
    middleware = RedirectMiddleware(Settings())
    middleware.crawler = SimpleNamespace(spider=None)  # only read for handle_httpstatus_list
    request = Request(url, meta=meta or {})
    response = Response(url, status=302, headers={"Location": location}, request=request)
    return request, middleware.process_response(request, response)


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("http://[::ffff:127.0.0.1]:6379/", "(IPv4 127.0.0.1) is a loopback address"),
        ("http://internal.example/admin", "internal.example resolves to 10.0.0.7"),
    ],
)
def test_redirect_to_a_private_address_is_refused(location, expected):
    request, redirected = _redirect("http://93.184.216.34/cat.jpg", location)
    assert isinstance(redirected, Request) and redirected.url == Request(location).url
    why = Guard().refusal(redirected)
    assert why is not None and why.startswith(f"redirect to {redirected.url}: ")
    assert expected in why


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("http://internal.example/admin", "internal.example resolves to 10.0.0.7"),
    ],
)
def test_a_redirect_from_an_api_page_gets_the_address_check(location, expected):
    """The API page's own URL is the operator's; the server chose where it redirects."""
    page = "http://127.0.0.1:8080/openverse/v1/images/?q=cat"
    _, redirected = _redirect(page, location, {API_PAGE: True})
    assert isinstance(redirected, Request) and redirected.meta.get(API_PAGE)
    why = Guard().refusal(redirected)
    assert why is not None and expected in why
    _, public = _redirect(page, "https://cdn.example/v1/images/?q=cat", {API_PAGE: True})
    assert Guard().refusal(public) is None


def test_redirect_to_a_public_address_is_followed():
    _, redirected = _redirect("http://93.184.216.34/cat.jpg", "https://cdn.example/cat.jpg")
    assert isinstance(redirected, Request) and Guard().refusal(redirected) is None


def test_redirect_to_file_is_an_unsafe_url_not_an_http_302():
    request, response = _redirect("http://93.184.216.34/cat.jpg", "file:///etc/passwd")
    assert isinstance(response, Response)  # Scrapy won't follow it, and says nothing
    with pytest.raises(UnsafeURL) as info:
        Guard().middleware.process_response(request, response)
    assert info.value.detail == "redirect to file:///etc/passwd: scheme 'file' is not http or https"
    assert isinstance(info.value, IgnoreRequest)  # so the request's errback gets it


# --- failure reasons ------------------------------------------------------------------------------


def test_unsafe_url_is_recorded_as_its_own_reason():
    rejection = reason_for(UnsafeURL("10.0.0.1 is a private address"))
    assert (rejection.reason, rejection.detail) == ("unsafe_url", "10.0.0.1 is a private address")
    assert reason_for(IgnoreRequest("Forbidden by robots.txt")).reason == "robots"


@pytest.mark.parametrize(
    ("exc", "phrase"),
    [
        (DownloadConnectionRefusedError("refused"), "connection refused"),
        (twisted_error.ConnectionRefusedError(), "connection refused"),
        (CannotResolveHostError("nowhere.invalid"), "DNS lookup failed"),
        (twisted_error.DNSLookupError("nowhere.invalid"), "DNS lookup failed"),
        (DownloadTimeoutError("took longer than 2 seconds"), "timed out"),
        (twisted_error.TCPTimedOutError(), "timed out"),
        (twisted_error.NoRouteError(), "could not connect"),
        (DownloadFailedError("bad answer"), None),  # it answered, badly
        (UnsafeURL("loopback"), None),
        (ValueError("JSON"), None),
    ],
)
def test_unreachable_phrases(exc, phrase):
    assert unreachable(exc) == phrase


# --- per-source outcomes and the exit decision ---------------------------------------------------


def test_source_outcomes_from_stats():
    stats = FakeStats({"finish_reason": "finished"})
    mark_failed(stats, "openverse", "connection refused (127.0.0.1:9)")
    mark_failed(stats, "openverse", "timed out (127.0.0.1:9)")  # the first cause is kept
    assert source_outcome("openverse", stats) == SourceOutcome(
        "openverse", FAILED, "connection refused (127.0.0.1:9)", 0
    )
    answered = FakeStats({"finish_reason": "finished", "cgan/wikimedia/pages": 2})
    assert source_outcome("wikimedia", answered) == SourceOutcome("wikimedia", FINISHED, None, 2)
    stopped = FakeStats({"finish_reason": "shutdown", "cgan/reddit/failed": "timed out"})
    assert source_outcome("reddit", stopped).status == INTERRUPTED
    assert source_outcome("pixabay", None).status == "not started"


def test_nothing_gathered_only_when_a_source_failed_and_none_answered():
    down = SourceOutcome("openverse", FAILED, "connection refused", 0)
    idle = SourceOutcome("wikimedia", FINISHED, None, 0)  # e.g. every label already full
    answered = SourceOutcome("reddit", FINISHED, None, 3)
    assert nothing_gathered([down]) and nothing_gathered([down, idle])
    assert not nothing_gathered([down, answered])
    assert not nothing_gathered([idle])
    assert SourceOutcome("x", FAILED, "why", 1).to_json() == {
        "status": FAILED,
        "reason": "why",
        "pages": 1,
    }


# --- terminal lines -------------------------------------------------------------------------------


def test_terminal_shows_project_lines_once_without_tracebacks():
    stream = io.StringIO()
    project = logging.getLogger("cgan.scraping.spiders.openverse")
    with terminal_lines("INFO", stream):
        project.info("cat: 5/50 kept")
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            project.error("search failed\nsecond line", exc_info=sys.exc_info())
        project.error("said again at the end", extra=log_file_only())
        project.debug("detail")
        logging.getLogger("scrapy.core.engine").error("Spider error processing")
        shutdown = logging.getLogger("scrapy.crawler")
        shutdown.info("Received %(signame)s, shutting down gracefully.", {"signame": "SIGINT"})
        shutdown.info("Overridden settings: %s", {"LOG_LEVEL": "INFO"})
    project.info("after the crawl")
    assert stream.getvalue().splitlines() == [
        "cgan-scrape: cat: 5/50 kept",
        "cgan-scrape: error: search failed second line",
        "cgan-scrape: Received SIGINT, shutting down gracefully.",
    ]
