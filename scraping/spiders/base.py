"""What every source spider shares: labels, paging, limits, resuming and failing alone.

A source spider only says how to build a search URL for a label and a cursor, and how to
read one page of the API's JSON into candidates and the next cursor (see `Page`). Paging
stops for a label as soon as the label is full, and the cursor of every label is kept in
`spider.state`, so a resumed crawl (Scrapy's JOBDIR) picks up at the page it had reached.

Where a resumed crawl starts: moving the cursor to the next page as soon as a page is
parsed would lose candidates when the crawl stops with that page's items still undecided
(waiting for a slot, dropped at Ctrl-C, or skipped because the label filled up before a
run with a higher `--limit`). So the resume point is the first page that still has
undecided items (`PageLedger`) and only when every page is settled the next unfetched
page. Fetching a page again is cheap: URLs already in the manifest are skipped without a
download.

Limits and keys: a source may have an OAuth client (`self.oauth`, its pages then carry
the token, see auth.py) or an API key (`self.api_key`, added to its page URLs in the
downloader: `search_url` never includes it), and a request budget (`self.budget`,
ratelimit.py), all set up by `configure` from the user's keys. When a limit is spent
for longer than RATELIMIT_MAX_WAIT, or the API answers 429 beyond what retries wait for, the source
*stops*: no more pages, the cursors stay where they are, and the report says when to
run again. When the token endpoint refuses the credentials the source *fails* with one
line; other sources go on either way.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import scrapy
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import (
    DontCloseSpider,
    IgnoreRequest,
)
from scrapy.http import Response
from scrapy.settings import BaseSettings
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils.httpobj import urlparse_cached
from scrapy.utils.log import SpiderLoggerAdapter
from twisted.python.failure import Failure

from cgan.scraping.addresses import scheme_refusal
from cgan.scraping.auth import AUTHORISED, KEYED, ApiKey, AuthError, OAuthClient
from cgan.scraping.items import LabelledImage, LabelSpec, parse_labels
from cgan.scraping.middlewares import UnsafeURL, parse_retry_after
from cgan.scraping.ratelimit import RateLimited, RequestBudget, Stopping, utc_text
from cgan.scraping.report import (
    PROJECT_LOGGER,
    log_file_only,
    mark_failed,
    mark_stopped,
    pages_key,
)
from cgan.scraping.state import CrawlState
from cgan.scraping.transport import API_PAGE, BUDGETED, unreachable

Cursor = dict[str, Any]


@dataclass
class Candidate:
    """One image URL a source returned, with the credits it gave."""

    url: str
    licence: str | None = None
    licence_url: str | None = None
    author: str | None = None
    source_page: str | None = None
    title: str | None = None


@dataclass
class Page:
    """One parsed API page: candidates and where the next page is (None: no more)."""

    candidates: list[Candidate] = field(default_factory=list)
    next_cursor: Cursor | None = None


# --- where to resume ------------------------------------------------------------------------


@dataclass(eq=False)
class PageTrack:
    """One fetched page and how many of its items are still undecided."""

    cursor: Cursor
    open_items: int = 0
    incomplete: bool = False

    @property
    def settled(self) -> bool:
        return self.open_items == 0 and not self.incomplete


class PageLedger:
    """Per-label page tracks plus the frontier (next unfetched page, None when done)."""

    def __init__(self) -> None:
        self._tracks: defaultdict[str, list[PageTrack]] = defaultdict(list)
        self._frontier: dict[str, Cursor | None] = {}
        self._items: dict[int, tuple[str, PageTrack]] = {}

    def open_page(self, label: str, cursor: Cursor) -> PageTrack:
        """Start tracking a page fetched with `cursor`."""
        track = PageTrack(dict(cursor))
        self._tracks[label].append(track)
        return track

    def add_item(self, label: str, track: PageTrack, token: int) -> None:
        """An item from `track` went into the pipelines."""
        track.open_items += 1
        self._items[token] = (label, track)

    def close_page(self, label: str, next_cursor: Cursor | None) -> None:
        """All of a page's items were handed out; remember where the next page is."""
        self._frontier[label] = None if next_cursor is None else dict(next_cursor)

    def settle(self, token: int, decided: bool) -> str | None:
        """An item left the pipelines, recorded (`decided`) or not; returns its label."""
        entry = self._items.pop(token, None)
        if entry is None:
            return None
        label, track = entry
        track.open_items -= 1
        if not decided:
            track.incomplete = True
        return label

    def resume_cursor(self, label: str) -> Cursor | None:
        """The cursor to restart `label` from; None means the source has no more."""
        tracks = self._tracks[label]
        while tracks and tracks[0].settled and len(tracks) > 1:
            tracks.pop(0)  # forget settled history, keep the latest for the frontier check
        for track in tracks:
            if not track.settled:
                return track.cursor
        return self._frontier.get(label)


