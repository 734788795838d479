"""Openverse: openly licensed images; no key needed, larger limits with a registered app.

`GET /v1/images/?q=...&page=N&page_size=M` answers
`{"result_count", "page_count", "page", "results": [...]}` where each result
has `url`, `foreign_landing_url`, `creator`, `license`,
`license_version` and `license_url`.

Anonymous clients may make about 20 requests a minute and 200 a day, with pages of at
most 20 results; an application registered at `/v1/auth_tokens/register/` gets about
100 a minute and 10,000 a day and pages of up to 500, with a bearer token from
`/v1/auth_tokens/token/` (client credentials grant; tokens expire). With
OPENVERSE_CLIENT_ID and OPENVERSE_CLIENT_SECRET set the spider uses a token (auth.py);
either way it keeps to the documented limits (OPENVERSE_ANONYMOUS_LIMITS,
OPENVERSE_REGISTERED_LIMITS) with a RequestBudget counted across runs in
`OUT/.jobs/budgets.json`, and stops for the day with a message when it is spent.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

from scrapy.settings import BaseSettings

from cgan.scraping.addresses import scheme_refusal
from cgan.scraping.auth import OAuthClient, client_credentials
from cgan.scraping.items import LabelSpec
from cgan.scraping.ratelimit import RequestBudget, budget_file, parse_rates
from cgan.scraping.spiders.base import Candidate, Cursor, LabelSearchSpider, Page

ANONYMOUS_MAX_PAGE_SIZE = 20
REGISTERED_MAX_PAGE_SIZE = 500


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

    def configure(self, settings: BaseSettings) -> str | None:
        try:
            credentials = client_credentials(
                settings, "OPENVERSE_CLIENT_ID", "OPENVERSE_CLIENT_SECRET"
            )
        except ValueError as exc:
            return str(exc)
        if credentials is None:
            tier, limits = "anonymous", "OPENVERSE_ANONYMOUS_LIMITS"
            size, largest = settings.getint("OPENVERSE_PAGE_SIZE", 20), ANONYMOUS_MAX_PAGE_SIZE
            hint = " (OPENVERSE_CLIENT_ID and OPENVERSE_CLIENT_SECRET raise it)"
        else:
            tier, limits = "registered", "OPENVERSE_REGISTERED_LIMITS"
            size = settings.getint("OPENVERSE_REGISTERED_PAGE_SIZE", 100)
            largest, hint = REGISTERED_MAX_PAGE_SIZE, ""
            token_url = str(settings.get("OPENVERSE_TOKEN_URL") or "")
            why = scheme_refusal(token_url)
            if why:
                return f"OPENVERSE_TOKEN_URL={token_url!r} is not usable: {why}"
            self.oauth = OAuthClient(
                source=self.name,
                token_url=token_url,
                credentials=credentials,
                api_host=urlsplit(self.api_url or "").netloc,
                basic_auth=False,
                scheme="Bearer",
                names=("OPENVERSE_CLIENT_ID", "OPENVERSE_CLIENT_SECRET"),
            )
        self.page_size = min(max(size, 1), largest)
        try:
            rates = parse_rates(settings.getlist(limits))
        except ValueError as exc:
            return f"{limits}: {exc}"
        if rates:
            path = budget_file(settings.get("IMAGES_STORE") or "data/scraped")
            self.budget = RequestBudget(f"openverse/{tier}", rates, path, tier, hint)
        return None

    def search_url(self, spec: LabelSpec, cursor: Cursor) -> str:
        params = {
            "q": spec.query,
            "page": cursor["page"],
            "page_size": self.page_size,
            "mature": "false",
        }
        licence_type = self.settings.get("OPENVERSE_LICENSE_TYPE")
        if licence_type:
            params["license_type"] = licence_type
        return f"{self.api_url}?{urlencode(params)}"

    def parse_results(self, data: Any, cursor: Cursor) -> Page:
        return parse_openverse(data, cursor["page"])
