"""The one item type: an image URL found for a label, plus what we learn about it."""

from __future__ import annotations

import scrapy


class LabelledImage(scrapy.Item):
    """A candidate image. Spiders fill the first block, pipelines the second."""

    # Filled by the spider from the source's API response.
    label = scrapy.Field()
    query = scrapy.Field()
    source = scrapy.Field()
    image_urls = scrapy.Field()  # exactly one URL; the ImagesPipeline input field
    licence = scrapy.Field()
    licence_url = scrapy.Field()
    author = scrapy.Field()
    source_page = scrapy.Field()
    title = scrapy.Field()

    # Filled by the pipelines.
    images = scrapy.Field()  # the ImagesPipeline result field
    status = scrapy.Field()
    reason = scrapy.Field()
    detail = scrapy.Field()
    sha1 = scrapy.Field()
    phash = scrapy.Field()
    width = scrapy.Field()
    height = scrapy.Field()
    bytes = scrapy.Field()
    path = scrapy.Field()
