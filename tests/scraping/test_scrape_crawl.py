"""End-to-end crawls through the real CLI against the local fake APIs."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from PIL import Image

from tests.scraping.fake_apis import (
    HTML_PAGE,
    LocalSource,
    bomb_png,
    encode,
    make_image,
    make_jpeg,
    near_copy,
    truncated,
)
from tests.terminal import foreground_job

ALL = "openverse,wikimedia,reddit,pixabay"


def _picture(source: LocalSource, name: str, seed: int) -> bytes:
    body = make_jpeg(seed)
    source.add_file(f"/img/{name}.jpg", body)
    return body


def _populate(source: LocalSource) -> tuple[dict[str, set[str]], dict[str, str], list[set[str]]]:
    """Good pictures per label, expected rejection per path, and copy groups."""
    good: dict[str, set[str]] = {"cat": set(), "dog": set()}
    for label, base in (("cat", 100), ("dog", 200)):
        for i in range(8):
            name = f"{label}{i}"
            _picture(source, name, base + i)
            good[label].add(f"/img/{name}.jpg")
    cat0 = source.files["/img/cat0.jpg"].body
    cat1 = source.files["/img/cat1.jpg"].body
    source.add_file("/img/cat0-copy.jpg", cat0)  # same bytes, other URL
    source.add_file("/img/cat1-small.jpg", near_copy(cat1))  # resized + recompressed
    source.add_file("/img/missing.jpg", b"", status=404)
    source.add_file("/img/broken.jpg", b"", status=500)
    source.add_file("/img/slow.jpg", make_jpeg(7), delay=5.0)
    source.add_file("/img/fake.jpg", HTML_PAGE, content_type="image/jpeg")
    source.add_file("/img/page.jpg", HTML_PAGE, content_type="text/html; charset=utf-8")
    source.add_file("/img/cut.jpg", truncated(make_jpeg(8, (400, 300))))
    source.add_file("/img/bomb.png", bomb_png(), content_type="image/png")
    source.add_file("/img/big.png", bomb_png(9000, 9000), content_type="image/png")
    source.add_file("/img/tiny.jpg", encode(make_image(9, (16, 16))))
    source.add_file("/img/wide.jpg", encode(make_image(10, (600, 100))))
    source.add_file("/private/cat.jpg", make_jpeg(11))
    source.add_file("/img/huge.jpg", b"\xff\xd8\xff" + bytes(1_500_000))  # > IMAGE_MAX_BYTES
    source.add_file("/img/banned.jpg", make_jpeg(13), throttle_first=99, retry_after="3600")
    throttled = make_jpeg(12)
    source.add_file("/img/throttled.jpg", throttled, throttle_first=1, retry_after="1")
    good["cat"].add("/img/throttled.jpg")
    rejected = {
        "/img/missing.jpg": "http_404",
        "/img/broken.jpg": "http_500",
        "/img/slow.jpg": "timeout",
        "/img/fake.jpg": "not_an_image",
        "/img/page.jpg": "bad_content_type",
        "/img/cut.jpg": "corrupt",
        "/img/bomb.png": "too_large",
        "/img/big.png": "too_large",
        "/img/tiny.jpg": "too_small",
        "/img/wide.jpg": "bad_aspect",
        "/private/cat.jpg": "robots",
        "/img/huge.jpg": "too_large",
        "/img/banned.jpg": "http_429",  # Retry-After beyond RETRY_AFTER_MAX: give up at once
    }
    cat_paths = sorted(good["cat"]) + ["/img/cat0-copy.jpg", "/img/cat1-small.jpg", *rejected]
    dog_paths = sorted(good["dog"])
    sources = ALL.split(",")
    for i, path in enumerate(cat_paths):
        source.add_result(sources[i % 4], "cat", path)
    for i, path in enumerate(dog_paths):
        source.add_result(sources[(i + 1) % 4], "dog", path)
    groups = [{"/img/cat0.jpg", "/img/cat0-copy.jpg"}, {"/img/cat1.jpg", "/img/cat1-small.jpg"}]
    return good, rejected, groups


@pytest.mark.slow
def test_full_crawl_keeps_good_images_and_records_every_rejection(
    local_source, crawl, manifest, tmp_path
):
    good, rejected, groups = _populate(local_source)
    out = tmp_path / "mine"
    limits = {"IMAGE_MAX_PIXELS": "4000000", "IMAGE_MAX_BYTES": "1000000"}
    result = crawl("cat,dog", 50, out, sources=ALL, extra=limits)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr

    records = manifest(out)
    by_path = {r["url"].replace(local_source.base, ""): r for r in records}
    offered = {e.path for entries in local_source.results.values() for e in entries}
    assert set(by_path) == offered, "every offered URL gets exactly one manifest line"
    assert len(records) == len(by_path)

    for path, reason in rejected.items():
        assert by_path[path]["status"] == "rejected", path
        assert by_path[path]["reason"] == reason, (path, by_path[path])

    members = set().union(*groups)
    for group, reason in zip(groups, ("duplicate", "near_duplicate"), strict=True):
        statuses = sorted(by_path[p]["status"] for p in group)
        assert statuses == ["kept", "rejected"], group  # one copy kept, the other named
        loser = next(by_path[p] for p in group if by_path[p]["status"] == "rejected")
        assert loser["reason"] == reason

    for label, paths in good.items():
        kept = {p for p, r in by_path.items() if r["status"] == "kept" and r["label"] == label}
        assert kept - members == paths - members
        files = sorted((out / label).glob("*.jpg"))
        assert len(files) == len(kept)
        for record in (by_path[p] for p in kept):
            assert record["path"] == f"{label}/{record['sha1']}.jpg"
            assert record["source"] in ALL.split(",")
            assert record["author"] and record["source_page"]
            assert record["width"] >= 64 and len(record["phash"]) == 16
            with Image.open(out / record["path"]) as image:
                assert image.size == (record["width"], record["height"])

    ov = next(r for r in records if r["source"] == "openverse" and r["status"] == "kept")
    assert ov["licence"] == "CC BY-SA 2.0"
    wm = next(r for r in records if r["source"] == "wikimedia" and r["status"] == "kept")
    assert wm["licence"] == "CC BY-SA 4.0" and "<" not in wm["author"]

    # Good images are fetched once; the 429 once more, after its Retry-After.
    for paths in good.values():
        for path in paths - {"/img/throttled.jpg"}:
            assert local_source.hits[path] == 1, path
    times = local_source.hit_times["/img/throttled.jpg"]
    assert len(times) == 2 and times[1] - times[0] >= 0.9
    assert local_source.hits["/private/cat.jpg"] == 0, "robots.txt must be obeyed"
    assert local_source.hits["/img/banned.jpg"] == 1
    assert local_source.hits["/robots.txt"] >= 1

    assert "cat" in result.stdout and "ran out" in result.stdout
    assert (out / "summary.json").is_file()


@pytest.mark.slow
def test_limit_is_exact_and_paging_stops(local_source, crawl, manifest, tmp_path):
    for i in range(30):
        path = f"/img/c{i}.jpg"
        if i % 3 == 1:
            local_source.add_file(path, b"", status=404)
        else:
            local_source.add_file(path, make_jpeg(300 + i))
        local_source.add_result("openverse", "cat", path)
    out = tmp_path / "limited"
    result = crawl("cat", 4, out, sources="openverse")
    assert result.returncode == 0
    records = manifest(out)
    assert sum(r["status"] == "kept" for r in records) == 4
    assert len(list((out / "cat").glob("*.jpg"))) == 4
    good_hits = sum(n for p, n in local_source.hits.items() if p.startswith("/img/") and n)
    good_hits -= sum(local_source.hits[f"/img/c{i}.jpg"] for i in range(1, 30, 3))
    assert good_hits == 4, "never download a good image that cannot be kept"
    assert local_source.hits["/openverse/v1/images/"] <= 3, "stop paging once the label is full"
    assert "note:" not in result.stdout


@pytest.mark.slow
def test_resume_downloads_nothing_twice_and_dedupes_across_labels(
    local_source, crawl, manifest, tmp_path
):
    for i in range(12):
        _picture(local_source, f"cat{i}", 400 + i)
        local_source.add_result("openverse", "cat", f"/img/cat{i}.jpg")
    out = tmp_path / "resumable"
    first = crawl("cat", 3, out, sources="openverse")
    assert first.returncode == 0
    first_hits = Counter(local_source.hits)
    kept_first = [r for r in manifest(out) if r["status"] == "kept"]
    assert len(kept_first) == 3

    # A second label whose results copy cat pictures already kept.
    kept_url = kept_first[0]["url"].replace(local_source.base, "")
    local_source.add_file("/img/dog-copy.jpg", local_source.files[kept_url].body)
    local_source.add_file("/img/dog-near.jpg", near_copy(local_source.files[kept_url].body))
    for path in ("/img/dog-copy.jpg", "/img/dog-near.jpg"):
        local_source.add_result("openverse", "dog", path)
    second = crawl("cat,dog", 7, out, sources="openverse")
    assert second.returncode == 0, second.stderr[-3000:]

    records = manifest(out)
    urls = [r["url"] for r in records]
    assert len(urls) == len(set(urls)), "no URL recorded twice"
    for path, count in local_source.hits.items():
        if path.startswith("/img/"):
            assert count == 1, f"{path} downloaded {count} times"
    assert sum(r["status"] == "kept" and r["label"] == "cat" for r in records) == 7
    dog = {r["url"].replace(local_source.base, ""): r for r in records if r["label"] == "dog"}
    assert dog["/img/dog-copy.jpg"]["reason"] == "duplicate"
    assert dog["/img/dog-near.jpg"]["reason"] == "near_duplicate"
    # The cursor was kept in OUT/.jobs: page 1 of "cat" is not fetched again.
    cat_first_pages = [
        r for r in local_source.requests if r.startswith("/openverse/") and "q=cat&page=1&" in r
    ]
    assert len(cat_first_pages) == 1
    assert first_hits["/robots.txt"] >= 1


@pytest.mark.slow
def test_ctrl_c_leaves_a_consistent_manifest_and_resumes(
    local_source, manifest, tmp_path, crawl_args, cli
):
    for i in range(12):
        _picture(local_source, f"cat{i}", 500 + i)
        local_source.add_result("openverse", "cat", f"/img/cat{i}.jpg")
    local_source.image_delay = 0.4
    out = tmp_path / "interrupted"
    args = crawl_args(local_source, "cat", 12, out, {"CONCURRENT_REQUESTS": "2"})
    proc = subprocess.Popen(
        [sys.executable, "-m", "cgan.scraping", *args, "--sources", "openverse"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=foreground_job,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(manifest(out)) < 2:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr
    before = manifest(out)  # parses every line
    assert 2 <= len(before) < 12
    assert len({r["url"] for r in before}) == len(before)
    assert len(list((out / "cat").glob("*.jpg"))) == sum(r["status"] == "kept" for r in before)

    local_source.image_delay = 0
    hits_before = Counter(local_source.hits)
    result = cli(args + ["--sources", "openverse"])
    assert result.returncode == 0, result.stderr[-3000:]
    for record in before:
        path = record["url"].replace(local_source.base, "")
        assert local_source.hits[path] == hits_before[path], f"{path} fetched again"
    after = manifest(out)
    assert sum(r["status"] == "kept" for r in after) == 12
    assert len({r["url"] for r in after}) == len(after)


@pytest.mark.slow
def test_pixabay_without_key_is_skipped_with_a_message(local_source, tmp_path, cli, crawl_args):
    local_source.add_file("/img/a.jpg", make_jpeg(1))
    local_source.add_result("openverse", "cat", "/img/a.jpg")
    args = crawl_args(local_source, "cat", 1, tmp_path / "o") + ["--sources", "openverse,pixabay"]
    result = cli(args)
    assert result.returncode == 0
    assert "pixabay skipped: set PIXABAY_API_KEY" in result.stderr
    assert local_source.hits["/pixabay/api/"] == 0
    assert (tmp_path / "o" / "cat").is_dir()


@pytest.mark.slow
def test_robots_txt_still_applies_to_reddit_listings(local_source, crawl, tmp_path):
    local_source.robots += "Disallow: /reddit/\n"
    local_source.add_file("/img/r.jpg", make_jpeg(20))
    local_source.add_result("reddit", "cat", "/img/r.jpg")
    result = crawl("cat", 2, tmp_path / "r", sources="reddit,wikimedia")
    assert result.returncode == 0
    assert "search for 'cat' failed (robots.txt forbids it)" in result.stderr
    assert local_source.hits["/reddit/search.json"] == 0
    assert local_source.hits["/commons/w/api.php"] == 1  # official API: exempt


@pytest.mark.slow
def test_robots_txt_holds_for_a_burst_of_first_requests(local_source, crawl, manifest, tmp_path):
    # Six downloads start together while robots.txt is still on its way; every
    # one of them must wait for it (Scrapy's own middleware lets all but one through).
    local_source.robots_delay = 0.5
    for i in range(6):
        path = f"/private/p{i}.jpg" if i % 2 else f"/img/ok{i}.jpg"
        local_source.add_file(path, make_jpeg(600 + i))
        local_source.add_result("wikimedia", "cat", path)
    local_source.page_size = 6
    result = crawl("cat", 10, tmp_path / "burst", sources="wikimedia")
    assert result.returncode == 0
    reasons = {
        r["url"].replace(local_source.base, ""): r["reason"] for r in manifest(tmp_path / "burst")
    }
    assert all(reasons[f"/private/p{i}.jpg"] == "robots" for i in (1, 3, 5)), reasons
    assert local_source.count("/private/") == 0
