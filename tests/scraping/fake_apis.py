"""A local stand-in for the four image APIs, for tests and the benchmark.

It answers on 127.0.0.1 with the documented JSON shapes of Openverse,
Wikimedia Commons, reddit search and Pixabay, serves image bytes made with
Pillow, and can misbehave on purpose (404, 500, 429 + Retry-After, slow
answers, lies about content types). It counts every hit per path, which is
how tests prove nothing is downloaded twice. No real site is ever contacted.

Like the real services it also has token endpoints (client credentials grant:
Reddit's `/api/v1/access_token` with HTTP basic auth, Openverse's
`/v1/auth_tokens/token/` with form fields) whose tokens expire and are refused
with a 401 after that, Reddit's Data API search at `/reddit-oauth/search`
(bearer token required, `X-Ratelimit-Used/-Remaining/-Reset` on every answer,
429 past the limit), and Openverse's anonymous limits (pages of at most 20,
a sliding-window request limit answered with 429 + Retry-After).
"""

from __future__ import annotations

import base64
import io
import json
import math
import random
import struct
import sys
import threading
import time
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from PIL import Image, ImageDraw

PIXABAY_TEST_KEY = "local-test-key"
REDDIT_TEST_ID = "redditAppId12"
REDDIT_TEST_SECRET = "reddit-Secret-4f1e9c0d2b7a"
OPENVERSE_TEST_ID = "openverseClientId34"
OPENVERSE_TEST_SECRET = "openverse-Secret-8a3d5e6f7b1c"

# --- image factories -----------------------------------------------------------


