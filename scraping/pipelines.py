"""The item pipelines, in the order they run (ITEM_PIPELINES in settings.py).

1. `QuotaGatePipeline` holds an item until its label has a free download slot, or drops
   it once the label is full.
2. `LabelledImagesPipeline` (Scrapy's ImagesPipeline) downloads, checks, dedupes and
   stores the image, and writes every outcome onto the item.
3. `ManifestPipeline` writes the decision to the manifest and frees the slot.

All three share the output folder's CrawlState (state.py) with the spiders.
"""

from __future__ import annotations

import io
import logging
from typing import TYPE_CHECKING, Any

from itemadapter import ItemAdapter
from PIL import Image
from scrapy import Request, signals
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    DropItem,
    IgnoreRequest,
    ResponseDataLossError,
)
from scrapy.http.request import NO_CALLBACK
from scrapy.pipelines.images import ImagesPipeline
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet import error as twisted_error
from twisted.internet.defer import Deferred, DeferredSemaphore
from twisted.internet.threads import deferToThread

from cgan.scraping.contentcheck import OFF_TOPIC, check_from_settings
from cgan.scraping.imagecheck import ImageLimits, ImageRejected, analyse, sha1_of
from cgan.scraping.manifest import FIELDS, KEPT, REJECTED, make_record
from cgan.scraping.middlewares import UnsafeURL
from cgan.scraping.ratelimit import RateLimited, Stopping
from cgan.scraping.report import log_file_only
from cgan.scraping.state import CrawlState

if TYPE_CHECKING:
    from os import PathLike

    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.pipelines.media import FileInfoOrError, MediaPipeline
    from twisted.python.failure import Failure
    from typing_extensions import Self

logger = logging.getLogger(__name__)


# --- 1. the gate ----------------------------------------------------------------------------


class QuotaGatePipeline:
    """Admit an item only while its label can still keep another image.

    Two gates: the per-label quota (what makes `--limit` exact under concurrency, see
    LabelQuota) and a cap on images being downloaded at once (CGAN_MAX_IN_FLIGHT, default
    CONCURRENT_REQUESTS). The cap keeps the rest waiting here rather than queued inside
    Scrapy's downloader, so Ctrl-C stops after the few downloads in progress. Items that
    don't get through are dropped quietly and not written to the manifest, so a later
    run can still try them.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.state = CrawlState.for_crawler(crawler)
        settings = crawler.settings
        size = settings.getint("CGAN_MAX_IN_FLIGHT") or settings.getint("CONCURRENT_REQUESTS", 16)
        self.downloads = DeferredSemaphore(max(1, size))
        self._holding: set[int] = set()
        # Whatever happens to an item after the gate, its slots come back.
        for signal in (signals.item_scraped, signals.item_dropped, signals.item_error):
            crawler.signals.connect(self._item_done, signal=signal)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    async def process_item(self, item: Any, spider: Spider | None = None) -> Any:
        label = ItemAdapter(item).get("label")
        token = id(item)
        if label not in self.state.quota.limits:
            raise DropItem(f"unknown label {label!r}", log_level="DEBUG")
        if not await maybe_deferred_to_future(self.state.quota.acquire(label, token)):
            raise DropItem(f"label {label!r} is full", log_level="DEBUG")
        await maybe_deferred_to_future(self.downloads.acquire())
        self._holding.add(token)
        if not self.crawler.crawling:
            raise DropItem("crawl is shutting down", log_level="DEBUG")
        if self.state.quota.is_full(label):
            raise DropItem(f"label {label!r} is full", log_level="DEBUG")
        return item

    def _item_done(self, item: Any, **_: Any) -> None:
        token = id(item)
        self.state.quota.abandon(token)  # a no-op when the manifest pipeline decided it
        if token in self._holding:
            self._holding.discard(token)
            self.downloads.release()


# --- 2. download, check, store --------------------------------------------------------------

# Download failures by exception type, as the manifest's reasons.
_REASONS: tuple[tuple[tuple[type[BaseException], ...], str], ...] = (
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
    """Why a download produced no usable bytes, as an ImageRejected with the manifest code."""
    if isinstance(exc, ImageRejected):
        return exc
    if isinstance(exc, UnsafeURL):
        return ImageRejected("unsafe_url", exc.detail)
    if isinstance(exc, RateLimited):  # the host's limit is spent: transient, retried later
        return ImageRejected("http_429", exc.detail)
    detail = f"{type(exc).__name__}: {exc}".rstrip(": ")
    if isinstance(exc, IgnoreRequest):
        reason = "robots" if "robots" in str(exc).lower() else "ignored"
        return ImageRejected(reason, str(exc))
    if isinstance(exc, DownloadCancelledError):
        # Scrapy cancels a download that exceeds download_maxsize.
        reason = "too_large" if "size" in str(exc).lower() else "cancelled"
        return ImageRejected(reason, detail)
    for types, reason in _REASONS:
        if isinstance(exc, types):
            return ImageRejected(reason, detail)
    return ImageRejected("download_error", detail)


class _QuietRejections(logging.Filter):
    """Drop MediaPipeline's traceback for rejections the manifest records anyway."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, ImageRejected)


