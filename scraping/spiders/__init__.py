"""One spider per image source; :data:`SOURCES` maps ``--sources`` names to them."""

from __future__ import annotations

from scraping.spiders.openverse import OpenverseSpider
from scraping.spiders.pixabay import PixabaySpider
from scraping.spiders.reddit import RedditSpider
from scraping.spiders.wikimedia import WikimediaSpider

SOURCES = {
    spider.name: spider
    for spider in (OpenverseSpider, WikimediaSpider, RedditSpider, PixabaySpider)
}

__all__ = ["SOURCES", "OpenverseSpider", "PixabaySpider", "RedditSpider", "WikimediaSpider"]
