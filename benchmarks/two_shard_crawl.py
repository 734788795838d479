"""A crawl split over two processes (`--shard 1/2`, `2/2`) against one process, same work.

Serves distinct JPEGs for every (label, source) pair through the four fake APIs on
127.0.0.1, plants copies across the two shards (the same bytes, and resized copies, of a
few pictures under one label), then runs the real `cgan-scrape` CLI: once as one
process, once as two shard processes side by side, each into its own folder, and builds
both (`build --src whole`, `build --src shard1 shard2`). Prints images kept per label,
downloads, duplicates removed and wall time. Nothing leaves the machine.

    python benchmarks/two_shard_crawl.py                  # 3 labels x 4 sources x 15 images
    python benchmarks/two_shard_crawl.py --per-pair 40 --limit 100   # --limit binds
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

# The fake APIs are test scaffolding, kept out of the installed package: import them from
# the repository's tests/ folder.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cgan.scraping.report import format_table  # noqa: E402
from tests.scraping.fake_apis import (  # noqa: E402
    PIXABAY_TEST_KEY,
    LocalSource,
    make_jpeg,
    near_copy,
)

SOURCES = ("openverse", "pixabay", "reddit", "wikimedia")
LABELS = ("cat", "dog", "horse")


def serve(server: LocalSource, per_pair: int, planted: int) -> None:
    """`per_pair` pictures per (label, source), and `planted` copies across the shards.

    Sorted pairs are dealt round-robin, so for each label its openverse and reddit pairs
    go to one shard and its pixabay and wikimedia pairs to the other: a picture served
    by openverse and again by pixabay (or resized, by wikimedia) lands in both shards.
    """
    n = 0
    for label in LABELS:
        for source in SOURCES:
            for _ in range(per_pair):
                n += 1
                server.add_file(f"/img/{n}.jpg", make_jpeg(10_000 + n))
                server.add_result(source, label, f"/img/{n}.jpg")
        for i in range(planted):
            body = make_jpeg(50_000 + n + i)
            for name, copy, source in (("a", body, "openverse"), ("b", body, "pixabay")):
                server.add_file(f"/img/{label}-exact{i}{name}.jpg", copy)
                server.add_result(source, label, f"/img/{label}-exact{i}{name}.jpg")
            near = make_jpeg(60_000 + n + i)
            for name, copy, source in (("a", near, "reddit"), ("b", near_copy(near), "wikimedia")):
                server.add_file(f"/img/{label}-near{i}{name}.jpg", copy)
                server.add_result(source, label, f"/img/{label}-near{i}{name}.jpg")


def crawl_command(server: LocalSource, out: Path, limit: int, *extra: str) -> list[str]:
    settings = {
        **server.settings(),
        "PIXABAY_API_KEY": PIXABAY_TEST_KEY,
        "AUTOTHROTTLE_ENABLED": "False",
        "DOWNLOAD_DELAY": "0",
        "CONCURRENT_REQUESTS": "16",
        "CONCURRENT_REQUESTS_PER_DOMAIN": "16",
    }
    command = [sys.executable, "-m", "cgan.scraping", "--labels", ",".join(LABELS)]
    command += ["--limit", str(limit), "--out", str(out), "--min-size", "64", "--quiet"]
    for key, value in settings.items():
        command += ["-s", f"{key}={value}"]
    return [*command, *extra]


def timed(commands: list[list[str]]) -> list[float]:
    """Run the commands side by side; each one's wall seconds."""
    start = time.perf_counter()
    pipe = subprocess.PIPE
    procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=pipe) for c in commands]
    ends: dict[int, float] = {}
    while len(ends) < len(procs):
        for i, proc in enumerate(procs):
            if i not in ends and proc.poll() is not None:
                ends[i] = time.perf_counter() - start
                if proc.returncode != 0:
                    raise SystemExit(proc.stderr.read().decode()[-3000:])
        time.sleep(0.02)
    return [ends[i] for i in range(len(procs))]


def identities(rows: list[dict], label: str) -> set[str]:
    """The pictures a label kept: a planted copy counts as its group, whichever survived."""
    names = {r["url"].rsplit("/", 1)[1] for r in rows if r["label"] == label}
    return {name.removesuffix(".jpg").rstrip("ab") if "-" in name else name for name in names}


