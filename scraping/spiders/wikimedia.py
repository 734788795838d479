"""Wikimedia Commons: freely licensed media through the MediaWiki API, no key.

`action=query&generator=search&gsrnamespace=6&prop=imageinfo` returns
`query.pages` (an object keyed by page id, or a list with formatversion=2),
each with `imageinfo[0]` holding `url`/`thumburl`, `descriptionurl`,
`mime`, `width`/`height` and `extmetadata` (licence, artist). Paging
is MediaWiki's `continue` object, sent back verbatim.
"""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import urlencode

from cgan.scraping.items import LabelSpec
from cgan.scraping.spiders.base import Candidate, Cursor, LabelSearchSpider, Page

RASTER_MIMES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"})
_TAG = re.compile(r"<[^>]+>")


def plain_text(value: str | None) -> str | None:
    """extmetadata values are HTML snippets; keep the words."""
    if not value:
        return None
    text = " ".join(html.unescape(_TAG.sub(" ", value)).split())
    return text or None


def _meta(info: dict[str, Any], key: str) -> str | None:
    entry = (info.get("extmetadata") or {}).get(key) or {}
    value = entry.get("value")
    return str(value) if value is not None else None


def parse_commons(data: dict[str, Any]) -> Page:
    """Read one Commons search page."""
    if "error" in data:
        raise ValueError(f"API error {data['error'].get('code')}: {data['error'].get('info')}")
    pages = (data.get("query") or {}).get("pages") or {}
    if isinstance(pages, dict):
        pages = list(pages.values())
    pages.sort(key=lambda page: page.get("index", 0))
    candidates = []
    for page in pages:
        info = (page.get("imageinfo") or [{}])[0]
        url = info.get("thumburl") or info.get("url")
        if not url or info.get("mime", "image/jpeg") not in RASTER_MIMES:
            continue
        candidates.append(
            Candidate(
                url=url,
                licence=plain_text(_meta(info, "LicenseShortName")),
                licence_url=_meta(info, "LicenseUrl"),
                author=plain_text(_meta(info, "Artist")),
                source_page=info.get("descriptionurl"),
                title=page.get("title"),
            )
        )
    more = data.get("continue")
    return Page(candidates, dict(more) if more else None)


class WikimediaSpider(LabelSearchSpider):
    """Search Wikimedia Commons' File: namespace for each label."""

    name = "wikimedia"
    url_setting = "WIKIMEDIA_API_URL"

    def first_cursor(self) -> Cursor:
        return {}

    def search_url(self, spec: LabelSpec, cursor: Cursor) -> str:
        params: dict[str, Any] = {
            "action": "query",
            "format": "json",
            "generator": "search",
            "gsrsearch": f"{spec.query} filetype:bitmap",
            "gsrnamespace": 6,
            "gsrlimit": self.settings.getint("WIKIMEDIA_PAGE_SIZE", 50),
            "prop": "imageinfo",
            "iiprop": "url|size|mime|extmetadata",
            "iiextmetadatafilter": "LicenseShortName|LicenseUrl|Artist",
        }
        thumb = self.settings.getint("WIKIMEDIA_THUMB_WIDTH", 1024)
        if thumb > 0:
            params["iiurlwidth"] = thumb
        params.update(cursor)
        return f"{self.api_url}?{urlencode(params)}"

    def parse_results(self, data: Any, cursor: Cursor) -> Page:
        return parse_commons(data)
