"""Reddit: search through the Data API with a registered app, else the public listing.

With REDDIT_CLIENT_ID and REDDIT_CLIENT_SECRET (a "script" or "web" app, and
REDDIT_USERNAME for the User-Agent) the spider asks `oauth.reddit.com/search` with an
application-only token (client credentials grant, auth.py) and a User-Agent in Reddit's
format, `python:cgan-label2image:<version> (by /u/<name>)`, paced by the
`X-Ratelimit-*` headers Reddit sends (RateLimitMiddleware). Without them it reads the
public listing `www.reddit.com/search.json`, obeying robots.txt, which has disallowed
every path to automated clients since 2024: for a real user that yields nothing, and
the per-label lines say so.

Both answer `{"data": {"children": [{"data": post}], "after": token}}`.
Image posts have `post_hint == "image"` and a direct `url`; galleries
list their files in `media_metadata`; `preview.images[0].source.url` is
the fallback. Reddit gives no licence, so `licence` stays empty, and posts
marked over_18 are skipped unless REDDIT_ALLOW_NSFW is set.
"""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

from scrapy.settings import BaseSettings

from cgan.scraping import __version__
from cgan.scraping.addresses import scheme_refusal
from cgan.scraping.auth import OAuthClient, client_credentials
from cgan.scraping.items import LabelSpec
from cgan.scraping.spiders.base import Candidate, Cursor, LabelSearchSpider, Page

USERNAME = re.compile(r"[A-Za-z0-9_-]{3,20}")
APP_ID = "cgan-label2image"


def reddit_user_agent(username: str) -> str:
    """Reddit's User-Agent format: `<platform>:<app id>:<version> (by /u/<name>)`."""
    return f"python:{APP_ID}:{__version__} (by /u/{username})"


# How a post's link ends when it points straight at a picture. A URL, not a file on disk:
# cgan.common.images.IMAGE_SUFFIXES is what the dataset reads, and reddit hosts none of
# its bmp/tiff; links without these endings still count when reddit says post_hint=image.
IMAGE_URL_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif")


def _post_images(post: dict[str, Any]) -> list[str]:
    url = post.get("url_overridden_by_dest") or post.get("url") or ""
    if post.get("post_hint") == "image" or url.lower().split("?")[0].endswith(IMAGE_URL_SUFFIXES):
        return [html.unescape(url)]
    if post.get("is_gallery"):
        media = post.get("media_metadata") or {}
        order = [entry["media_id"] for entry in (post.get("gallery_data") or {}).get("items", [])]
        urls = []
        for media_id in order or list(media):
            source = (media.get(media_id) or {}).get("s") or {}
            if source.get("u"):
                urls.append(html.unescape(source["u"]))
        return urls
    images = (post.get("preview") or {}).get("images") or []
    if images and (images[0].get("source") or {}).get("url"):
        return [html.unescape(images[0]["source"]["url"])]
    return []


def parse_listing(data: dict[str, Any], base_url: str, allow_nsfw: bool = False) -> Page:
    """Read one reddit search listing."""
    listing = data["data"]
    candidates = []
    for child in listing.get("children", []):
        post = child.get("data") or {}
        if child.get("kind", "t3") != "t3" or (post.get("over_18") and not allow_nsfw):
            continue
        for url in _post_images(post):
            candidates.append(
                Candidate(
                    url=url,
                    author=post.get("author"),
                    source_page=urljoin(base_url, post["permalink"])
                    if post.get("permalink")
                    else None,
                    title=post.get("title"),
                )
            )
    after = listing.get("after")
    return Page(candidates, {"after": after} if after and listing.get("children") else None)


class RedditSpider(LabelSearchSpider):
    """Search reddit posts for each label and take the linked images."""

    name = "reddit"
    url_setting = "REDDIT_SEARCH_URL"
    is_official_api = False  # the public listing: robots.txt applies (not to the Data API)

    def configure(self, settings: BaseSettings) -> str | None:
        self.permalink_base = settings.get("REDDIT_SEARCH_URL") or "https://www.reddit.com/"
        try:
            credentials = client_credentials(settings, "REDDIT_CLIENT_ID", "REDDIT_CLIENT_SECRET")
        except ValueError as exc:
            return str(exc)
        username = str(settings.get("REDDIT_USERNAME") or "").strip().removeprefix("/u/")
        if username and not USERNAME.fullmatch(username):
            return (
                f"REDDIT_USERNAME={username[:40]!r} is not a reddit user name "
                "(3-20 letters, digits, '_' or '-')"
            )
        if username:
            self.page_headers["User-Agent"] = reddit_user_agent(username)
        if credentials is None:
            return None  # the public listing
        if not username:
            return (
                "REDDIT_CLIENT_ID is set but REDDIT_USERNAME is not: Reddit's API asks for a "
                "User-Agent naming the account that registered the app"
            )
        self.api_url, self.api_setting = settings.get("REDDIT_OAUTH_URL"), "REDDIT_OAUTH_URL"
        self.official_api = True  # the Data API, under its terms
        token_url = str(settings.get("REDDIT_TOKEN_URL") or "")
        why = scheme_refusal(token_url) or scheme_refusal(self.api_url or "")
        if why:
            return f"REDDIT_TOKEN_URL / REDDIT_OAUTH_URL not usable: {why}"
        self.oauth = OAuthClient(
            source=self.name,
            token_url=token_url,
            credentials=credentials,
            api_host=urlsplit(self.api_url).netloc,
            basic_auth=True,
            scheme="bearer",
            user_agent=self.page_headers["User-Agent"],
            names=("REDDIT_CLIENT_ID", "REDDIT_CLIENT_SECRET"),
        )
        return None

    def first_cursor(self) -> Cursor:
        return {}

    def search_url(self, spec: LabelSpec, cursor: Cursor) -> str:
        params = {
            "q": spec.query,
            "limit": self.settings.getint("REDDIT_PAGE_SIZE", 100),
            "type": "link",
            "sort": "relevance",
            "raw_json": 1,
        }
        params.update(cursor)
        return f"{self.api_url}?{urlencode(params)}"

    def parse_results(self, data: Any, cursor: Cursor) -> Page:
        nsfw = self.settings.getbool("REDDIT_ALLOW_NSFW")
        return parse_listing(data, self.permalink_base, nsfw)