logging.getLogger("scrapy.pipelines.media").addFilter(_QuietRejections())


class LabelledImagesPipeline(ImagesPipeline):
    """Download one image per item, check it, and store it as `<label>/<sha1>.jpg`.

    Scrapy does the downloading (with robots.txt, retries, throttling and per-domain
    limits); this subclass decides what to keep and names the files so that the output
    folder is the class-folder layout the trainer reads. Every outcome, good or bad, is
    written onto the item for the manifest instead of being logged and lost.
    """

    def __init__(
        self, store_uri: str | PathLike[str], download_func: None = None, *, crawler: Crawler
    ) -> None:
        super().__init__(store_uri, crawler=crawler)
        settings = crawler.settings
        self.limits = ImageLimits(
            min_width=self.min_width,
            min_height=self.min_height,
            max_bytes=settings.getint("IMAGE_MAX_BYTES", ImageLimits.max_bytes),
            max_pixels=settings.getint("IMAGE_MAX_PIXELS", ImageLimits.max_pixels),
            max_aspect=settings.getfloat("IMAGE_MAX_ASPECT", ImageLimits.max_aspect),
        )
        self.state = CrawlState.for_crawler(crawler)
        # --verify: the ImageNet network's content check (the CLI built it already).
        self.content_check = check_from_settings(settings)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        cls._update_stores(crawler.settings)
        return cls(crawler.settings["IMAGES_STORE"], crawler=crawler)

    def get_media_requests(self, item: Any, info: MediaPipeline.SpiderInfo) -> list[Request]:
        urls = ItemAdapter(item).get(self.images_urls_field) or []
        # Scrapy aborts bodies over download_maxsize before they fill memory.
        meta = {"download_maxsize": self.limits.max_bytes}
        return [Request(url, callback=NO_CALLBACK, meta=meta) for url in urls[:1]]

    def media_to_download(
        self, request: Request, info: MediaPipeline.SpiderInfo, *, item: Any = None
    ) -> None:
        # Never trust a file already on disk: URLs seen before are skipped earlier (from
        # the manifest) and file names depend on the content.
        return None

    def file_path(
        self,
        request: Request,
        response: Response | None = None,
        info: MediaPipeline.SpiderInfo | None = None,
        *,
        item: Any = None,
    ) -> str:
        if response is None:
            raise ValueError("file names come from the content; a response is required")
        label = ItemAdapter(item).get("label") if item is not None else None
        return f"{label or 'unlabelled'}/{sha1_of(response.body)}.jpg"

    async def media_downloaded(
        self,
        response: Response,
        request: Request,
        info: MediaPipeline.SpiderInfo,
        *,
        item: Any = None,
    ) -> dict[str, Any]:
        if response.status != 200:
            raise ImageRejected(f"http_{response.status}")
        label = ItemAdapter(item)["label"]
        exact = self.state.dedupe.find_exact(sha1_of(response.body))
        if exact is not None:
            raise ImageRejected("duplicate", f"same bytes as {exact.label}/{exact.sha1}")
        content_type = response.headers.get("Content-Type", b"").decode("latin-1")
        facts = await maybe_deferred_to_future(
            deferToThread(analyse, response.body, content_type, self.limits, self._storable)
        )
        if self.content_check is not None:
            verdict = await maybe_deferred_to_future(
                deferToThread(self.content_check.check_bytes, label, facts.store_bytes)
            )
            if verdict.on_topic is False:
                raise ImageRejected(OFF_TOPIC, verdict.detail())
        # Back on the reactor thread: check and claim in one step, so two copies
        # finishing at the same time can't both be kept.
        exact = self.state.dedupe.find_exact(facts.sha1)
        if exact is not None:
            raise ImageRejected("duplicate", f"same bytes as {exact.label}/{exact.sha1}")
        near = self.state.dedupe.find_near(facts.phash)
        if near is not None:
            raise ImageRejected(
                "near_duplicate", f"{near.distance} bits from {near.label}/{near.sha1}"
            )
        self.state.dedupe.add(facts.sha1, facts.phash, label)
        path = self.file_path(request, response=response, info=info, item=item)
        try:
            stored = self.store.persist_file(
                path,
                io.BytesIO(facts.store_bytes),
                info,
                meta={"width": facts.width, "height": facts.height},
                headers={"Content-Type": "image/jpeg"},
            )
            if isinstance(stored, Deferred):  # S3/GCS/FTP stores answer later
                await maybe_deferred_to_future(stored)
        except Exception as exc:  # any store failure: forget the claim, record why
            self.state.dedupe.remove(facts.sha1)
            raise ImageRejected("store_error", str(exc)) from None
        self.inc_stats("downloaded")
        return {
            "url": request.url,
            "path": path,
            "checksum": facts.sha1,
            "status": "downloaded",
            "phash": facts.phash,
            "width": facts.width,
            "height": facts.height,
            "bytes": len(response.body),
        }

    def media_failed(
        self, failure: Failure, request: Request, info: MediaPipeline.SpiderInfo
    ) -> Any:
        if isinstance(failure.value, Stopping):  # Ctrl-C during a rate-limit wait
            raise DropItem("crawl is shutting down", log_level="DEBUG")
        raise reason_for(failure.value)

    def item_completed(
        self, results: list[FileInfoOrError], item: Any, info: MediaPipeline.SpiderInfo
    ) -> Any:
        adapter = ItemAdapter(item)
        if not results:
            adapter.update({"status": REJECTED, "reason": "no_url", "images": []})
            return item
        ok, value = results[0]
        if not ok and isinstance(value.value, DropItem):
            raise value.value  # undecided: no manifest line, a later run tries it again
        if ok:
            adapter.update(
                {
                    "status": KEPT,
                    "images": [value],
                    "path": value["path"],
                    "sha1": value["checksum"],
                    **{key: value.get(key) for key in ("phash", "width", "height", "bytes")},
                }
            )
        else:
            rejection = reason_for(value.value)
            adapter.update(
                {
                    "status": REJECTED,
                    "images": [],
                    "reason": rejection.reason,
                    "detail": rejection.detail or None,
                }
            )
        return item

    def _storable(self, image: Image.Image, body: bytes) -> bytes:
        # ImagesPipeline's own conversion: RGB JPEG, the original bytes kept when they
        # already are an upright JPEG.
        _, buf = self.convert_image(image, response_body=io.BytesIO(body))
        return buf.getvalue()


