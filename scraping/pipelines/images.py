"""Second pipeline: Scrapy's ImagesPipeline, taught to filter and dedupe.

Scrapy does the downloading (with robots.txt, retries, throttling and
per-domain limits); this subclass decides what to keep and names files
``<label>/<sha1>.jpg`` so the output folder is the class-folder layout the
trainer reads. Every outcome, good or bad, is written onto the item for the
manifest pipeline instead of being logged and lost.
"""

from __future__ import annotations

import io
import logging
from typing import TYPE_CHECKING, Any

from itemadapter import ItemAdapter
from PIL import Image
from scrapy import Request
from scrapy.http.request import NO_CALLBACK
from scrapy.pipelines.images import ImagesPipeline
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread

from cgan.scraping.contentcheck import OFF_TOPIC, check_from_settings
from cgan.scraping.failures import reason_for
from cgan.scraping.imagecheck import ImageLimits, ImageRejected, analyse, sha1_of
from cgan.scraping.manifest import KEPT, REJECTED
from cgan.scraping.state import CrawlState

if TYPE_CHECKING:
    from os import PathLike

    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.pipelines.media import FileInfoOrError, MediaPipeline
    from twisted.python.failure import Failure
    from typing_extensions import Self


class _QuietRejections(logging.Filter):
    """Drop MediaPipeline's traceback for rejections we record ourselves."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, ImageRejected)


logging.getLogger("scrapy.pipelines.media").addFilter(_QuietRejections())


class LabelledImagesPipeline(ImagesPipeline):
    """Download one image per item, check it, and store it under its label."""

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
        # Never trust a file already on disk: URLs seen before are skipped
        # earlier (from the manifest) and file names depend on the content.
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
        # Back on the reactor thread: check and claim in one step, so two
        # copies finishing at the same time can't both be kept.
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
        raise reason_for(failure.value)

    def item_completed(
        self, results: list[FileInfoOrError], item: Any, info: MediaPipeline.SpiderInfo
    ) -> Any:
        adapter = ItemAdapter(item)
        if not results:
            adapter.update({"status": REJECTED, "reason": "no_url", "images": []})
            return item
        ok, value = results[0]
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
        # ImagesPipeline's own conversion: RGB JPEG, original bytes kept when
        # they already are an upright JPEG.
        _, buf = self.convert_image(image, response_body=io.BytesIO(body))
        return buf.getvalue()
