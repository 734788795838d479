"""One spider per image source; :data:`SOURCES` maps ``--sources`` names to them."""

from __future__ import annotations

from cgan.scraping.spiders.openverse import OpenverseSpider
from cgan.scraping.spiders.pixabay import PixabaySpider
from cgan.scraping.spiders.reddit import RedditSpider
from cgan.scraping.spiders.wikimedia import WikimediaSpider

SOURCES = {
    spider.name: spider
    for spider in (OpenverseSpider, WikimediaSpider, RedditSpider, PixabaySpider)
}

__all__ = ["SOURCES", "OpenverseSpider", "PixabaySpider", "RedditSpider", "WikimediaSpider"]
