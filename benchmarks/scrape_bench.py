"""Throughput and peak memory of the whole gather pipeline, against a local server.

Serves N distinct JPEGs through the four fake APIs on 127.0.0.1, runs the
real `cgan-scrape` CLI at high concurrency in a child process and reports
images/s (end to end and crawl only) and the child's peak RSS. Nothing
leaves the machine.

    python benchmarks/scrape_bench.py                 # 500 images, concurrency 64
    python benchmarks/scrape_bench.py --images 1000 --concurrency 128
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The fake APIs are test scaffolding, kept out of the installed package: import them from
# the repository's tests/ folder.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.scraping.fake_apis import PIXABAY_TEST_KEY, LocalSource, make_jpeg  # noqa: E402

SOURCES = ("openverse", "wikimedia", "reddit", "pixabay")
LABELS = ("cat", "dog")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500, help="images to serve and keep")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--size", type=int, default=256, help="image width in px")
    args = parser.parse_args()

    per_label = args.images // len(LABELS)
    with LocalSource(page_size=50) as server, tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        for n in range(per_label * len(LABELS)):
            label = LABELS[n % len(LABELS)]
            path = f"/img/{n}.jpg"
            server.add_file(path, make_jpeg(10_000 + n, (args.size, args.size * 3 // 4)))
            server.add_result(SOURCES[n % len(SOURCES)], label, path)
        prep = time.perf_counter() - t0
        out = Path(tmp) / "bench"
        settings = {
            **server.settings(),
            "PIXABAY_API_KEY": PIXABAY_TEST_KEY,
            "AUTOTHROTTLE_ENABLED": "False",
            "DOWNLOAD_DELAY": "0",
            "CONCURRENT_REQUESTS": str(args.concurrency),
            "CONCURRENT_REQUESTS_PER_DOMAIN": str(args.concurrency),
            "REACTOR_THREADPOOL_MAXSIZE": "4",
        }
        cmd = [sys.executable, "-m", "cgan.scraping", "--labels", *LABELS]
        cmd += ["--limit", str(per_label), "--quiet"]
        cmd += ["--out", str(out), "--min-size", "64", "--log-level", "INFO"]
        for key, value in settings.items():
            cmd += ["-s", f"{key}={value}"]
        t1 = time.perf_counter()
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        wall = time.perf_counter() - t1
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss

        if result.returncode != 0:
            print(result.stderr[-3000:], file=sys.stderr)
            return 1
        lines = (out / "manifest.jsonl").read_text().splitlines()
        kept = sum(json.loads(line)["status"] == "kept" for line in lines)
        log = (out / "crawl.log").read_text()  # Scrapy's stats go there, not to the terminal
        crawl = max(float(x) for x in re.findall(r"'elapsed_time_seconds': ([0-9.]+)", log))
        twice = [p for p, n in server.hits.items() if p.startswith("/img/") and n > 1]

    print(f"served {per_label * len(LABELS)} images ({args.size}px JPEG) in {prep:.1f}s")
    print(f"kept {kept} images, {len(twice)} downloaded twice, concurrency {args.concurrency}")
    print(
        f"end to end (incl. interpreter + Scrapy start): {wall:.2f}s = {kept / wall:.0f} images/s"
    )
    print(
        f"crawl only (Scrapy elapsed_time_seconds):     {crawl:.2f}s = {kept / crawl:.0f} images/s"
    )
    print(f"peak memory of the crawl process (ru_maxrss):  {peak_kib / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