# --- when a whole source is down ------------------------------------------------------------

# --- the spider -----------------------------------------------------------------------------

_ERROR_CODES = list(range(400, 600))  # redirects are still followed


class LabelSearchSpider(scrapy.Spider):
    """Base class: search every label on one source, page by page."""

    name: str = ""
    # The setting that holds the API base URL.
    url_setting: ClassVar[str] = ""
    # Official APIs are governed by their API terms, not robots.txt (Commons' robots.txt
    # disallows /w/, where its API lives); scraped listings are not.
    is_official_api: ClassVar[bool] = True

    def __init__(self, *args: Any, labels: str | list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._label_arg = labels
        self._parked: dict[str, scrapy.Request] = {}
        self._ledger = PageLedger()

    @property
    def logger(self) -> SpiderLoggerAdapter:
        """A logger under cgan.scraping, so that these lines reach the terminal."""
        logger = logging.getLogger(f"{PROJECT_LOGGER}.spiders.{self.name}")
        return SpiderLoggerAdapter(logger, {"spider": self})

    @classmethod
    def update_settings(cls, settings: BaseSettings) -> None:
        """Give each source its own JOBDIR under `OUT/.jobs` when resuming is on."""
        super().update_settings(settings)
        if settings.getbool("CGAN_RESUME", True) and not settings.get("JOBDIR"):
            out_dir = Path(settings.get("IMAGES_STORE") or "data/scraped")
            settings.set("JOBDIR", str(out_dir / ".jobs" / cls.name), priority="spider")

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> LabelSearchSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider._setup(crawler)
        return spider

    def _setup(self, crawler: Crawler) -> None:
        settings = crawler.settings
        raw = self._label_arg if self._label_arg is not None else settings.getlist("CGAN_LABELS")
        self.unavailable: str | None = None
        try:
            self.labels: list[LabelSpec] = parse_labels([raw] if isinstance(raw, str) else raw)
        except ValueError as exc:  # e.g. `scrapy crawl openverse` without labels
            self.labels = []
            self.unavailable = f"{exc}; pass -a labels=cat,dog or -s CGAN_LABELS=cat,dog"
        self.limit = settings.getint("CGAN_LIMIT", 100)
        self.max_pages = settings.getint("SOURCE_MAX_PAGES", 50)
        self.api_url = settings.get(self.url_setting)
        self.api_setting = self.url_setting
        self.official_api = self.is_official_api
        self.oauth: OAuthClient | None = None
        self.api_key: ApiKey | None = None
        self.budget: RequestBudget | None = None
        self.page_headers: dict[str, str] = {}
        self.max_wait = max(0.0, settings.getfloat("RATELIMIT_MAX_WAIT", 300.0))
        self.stopped: str | None = None
        self.shared = CrawlState.for_crawler(crawler)
        for spec in self.labels:
            self.shared.quota.set_limit(spec.name, self.limit)
        crawler.signals.connect(self._on_idle, signal=signals.spider_idle)
        crawler.signals.connect(self._item_recorded, signal=signals.item_scraped)
        crawler.signals.connect(self._item_lost, signal=signals.item_dropped)
        crawler.signals.connect(self._item_lost, signal=signals.item_error)
        self.unavailable = (
            self.unavailable
            or self.why_unavailable(settings)
            or self.configure(settings)
            or self._api_url_problem()
        )

    def _api_url_problem(self) -> str | None:
        why = scheme_refusal(self.api_url or "")
        return f"{self.api_setting}={self.api_url!r} is not usable: {why}" if why else None

    # --- what a source implements ---------------------------------------------------------

    @classmethod
    def why_unavailable(cls, settings: BaseSettings) -> str | None:
        """A reason the source can't run at all (e.g. a missing API key), or None."""
        return None

    def configure(self, settings: BaseSettings) -> str | None:
        """Set up what depends on the user's keys: API URL, `oauth` or `api_key`, `budget`,
        page headers.

        Returns a reason the source cannot run as configured, or None.
        """
        return None

    def first_cursor(self) -> Cursor:
        """The cursor of the first page."""
        return {"page": 1}

    def search_url(self, spec: LabelSpec, cursor: Cursor) -> str:
        """The URL of one results page."""
        raise NotImplementedError

    def parse_results(self, data: Any, cursor: Cursor) -> Page:
        """Candidates and the next cursor from one page of decoded JSON."""
        raise NotImplementedError

    # --- paging ---------------------------------------------------------------------------

    @property
    def cursors(self) -> dict[str, Cursor | None]:
        """Per-label resume point, in `self.state` so that JOBDIR keeps it."""
        if not hasattr(self, "state"):
            self.state: dict[str, Any] = {}
        return self.state.setdefault("cursors", {})

    async def start(self) -> AsyncIterator[Any]:
        if self.unavailable:
            mark_failed(self.crawler.stats, self.name, f"skipped: {self.unavailable}")
            self.logger.error("%s skipped: %s", self.name, self.unavailable, extra=log_file_only())
            return
        if self.budget is not None:
            refusal = self.budget.refusal(time.time(), self.max_wait)
            if refusal is not None:  # spent on an earlier run: not a single request today
                self._stop(refusal.detail, refusal.until)
                return
        for spec in self.labels:
            if self.shared.quota.is_full(spec.name):
                self.logger.info("%s: already has %d images, nothing to do", spec.name, self.limit)
                continue
            cursor = self.cursors.get(spec.name, self.first_cursor())
            if cursor is None:
                self.logger.info("%s: %s had no more results last time", spec.name, self.name)
                continue
            yield self._page_request(spec, cursor, pages_seen=cursor.get("_pages", 0))

    def _page_request(self, spec: LabelSpec, cursor: Cursor, pages_seen: int) -> scrapy.Request:
        public = {key: value for key, value in cursor.items() if not key.startswith("_")}
        meta: dict[str, Any] = {
            API_PAGE: True,  # the URL comes from the settings: scheme check only
            "handle_httpstatus_list": _ERROR_CODES,
            "give_up_log_level": "DEBUG",
            "dont_obey_robotstxt": self.official_api
            and self.settings.getbool("API_IGNORES_ROBOTSTXT", True),
        }
        if self.oauth is not None:
            meta[AUTHORISED] = True  # CredentialsMiddleware adds the token in the downloader
        if self.api_key is not None:
            meta[KEYED] = True  # CredentialsMiddleware adds the key in the downloader
        if self.budget is not None:
            meta[BUDGETED] = True  # RateLimitMiddleware counts it against the budget
        return scrapy.Request(
            self.search_url(spec, public),
            callback=self.parse_page,
            errback=self.page_failed,
            cb_kwargs={"label": spec.name, "cursor": public, "pages_seen": pages_seen},
            headers={"Accept": "application/json", **self.page_headers},
            # Every status reaches parse_page, which reports it without the URL.
            meta=meta,
            # Page URLs are fetched again on resume by design (cheap, and the items they
            # yield are skipped via the manifest).
            dont_filter=True,
        )

    def parse_page(
        self, response: Response, label: str, cursor: Cursor, pages_seen: int
    ) -> Iterator[Any]:
        spec = self._spec(label)
        if response.status == 429:  # still refused after the retries: stop asking
            self._throttled(response)
            return
        if response.status != 200:
            detail = response.text[:120].strip() if hasattr(response, "text") else ""
            self._give_up(label, f"HTTP {response.status}{': ' + detail if detail else ''}")
            return
        try:
            data = json.loads(response.text)
            page = self.parse_results(data, cursor)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            self._give_up(label, f"unexpected answer: {type(exc).__name__}: {exc}")
            return
        track = self._ledger.open_page(label, {**cursor, "_pages": pages_seen})
        pages_seen += 1
        self.crawler.stats.inc_value(pages_key(self.name))
        for candidate in page.candidates:
            if self.shared.quota.is_full(label):
                track.incomplete = True  # the rest may be wanted by a higher --limit
                break
            if not self.shared.claim_url(candidate.url):
                self.crawler.stats.inc_value(f"cgan/{self.name}/already_seen")
                continue
            item = self._item(spec, candidate)
            self._ledger.add_item(label, track, id(item))
            self.shared.pending[label] += 1
            yield item
        done = page.next_cursor is None or pages_seen >= self.max_pages
        if page.next_cursor is not None and done:
            self.logger.info("%s: stopping %s after %d pages", label, self.name, pages_seen)
        next_cursor = None if done else {**page.next_cursor, "_pages": pages_seen}
        self._ledger.close_page(label, next_cursor)
        self.cursors[label] = self._ledger.resume_cursor(label)
        if next_cursor is not None and not self.shared.quota.is_full(label) and not self.stopped:
            yield from self._next_page(spec, next_cursor)

    def _next_page(self, spec: LabelSpec, cursor: Cursor) -> Iterator[scrapy.Request]:
        label = spec.name
        request = self._page_request(spec, cursor, cursor["_pages"])
        quota = self.shared.quota
        if quota.kept[label] + self.shared.pending[label] < quota.limits[label]:
            yield request
        else:
            # Enough candidates are in the pipelines; fetch more only if they turn out
            # not to be enough (see _on_idle).
            self._parked[label] = request

    def _on_idle(self, spider: scrapy.Spider) -> None:
        if spider is not self or self.stopped:
            return
        revived = False
        for label, request in list(self._parked.items()):
            del self._parked[label]
            if not self.shared.quota.is_full(label):
                self.crawler.engine.crawl(request)
                revived = True
        if revived:
            raise DontCloseSpider

    def _item_recorded(self, item: Any, **_: Any) -> None:
        self._item_finished(item, decided=True)

    def _item_lost(self, item: Any, **_: Any) -> None:
        self._item_finished(item, decided=False)

    def _item_finished(self, item: Any, decided: bool) -> None:
        label = self._ledger.settle(id(item), decided)
        if label is None:
            return
        if self.shared.pending[label] > 0:
            self.shared.pending[label] -= 1
        self.cursors[label] = self._ledger.resume_cursor(label)

    def page_failed(self, failure: Failure) -> None:
        """Say clearly why a source stopped for a label; the crawl goes on.

        When the API could not be reached at all, the source is marked failed and the
        end-of-crawl report says so once, instead of a line per label.
        """
        request = failure.request  # type: ignore[attr-defined]
        exc = failure.value
        label = request.cb_kwargs.get("label", "?")
        if isinstance(exc, Stopping):  # Ctrl-C while it waited; the cursor stays
            return
        if isinstance(exc, RateLimited):
            self._stop(exc.detail, exc.until)
            return
        if isinstance(exc, AuthError):
            self._fail(str(exc))
            return
        down = unreachable(exc)
        if down is not None:
            where = urlparse_cached(request).netloc.rpartition("@")[2]  # no credentials
            mark_failed(self.crawler.stats, self.name, f"{down} ({where})")
            self._give_up(label, f"{down}: {type(exc).__name__}: {exc}", terminal=False)
            return
        if isinstance(exc, HttpError):
            why = f"HTTP {exc.response.status}"
        elif isinstance(exc, UnsafeURL):
            why = f"unsafe URL: {exc.detail}"
        elif isinstance(exc, IgnoreRequest) and "robots" in str(exc).lower():
            why = "robots.txt forbids it"
        else:
            why = f"{type(exc).__name__}: {exc}"
        self._give_up(label, why)

    def _throttled(self, response: Response) -> None:
        wait = parse_retry_after(response.headers.get("Retry-After"))
        until = time.time() + wait if wait is not None else None
        if until is not None and self.budget is not None:
            self.budget.block_until(until)
        asks = f" and asks to wait {wait:.0f}s" if wait is not None else ""
        self._stop(f"the API answered HTTP 429 (too many requests){asks}", until)

    def _stop(self, why: str, until: float | None) -> None:
        """A limit is spent: no more pages from this source; a later run carries on."""
        if self.stopped:
            return
        self.stopped = why
        self._parked.clear()
        after = utc_text(until) if until is not None else None
        mark_stopped(self.crawler.stats, self.name, why, after)
        self.logger.warning(
            "%s stopped: %s (until %s)", self.name, why, after or "unknown", extra=log_file_only()
        )

    def _fail(self, why: str) -> None:
        """The source cannot go on at all (its credentials were refused)."""
        if self.stopped:
            return
        self.stopped = why
        self._parked.clear()
        mark_failed(self.crawler.stats, self.name, why)
        self.logger.error("%s failed: %s", self.name, why, extra=log_file_only())

    def _give_up(self, label: str, why: str, terminal: bool = True) -> None:
        # The cursor still points at this page, so a later run tries it again.
        self.logger.error(
            "%s: search for %r failed (%s); skipping",
            self.name,
            label,
            why,
            extra=None if terminal else log_file_only(),
        )
        self.crawler.stats.inc_value(f"cgan/{self.name}/failed_page")

    # --- helpers --------------------------------------------------------------------------

    def _spec(self, label: str) -> LabelSpec:
        return next(spec for spec in self.labels if spec.name == label)

    def _item(self, spec: LabelSpec, candidate: Candidate) -> LabelledImage:
        return LabelledImage(
            label=spec.name,
            query=spec.query,
            source=self.name,
            image_urls=[candidate.url],
            licence=candidate.licence,
            licence_url=candidate.licence_url,
            author=candidate.author,
            source_page=candidate.source_page,
            title=candidate.title,
        )
