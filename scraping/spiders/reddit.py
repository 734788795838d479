"""Reddit: public JSON search listings (`/search.json`), no key.

The listing is `{"data": {"children": [{"data": post}], "after": token}}`.
Image posts have `post_hint == "image"` and a direct `url`; galleries
list their files in `media_metadata`; `preview.images[0].source.url` is
the fallback. Reddit gives no licence, so `licence` stays empty, and posts
marked over_18 are skipped unless REDDIT_ALLOW_NSFW is set. Note that
reddit's robots.txt may forbid crawling, in which case (with ROBOTSTXT_OBEY)
this source simply reports that and yields nothing.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import urlencode, urljoin

from cgan.scraping.items import LabelSpec
from cgan.scraping.spiders.base import Candidate, Cursor, LabelSearchSpider, Page

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
    is_official_api = False  # a listing page: robots.txt applies

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
        return parse_listing(data, self.api_url, self.settings.getbool("REDDIT_ALLOW_NSFW"))
