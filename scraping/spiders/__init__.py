"""One spider per image source: openverse, wikimedia, reddit and pixabay.

Scrapy finds them by name through SPIDER_MODULES (settings.py), for `cgan-scrape` and
`scrapy crawl` alike; base.py holds what they share.
"""
