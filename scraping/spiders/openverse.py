"""Openverse: openly licensed images, no API key needed.

`GET /v1/images/?q=...&page=N&page_size=M` answers
`{"result_count", "page_count", "page", "results": [...]}` where each result
has `url`, `foreign_landing_url`, `creator`, `license`,
`license_version` and `license_url`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from cgan.scraping.items import LabelSpec
from cgan.scraping.spiders.base import Candidate, Cursor, LabelSearchSpider, Page


def format_licence(code: str | None, version: str | None) -> str | None:
    """`by-sa` + `2.0` -> `CC BY-SA 2.0`; `cc0` -> `CC0 1.0`; `pdm` -> `PDM 1.0`."""
    if not code:
        return None
    name = code.upper()
    if name.startswith("BY") or name.startswith("NC") or name.startswith("SA"):
        name = f"CC {name}"
    return f"{name} {version}" if version else name


def parse_openverse(data: dict[str, Any], page: int) -> Page:
    """Read one Openverse results page."""
    candidates = [
        Candidate(
            url=result["url"],
            licence=format_licence(result.get("license"), result.get("license_version")),
            licence_url=result.get("license_url"),
            author=result.get("creator"),
            source_page=result.get("foreign_landing_url"),
            title=result.get("title"),
        )
        for result in data["results"]
        if result.get("url")
    ]
    more = bool(data["results"]) and page < int(data.get("page_count") or 0)
    return Page(candidates, {"page": page + 1} if more else None)


class OpenverseSpider(LabelSearchSpider):
    """Search Openverse (api.openverse.org) for each label."""

    name = "openverse"
    url_setting = "OPENVERSE_API_URL"

    def search_url(self, spec: LabelSpec, cursor: Cursor) -> str:
        params = {
            "q": spec.query,
            "page": cursor["page"],
            "page_size": self.settings.getint("OPENVERSE_PAGE_SIZE", 20),
            "mature": "false",
        }
        licence_type = self.settings.get("OPENVERSE_LICENSE_TYPE")
        if licence_type:
            params["license_type"] = licence_type
        return f"{self.api_url}?{urlencode(params)}"

    def parse_results(self, data: Any, cursor: Cursor) -> Page:
        return parse_openverse(data, cursor["page"])
