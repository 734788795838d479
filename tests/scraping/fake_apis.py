"""A local stand-in for the four image APIs, for tests and the benchmark.

It answers on 127.0.0.1 with the documented JSON shapes of Openverse,
Wikimedia Commons, reddit search and Pixabay, serves image bytes made with
Pillow, and can misbehave on purpose (404, 500, 429 + Retry-After, slow
answers, lies about content types). It counts every hit per path, which is
how tests prove nothing is downloaded twice. No real site is ever contacted.
"""

from __future__ import annotations

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
        "/pixabay/api/": source.pixabay,
    }

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
                status, payload = apis[path](query)
                if isinstance(payload, str):
                    self._send(status, payload.encode(), "text/plain")
                else:
                    self._send(status, json.dumps(payload).encode(), "application/json")
            elif path in source.files:
                self._serve_file(source.files[path], count)
            else:
                self._send(404, b"not found", "text/plain")

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
