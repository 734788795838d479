"""Gather stage: scrape labelled images from public APIs into class folders.

The package is a Scrapy project (`scrapy.cfg` sits next to this file) plus a
command line, `cgan-scrape`, that runs the spiders in-process and turns the
scraped folders into a training-ready dataset.
"""

__version__ = "0.1.0"