def make_image(seed: int, size: tuple[int, int] = (200, 160)) -> Image.Image:
    """A distinct picture per seed: shapes on a coloured ground (distinct phashes)."""
    rng = random.Random(seed)
    width, height = size
    image = Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(5, 9)):
        x0, y0 = rng.randrange(width), rng.randrange(height)
        box = [
            x0,
            y0,
            x0 + rng.randint(width // 6, width // 2),
            y0 + rng.randint(height // 6, height // 2),
        ]
        colour = tuple(rng.randrange(256) for _ in range(3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
    return image


def encode(image: Image.Image, fmt: str = "JPEG", quality: int = 90) -> bytes:
    """Image to bytes in `fmt`."""
    buf = io.BytesIO()
    image.save(buf, fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    return buf.getvalue()


def make_jpeg(seed: int, size: tuple[int, int] = (200, 160), quality: int = 90) -> bytes:
    """JPEG bytes of `make_image`."""
    return encode(make_image(seed, size), "JPEG", quality)


def near_copy(body: bytes, scale: float = 0.8, quality: int = 60) -> bytes:
    """A resized, recompressed copy: different bytes, same picture."""
    image = Image.open(io.BytesIO(body)).convert("RGB")
    image = image.resize((int(image.width * scale), int(image.height * scale)))
    return encode(image, "JPEG", quality)


def truncated(body: bytes) -> bytes:
    """The first half of a file, as left by a dropped connection."""
    return body[: len(body) // 2]


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG whose header claims `width` x `height` pixels."""
    real = encode(Image.new("RGB", (8, 8), (200, 10, 10)), "PNG")
    ihdr_data = struct.pack(">II", width, height) + real[24:29]
    chunk = b"IHDR" + ihdr_data
    ihdr = struct.pack(">I", len(ihdr_data)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    return real[:8] + ihdr + real[33:]


HTML_PAGE = b"<!doctype html><html><body><h1>Not an image</h1></body></html>"


# --- server ----------------------------------------------------------------------


@dataclass
class Resource:
    """A file the server hands out, and how it misbehaves."""

    body: bytes
    content_type: str = "image/jpeg"
    status: int = 200
    delay: float = 0.0
    throttle_first: int = 0  # answer 429 + Retry-After this many times first
    retry_after: str = "1"
    location: str | None = None  # with a 3xx status: where to redirect


@dataclass
class Entry:
    """One search result pointing at a served path."""

    path: str
    title: str
    author: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class TokenEndpoint:
    """One service's OAuth2 token endpoint (client credentials grant) and its tokens."""

    clients: dict[str, str]  # client id -> secret
    lifetime: float = 3600.0  # the expires_in it announces, and enforces
    uses: int | None = None  # a token is revoked after this many API requests
    answer: bytes | None = None  # a canned answer (malformed ones) instead of a token
    revoked: bool = False  # refuse every client with 401, as after a revoked secret
    send_expires_in: bool = True
    issued: list[str] = field(default_factory=list)  # every token handed out
    requests: int = 0
    refused_tokens: int = 0  # API requests answered 401
    _valid: dict[str, tuple[float, int]] = field(default_factory=dict)  # expiry, uses left

    def grant(self, client_id: str | None, secret: str | None, grant: str | None) -> tuple:
        """(status, JSON or bytes) for one token request."""
        self.requests += 1
        if self.answer is not None:
            return 200, self.answer
        if self.revoked or grant != "client_credentials" or self.clients.get(client_id) != secret:
            return 401, {"error": "invalid_client", "message": "Unauthorized"}
        token = f"tok{len(self.issued)}-{random.getrandbits(64):016x}"
        self.issued.append(token)
        self._valid[token] = (time.monotonic() + self.lifetime, self.uses or 1 << 30)
        body: dict[str, Any] = {"access_token": token, "token_type": "bearer", "scope": "*"}
        if self.send_expires_in:
            body["expires_in"] = self.lifetime
        return 200, body

    def check(self, authorization: str | None) -> bool:
        """Whether an API request carries a live token (and count its use)."""
        scheme, _, token = (authorization or "").partition(" ")
        expiry, uses = self._valid.get(token, (0.0, 0))
        if scheme.lower() != "bearer" or time.monotonic() >= expiry or uses <= 0:
            self.refused_tokens += 1
            return False
        self._valid[token] = (expiry, uses - 1)
        return True


@dataclass
class FixedWindow:
    """Reddit's kind of limit: `limit` requests per `window` seconds from the first one."""

    limit: int
    window: float
    started: float = -math.inf
    used: int = 0
    refused: int = 0

    def take(self) -> tuple[bool, dict[str, str]]:
        now = time.monotonic()
        if now >= self.started + self.window:
            self.started, self.used = now, 0
        self.used += 1
        allowed = self.used <= self.limit
        if not allowed:
            self.refused += 1
        left = self.started + self.window - now
        headers = {
            "X-Ratelimit-Used": str(min(self.used, self.limit)),
            "X-Ratelimit-Remaining": f"{max(self.limit - self.used, 0):.1f}",
            "X-Ratelimit-Reset": str(math.ceil(left)),
        }
        return allowed, headers


@dataclass
class SlidingWindow:
    """Openverse's (Django REST framework's) kind: at most `limit` in any `window` seconds."""

    limit: int
    window: float
    history: list[float] = field(default_factory=list)
    refused: int = 0

    def take(self) -> tuple[bool, dict[str, str]]:
        now = time.monotonic()
        self.history = [t for t in self.history if t > now - self.window]
        if len(self.history) >= self.limit:
            self.refused += 1
            wait = self.window - (now - self.history[0])
            return False, {"Retry-After": str(max(1, math.ceil(wait)))}
        self.history.append(now)
        return True, {}


class _Server(ThreadingHTTPServer):
    # socketserver's default backlog of 5 drops SYNs under a concurrent crawl,
    # and TCP's 1 s/3 s/7 s... retransmits would then dominate any measurement.
    request_queue_size = 512
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up mid-answer (its timeout, a size cap) is expected here.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class LocalSource:
    """Threaded HTTP server on a free 127.0.0.1 port; see the module docstring."""

    def __init__(self, page_size: int = 4) -> None:
        self.page_size = page_size
        self.files: dict[str, Resource] = {}
        self.results: defaultdict[tuple[str, str], list[Entry]] = defaultdict(list)
        self.hits: Counter[str] = Counter()
        self.hit_times: defaultdict[str, list[float]] = defaultdict(list)
        self.requests: list[str] = []  # every path with its query string, in order
        # Like Commons, forbid the API path: official APIs are exempt, images are not.
        self.robots = "User-agent: *\nDisallow: /private/\nDisallow: /commons/\n"
        self.image_delay = 0.0
        self.robots_delay = 0.0
        self.api_delay = 0.0  # seconds before each search API answer
        # OAuth and rate limits (see the module docstring).
        self.reddit_tokens = TokenEndpoint({REDDIT_TEST_ID: REDDIT_TEST_SECRET})
        self.openverse_tokens = TokenEndpoint({OPENVERSE_TEST_ID: OPENVERSE_TEST_SECRET})
        self.reddit_limit: FixedWindow | None = None
        self.openverse_anonymous_limit: SlidingWindow | None = None
        self.api_errors: defaultdict[str, list[int]] = defaultdict(list)  # statuses to answer first
        self.user_agents: list[tuple[str, str]] = []  # (path, User-Agent) of API and token requests
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # setup
    def add_file(self, path: str, body: bytes, **options: Any) -> str:
        """Serve `body` at `path`; returns the full URL."""
        self.files[path] = Resource(body, **options)
        return self.url(path)

    def add_result(self, source: str, query: str, path: str, **extra: Any) -> None:
        """Make `path` appear in `source`'s results for `query`."""
        n = len(self.results[(source, query)])
        self.results[(source, query)].append(
            Entry(path, title=f"{query} {n}", author=f"author-{source}-{n}", extra=extra)
        )

    # lifecycle
    def start(self) -> LocalSource:
        handler = _make_handler(self)
        self._server = _Server(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> LocalSource:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base(self) -> str:
        assert self._server is not None, "start() the server first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        """Full URL of a served path; a path that already is a URL (`file:...`) stays as is."""
        return path if ":" in path.split("/", 1)[0] else self.base + path

    def settings(self) -> dict[str, str]:
        """Scrapy settings that point every source at this server."""
        return {
            # The server lives on 127.0.0.1, which the crawl refuses by default.
            "ALLOW_PRIVATE_ADDRESSES": "True",
            "OPENVERSE_API_URL": self.url("/openverse/v1/images/"),
            "WIKIMEDIA_API_URL": self.url("/commons/w/api.php"),
            "REDDIT_SEARCH_URL": self.url("/reddit/search.json"),
            "REDDIT_OAUTH_URL": self.url("/reddit-oauth/search"),
            "REDDIT_TOKEN_URL": self.url("/reddit/api/v1/access_token"),
            "OPENVERSE_TOKEN_URL": self.url("/openverse/v1/auth_tokens/token/"),
            # The real budgets (20 a minute) would make every test wait minutes.
            "OPENVERSE_ANONYMOUS_LIMITS": "1000/1s",
            "OPENVERSE_REGISTERED_LIMITS": "1000/1s",
            "PIXABAY_API_URL": self.url("/pixabay/api/"),
            "OPENVERSE_PAGE_SIZE": str(self.page_size),
            "WIKIMEDIA_PAGE_SIZE": str(self.page_size),
            "REDDIT_PAGE_SIZE": str(self.page_size),
            "PIXABAY_PAGE_SIZE": str(max(3, self.page_size)),
        }

    def count(self, prefix: str) -> int:
        """Hits on paths starting with `prefix`."""
        with self._lock:
            return sum(n for path, n in self.hits.items() if path.startswith(prefix))

    def _hit(self, path: str) -> int:
        with self._lock:
            self.hits[path] += 1
            self.hit_times[path].append(time.monotonic())
            return self.hits[path]

    # API answers, in each service's documented shape
    def _window(self, source: str, query: str, offset: int, size: int) -> tuple[list[Entry], int]:
        entries = self.results.get((source, query), [])
        return entries[offset : offset + size], len(entries)

    def openverse(self, q: dict[str, str]) -> tuple[int, Any]:
        page, size = int(q.get("page", 1)), int(q.get("page_size", 20))
        entries, total = self._window("openverse", q.get("q", ""), (page - 1) * size, size)
        results = [
            {
                "id": f"ov-{page}-{i}",
                "title": e.title,
                "url": self.url(e.path),
                "foreign_landing_url": self.url(f"/landing{e.path}"),
                "creator": e.author,
                "license": "by-sa",
                "license_version": "2.0",
                "license_url": "https://creativecommons.org/licenses/by-sa/2.0/",
                "provider": "flickr",
                "source": "flickr",
                "filetype": "jpg",
                **e.extra,
            }
            for i, e in enumerate(entries)
        ]
        page_count = max(1, math.ceil(total / size))
        body = {"result_count": total, "page_count": page_count, "page_size": size, "page": page}
        return 200, {**body, "results": results}

    def commons(self, q: dict[str, str]) -> tuple[int, Any]:
        query = q.get("gsrsearch", "").replace(" filetype:bitmap", "")
        offset, size = int(q.get("gsroffset", 0)), int(q.get("gsrlimit", 10))
        entries, total = self._window("wikimedia", query, offset, size)
        pages = {}
        for i, e in enumerate(entries):
            page_id = 1000 + offset + i
            pages[str(page_id)] = {
                "pageid": page_id,
                "ns": 6,
                "title": f"File:{e.title}.jpg",
                "index": offset + i + 1,
                "imagerepository": "local",
                "imageinfo": [
                    {
                        "url": self.url(e.path),
                        "thumburl": self.url(e.path),
                        "descriptionurl": self.url(f"/wiki/File:{page_id}"),
                        "mime": e.extra.get("mime", "image/jpeg"),
                        "size": len(self.files[e.path].body) if e.path in self.files else 0,
                        "width": 200,
                        "height": 160,
                        "extmetadata": {
                            "LicenseShortName": {"value": "CC BY-SA 4.0", "source": "commons"},
                            "Artist": {"value": f'<a href="/wiki/User:x">{e.author}</a>'},
                        },
                    }
                ],
            }
        body: dict[str, Any] = {"batchcomplete": "", "query": {"pages": pages}}
        if offset + size < total:
            body["continue"] = {"gsroffset": offset + size, "continue": "gsroffset||"}
        return 200, body

    def reddit(self, q: dict[str, str]) -> tuple[int, Any]:
        after = q.get("after", "")
        offset = int(after.split("_")[1]) if after.startswith("t3_") else 0
        size = int(q.get("limit", 25))
        entries, total = self._window("reddit", q.get("q", ""), offset, size)
        children = []
        for i, e in enumerate(entries):
            post_id = f"p{offset + i}"
            post = {
                "id": post_id,
                "name": f"t3_{offset + i}",
                "title": e.title,
                "author": e.author,
                "permalink": f"/r/pics/comments/{post_id}/x/",
                "url": self.url(e.path),
                "post_hint": "image",
                "over_18": False,
                "is_self": False,
                **e.extra,
            }
            children.append({"kind": "t3", "data": post})
        next_after = f"t3_{offset + size}" if offset + size < total else None
        listing = {"after": next_after, "before": None, "dist": len(children), "children": children}
        return 200, {"kind": "Listing", "data": listing}

    def pixabay(self, q: dict[str, str]) -> tuple[int, Any]:
        if q.get("key") != PIXABAY_TEST_KEY:
            return 400, "[ERROR 400] Invalid or missing API key"
        page, size = int(q.get("page", 1)), int(q.get("per_page", 20))
        entries, total = self._window("pixabay", q.get("q", ""), (page - 1) * size, size)
        hits = [
            {
                "id": 5000 + i,
                "pageURL": self.url(f"/pixabay/photos/{i}"),
                "type": "photo",
                "tags": e.title,
                "webformatURL": self.url(e.path),
                "largeImageURL": self.url(e.path),
                "imageWidth": 200,
                "imageHeight": 160,
                "user": e.author,
                "user_id": 42,
            }
            for i, e in enumerate(entries)
        ]
        return 200, {"total": total, "totalHits": total, "hits": hits}


def _make_handler(source: LocalSource) -> type[BaseHTTPRequestHandler]:
    apis = {
        "/openverse/v1/images/": source.openverse,
        "/commons/w/api.php": source.commons,
        "/reddit/search.json": source.reddit,
        "/reddit-oauth/search": source.reddit,
        "/pixabay/api/": source.pixabay,
    }
    unauthorised = {"message": "Unauthorized", "error": 401}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # keep test output clean

        def _send(self, status: int, body: bytes, content_type: str, headers=None) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (e.g. its timeout), which is the point

        def _json(self, status: int, payload: Any, headers=None) -> None:
            if isinstance(payload, bytes):
                self._send(status, payload, "application/json", headers)
            elif isinstance(payload, str):
                self._send(status, payload.encode(), "text/plain", headers)
            else:
                self._send(status, json.dumps(payload).encode(), "application/json", headers)

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            parts = urlsplit(self.path)
            source._hit(parts.path)
            source.requests.append(self.path)
            length = min(int(self.headers.get("Content-Length") or 0), 65536)
            form = {k: v[-1] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            source.user_agents.append((parts.path, self.headers.get("User-Agent", "")))
            with source._lock:
                if parts.path == "/reddit/api/v1/access_token":
                    client_id, secret = _basic_auth(self.headers.get("Authorization"))
                    status, body = source.reddit_tokens.grant(
                        client_id, secret, form.get("grant_type")
                    )
                elif parts.path == "/openverse/v1/auth_tokens/token/":
                    status, body = source.openverse_tokens.grant(
                        form.get("client_id"), form.get("client_secret"), form.get("grant_type")
                    )
                else:
                    status, body = 404, "not found"
            self._json(status, body)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            parts = urlsplit(self.path)
            path = parts.path
            count = source._hit(path)
            source.requests.append(self.path)
            query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
            if path == "/robots.txt":
                time.sleep(source.robots_delay)
                self._send(200, source.robots.encode(), "text/plain")
            elif path in apis:
                self._api(path, query)
            elif path in source.files:
                self._serve_file(source.files[path], count)
            else:
                self._send(404, b"not found", "text/plain")

        def _api(self, path: str, query: dict[str, str]) -> None:
            headers: dict[str, str] = {}
            authorization = self.headers.get("Authorization")
            if path.startswith(("/reddit-oauth/", "/openverse/")):
                source.user_agents.append((path, self.headers.get("User-Agent", "")))
            with source._lock:
                errors = source.api_errors.get(path)
                if errors:
                    self._json(errors.pop(0), {"error": "try again"})
                    return
                if path == "/reddit-oauth/search":
                    if not source.reddit_tokens.check(authorization):
                        self._json(401, unauthorised, {"WWW-Authenticate": 'Bearer realm="reddit"'})
                        return
                    if source.reddit_limit is not None:
                        allowed, headers = source.reddit_limit.take()
                        if not allowed:
                            self._json(429, {"message": "Too Many Requests"}, headers)
                            return
                elif path == "/openverse/v1/images/":
                    size = int(query.get("page_size", 20))
                    if authorization is not None:
                        if not source.openverse_tokens.check(authorization):
                            self._json(401, {"detail": "Invalid token."})
                            return
                        if size > 500:
                            self._json(400, {"detail": "page_size: at most 500"})
                            return
                    else:
                        if size > 20:
                            self._json(401, {"detail": "Authentication credentials needed."})
                            return
                        if source.openverse_anonymous_limit is not None:
                            allowed, headers = source.openverse_anonymous_limit.take()
                            if not allowed:
                                self._json(429, {"detail": "Request was throttled."}, headers)
                                return
            time.sleep(source.api_delay)
            status, payload = apis[path](query)
            self._json(status, payload, headers)

        def _serve_file(self, res: Resource, count: int) -> None:
            if res.delay or source.image_delay:
                time.sleep(res.delay or source.image_delay)
            if count <= res.throttle_first:
                self._send(429, b"slow down", "text/plain", {"Retry-After": res.retry_after})
            elif res.status != 200:
                headers = {"Location": res.location} if res.location else None
                self._send(res.status, b"error", "text/plain", headers)
            else:
                self._send(200, res.body, res.content_type)

    return Handler


def _basic_auth(header: str | None) -> tuple[str | None, str | None]:
    """(client id, secret) from an HTTP basic Authorization header."""
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        client_id, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None, None
    return client_id, secret