def crawl_seconds(out: Path) -> float:
    """Scrapy's own elapsed time (no interpreter or Scrapy start), from OUT/crawl.log."""
    log = (out / "crawl.log").read_text()
    return max(float(x) for x in re.findall(r"'elapsed_time_seconds': ([0-9.]+)", log))


def manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def build(srcs: list[Path], out: Path) -> tuple[dict, float]:
    command = [sys.executable, "-m", "cgan.scraping", "build", "--src", *map(str, srcs)]
    command += ["--out", str(out), "--size", "32", "--quiet"]
    (seconds,) = timed([command])
    return json.loads((out / "report.json").read_text()), seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-pair", type=int, default=15, help="pictures per (label, source)")
    parser.add_argument("--planted", type=int, default=2, help="cross-shard copies per label")
    parser.add_argument("--limit", type=int, default=500, help="--limit of the crawls")
    args = parser.parse_args()

    with LocalSource(page_size=20) as server, tempfile.TemporaryDirectory() as tmp:
        serve(server, args.per_pair, args.planted)
        whole, shards = Path(tmp) / "whole", [Path(tmp) / "shard1", Path(tmp) / "shard2"]
        (one_s,) = timed([crawl_command(server, whole, args.limit)])
        two_s = timed(
            [
                crawl_command(server, out, args.limit, "--shard", f"{k}/2")
                for k, out in enumerate(shards, 1)
            ]
        )
        one_report, one_build_s = build([whole], Path(tmp) / "whole-32")
        two_report, two_build_s = build(shards, Path(tmp) / "merged-32")
        crawls = {
            "one": manifest(whole),
            "shard1": manifest(shards[0]),
            "shard2": manifest(shards[1]),
        }
        merged_rows = manifest(Path(tmp) / "merged-32")
        scrapy_s = [crawl_seconds(out) for out in (whole, *shards)]

    def kept(rows: list[dict], label: str) -> int:
        return sum(r["status"] == "kept" and r["label"] == label for r in rows)

    rows = [
        [
            label,
            kept(crawls["one"], label),
            one_report["classes"][label]["kept"],
            kept(crawls["shard1"], label),
            kept(crawls["shard2"], label),
            two_report["classes"][label]["kept"],
        ]
        for label in LABELS
    ]
    headers = [
        "label",
        "1 process kept",
        "built",
        "shard 1/2 kept",
        "shard 2/2 kept",
        "merged built",
    ]
    offered = len(LABELS) * (len(SOURCES) * args.per_pair + 4 * args.planted)
    print(
        f"served {offered} image URLs: {len(LABELS)} labels x {len(SOURCES)} sources x "
        f"{args.per_pair}, plus {args.planted} exact and {args.planted} near copies per label "
        f"across the shards; --limit {args.limit}"
    )
    print(format_table(headers, rows))
    one_reasons = Counter(r["reason"] for r in crawls["one"] if r["status"] != "kept")
    downloads = {name: len(rows) for name, rows in crawls.items()}
    print(
        f"one process: {downloads['one']} URLs decided, removed while crawling "
        f"{one_reasons['duplicate']} duplicate, {one_reasons['near_duplicate']} near_duplicate; "
        f"crawl {one_s:.1f}s wall ({scrapy_s[0]:.1f}s in Scrapy) + build {one_build_s:.1f}s"
    )
    removed = two_report["merge"]["removed"]
    print(
        f"two shards:  {downloads['shard1']} + {downloads['shard2']} URLs decided, removed by the "
        f"merge {removed.get('duplicate', 0)} duplicate, {removed.get('near_duplicate', 0)} "
        f"near_duplicate, {removed.get('over_limit', 0)} over_limit; crawl {max(two_s):.1f}s "
        f"wall (side by side: {two_s[0]:.1f}s and {two_s[1]:.1f}s; {scrapy_s[1]:.1f}s and "
        f"{scrapy_s[2]:.1f}s in Scrapy) + build {two_build_s:.1f}s"
    )
    totals = one_report["total_images"], two_report["total_images"]
    print(f"images in the dataset: one process {totals[0]}, two shards merged {totals[1]}")
    kept_one = [r for r in crawls["one"] if r["status"] == "kept"]
    same = all(identities(kept_one, label) == identities(merged_rows, label) for label in LABELS)
    print(f"same pictures per label as one process (a planted copy counts as its group): {same}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
