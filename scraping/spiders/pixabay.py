"""Pixabay: free stock photos; needs a (free) key in `PIXABAY_API_KEY`.

`GET /api/?q=...&image_type=photo&page=N&per_page=M&key=...` answers
`{"totalHits": n, "hits": [...]}` with `webformatURL` (640 px),
`largeImageURL` (1280 px), `user` and `pageURL` per hit. Only
`totalHits` results are reachable through paging.

The key is not part of `search_url`: the spider's `api_key` has CredentialsMiddleware add
it in the downloader and take it off again (auth.py), so no request the scheduler keeps on
disk, no log line and no answer's URL carries it.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlencode, urlsplit

from scrapy.settings import BaseSettings

from cgan.scraping.auth import ApiKey
from cgan.scraping.items import LabelSpec
from cgan.scraping.spiders.base import Candidate, Cursor, LabelSearchSpider, Page

LICENCE = "Pixabay Content License"
LICENCE_URL = "https://pixabay.com/service/license-summary/"


def pixabay_key(settings: BaseSettings) -> str:
    """The API key, from the setting or the environment."""
    return (settings.get("PIXABAY_API_KEY") or os.environ.get("PIXABAY_API_KEY") or "").strip()


def parse_hits(data: dict[str, Any], page: int, per_page: int, field: str) -> Page:
    """Read one Pixabay results page."""
    candidates = []
    for hit in data["hits"]:
        url = hit.get(field) or hit.get("webformatURL")
        if url:
            candidates.append(
                Candidate(
                    url=url,
                    licence=LICENCE,
                    licence_url=LICENCE_URL,
                    author=hit.get("user"),
                    source_page=hit.get("pageURL"),
                    title=hit.get("tags"),
                )
            )
    more = bool(data["hits"]) and page * per_page < int(data.get("totalHits") or 0)
    return Page(candidates, {"page": page + 1} if more else None)


class PixabaySpider(LabelSearchSpider):
    """Search Pixabay photos for each label."""

    name = "pixabay"
    url_setting = "PIXABAY_API_URL"

    @classmethod
    def why_unavailable(cls, settings: BaseSettings) -> str | None:
        if not pixabay_key(settings):
            return "no API key; set PIXABAY_API_KEY (free at https://pixabay.com/api/docs/)"
        return None

    def configure(self, settings: BaseSettings) -> str | None:
        key = pixabay_key(settings)
        self.api_key = ApiKey(self.name, key, api_host=urlsplit(self.api_url or "").netloc)
        return None

    def search_url(self, spec: LabelSpec, cursor: Cursor) -> str:
        params = {
            "q": spec.query[:100],
            "image_type": "photo",
            "safesearch": "true",
            "page": cursor["page"],
            "per_page": self._per_page(),
        }
        return f"{self.api_url}?{urlencode(params)}"

    def parse_results(self, data: Any, cursor: Cursor) -> Page:
        field = self.settings.get("PIXABAY_IMAGE_FIELD", "webformatURL")
        return parse_hits(data, cursor["page"], self._per_page(), field)

    def _per_page(self) -> int:
        return min(200, max(3, self.settings.getint("PIXABAY_PAGE_SIZE", 100)))