# --- 3. the manifest ------------------------------------------------------------------------


class ManifestPipeline:
    """Append one manifest line per image, then count it against the quota.

    The line is written before the slot is freed, so whatever state an interrupt leaves,
    the manifest never claims more than is on disk. A line per tenth of a label's limit
    goes to the log file; the terminal has the progress display (runner.py).
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.state = CrawlState.for_crawler(crawler)
        self.log_every = max(1, crawler.settings.getint("CGAN_LIMIT", 100) // 10)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def open_spider(self, spider: Spider | None = None) -> None:
        self.state.attach()

    def close_spider(self, spider: Spider | None = None) -> None:
        self.state.detach()

    def process_item(self, item: Any, spider: Spider | None = None) -> Any:
        adapter = ItemAdapter(item)
        urls = adapter.get("image_urls") or []
        values = {key: adapter.get(key) for key in FIELDS if key not in ("url", "time")}
        record = make_record(url=urls[0] if urls else "", **values)
        self.state.record(record)
        kept = record["status"] == KEPT
        self.state.quota.finish(id(item), kept=kept)
        stats = self.crawler.stats
        stats.inc_value(f"cgan/{record['status']}")
        if kept:
            label = record["label"]
            count = self.state.quota.kept[label]
            if count % self.log_every == 0 or self.state.quota.is_full(label):
                limit = self.state.quota.limits.get(label, 0)
                logger.info("%s: %d/%d kept", label, count, limit, extra=log_file_only())
        else:
            stats.inc_value(f"cgan/rejected/{record['reason']}")
        return item
