"""Unit tests for the pure parts: parsers, checks, dedupe, quota, manifest, paging."""

from __future__ import annotations

import io
import json
import random
from datetime import datetime, timezone
from email.utils import format_datetime

import pytest
from PIL import Image

from cgan.scraping.imagecheck import ImageLimits, ImageRejected, analyse, open_header
from cgan.scraping.items import parse_labels
from cgan.scraping.manifest import Manifest, is_transient, make_record
from cgan.scraping.middlewares import backoff_delay, parse_retry_after
from cgan.scraping.spiders.base import PageLedger
from cgan.scraping.spiders.openverse import format_licence, parse_openverse
from cgan.scraping.spiders.pixabay import parse_hits
from cgan.scraping.spiders.reddit import parse_listing
from cgan.scraping.spiders.wikimedia import parse_commons
from cgan.scraping.state import DedupIndex, LabelQuota
from tests.scraping.fake_apis import (
    HTML_PAGE,
    bomb_png,
    encode,
    make_image,
    make_jpeg,
    near_copy,
    truncated,
)

LIMITS = ImageLimits(min_width=64, min_height=64, max_bytes=2_000_000, max_pixels=4_000_000)


def _raw(image: Image.Image, body: bytes) -> bytes:
    return body


def _reason(body: bytes, content_type: str = "image/jpeg") -> str:
    with pytest.raises(ImageRejected) as info:
        analyse(body, content_type, LIMITS, _raw)
    return info.value.reason


# --- image checks ------------------------------------------------------------------


def test_good_image_facts():
    body = make_jpeg(1)
    facts = analyse(body, "image/jpeg", LIMITS, _raw)
    assert (facts.width, facts.height, facts.format) == (200, 160, "JPEG")
    assert len(facts.sha1) == 40 and len(facts.phash) == 16
    assert facts.store_bytes == body


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (HTML_PAGE, "image/jpeg", "not_an_image"),
        (HTML_PAGE, "text/html", "bad_content_type"),
        (b"", "image/jpeg", "not_an_image"),
        (truncated(make_jpeg(2, (400, 300))), "image/jpeg", "corrupt"),
        (bomb_png(), "image/png", "too_large"),  # Pillow's own bomb guard
        (bomb_png(3000, 3000), "image/png", "too_large"),  # ours, from the header
        (encode(make_image(3, (20, 20))), "image/jpeg", "too_small"),
        (encode(make_image(4, (500, 100))), "image/jpeg", "bad_aspect"),
        (b"x" * 2_000_001, "image/jpeg", "too_large"),
    ],
)
def test_rejections(body, content_type, reason):
    assert _reason(body, content_type) == reason


def test_declared_size_is_checked_before_decoding():
    # 3000x3000 declared, but the pixel data is 8x8: decoding would fail as
    # corrupt, so "too_large" proves the header check ran first.
    header = open_header(bomb_png(3000, 3000))
    assert header.size == (3000, 3000)
    assert _reason(bomb_png(3000, 3000), "image/png") == "too_large"


def test_exif_rotated_jpeg_is_stored_upright():
    image = make_image(5, (200, 120))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    buf = io.BytesIO()
    image.save(buf, "JPEG", exif=exif)
    facts = analyse(buf.getvalue(), "image/jpeg", LIMITS, lambda img, body: encode(img))
    assert (facts.width, facts.height) == (120, 200)
    assert Image.open(io.BytesIO(facts.store_bytes)).size == (120, 200)


# --- dedupe and quota -----------------------------------------------------------------


def test_dedupe_exact_and_near_across_labels():
    index = DedupIndex(max_distance=6)
    original = make_jpeg(10)
    facts = analyse(original, "image/jpeg", LIMITS, _raw)
    index.add(facts.sha1, facts.phash, "cat")
    assert index.find_exact(facts.sha1).label == "cat"
    near = analyse(near_copy(original), "image/jpeg", LIMITS, _raw)
    match = index.find_near(near.phash)
    assert match is not None and match.label == "cat" and match.distance <= 6
    other = analyse(make_jpeg(11), "image/jpeg", LIMITS, _raw)
    assert index.find_near(other.phash) is None
    index.remove(facts.sha1)
    assert index.find_exact(facts.sha1) is None and index.find_near(near.phash) is None


def test_distinct_test_pictures_are_not_near_duplicates():
    hashes = [analyse(make_jpeg(seed), "image/jpeg", LIMITS, _raw).phash for seed in range(60)]
    index = DedupIndex(max_distance=6)
    for seed, phash in enumerate(hashes):
        assert index.find_near(phash) is None, seed
        index.add(str(seed), phash, "x")


def test_quota_never_exceeds_limit_and_hands_slots_on():
    quota = LabelQuota()
    quota.set_limit("cat", 2)
    results: dict[int, bool] = {}
    for token in range(5):
        quota.acquire("cat", token).addCallback(lambda ok, t=token: results.__setitem__(t, ok))
    assert results == {0: True, 1: True}  # others wait
    quota.finish(0, kept=False)  # rejected: its slot goes to the next waiter
    assert results[2] is True
    quota.finish(1, kept=True)
    quota.finish(2, kept=True)  # full: remaining waiters give up
    assert results[3] is False and results[4] is False
    assert quota.kept["cat"] == 2 and quota.is_full("cat")
    quota.acquire("cat", 9).addCallback(lambda ok: results.__setitem__(9, ok))
    assert results[9] is False


def test_quota_close_releases_waiters():
    quota = LabelQuota()
    quota.set_limit("dog", 1)
    seen = []
    quota.acquire("dog", 1).addCallback(seen.append)
    quota.acquire("dog", 2).addCallback(seen.append)
    quota.close()
    assert seen == [True, False]


# --- manifest -------------------------------------------------------------------------


def test_manifest_trims_a_partial_last_line(tmp_path):
    path = tmp_path / "manifest.jsonl"
    good = make_record(url="http://x/1.jpg", label="cat", status="kept")
    path.write_text(json.dumps(good) + "\n" + '{"url": "http://x/2.jp', encoding="utf-8")
    manifest = Manifest(path)
    assert [r["url"] for r in manifest.load()] == ["http://x/1.jpg"]
    manifest.open()
    manifest.append(make_record(url="http://x/3.jpg", label="cat", status="rejected"))
    manifest.close()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["url"] for line in lines] == ["http://x/1.jpg", "http://x/3.jpg"]


def test_record_has_every_field_and_rejects_unknown():
    record = make_record(url="u", label="l", status="kept")
    assert list(record)[:3] == ["url", "label", "source"] and record["time"]
    with pytest.raises(KeyError):
        make_record(url="u", colour="red")
    assert is_transient("timeout") and is_transient("http_503") and not is_transient("http_404")


# --- retries ----------------------------------------------------------------------------


def test_retry_after_forms():
    assert parse_retry_after(b"7") == 7.0
    now = datetime(2030, 1, 1, tzinfo=timezone.utc)
    later = format_datetime(datetime(2030, 1, 1, 0, 0, 30, tzinfo=timezone.utc), usegmt=True)
    assert parse_retry_after(later, now=now.timestamp()) == pytest.approx(30)
    assert parse_retry_after("nonsense") is None and parse_retry_after(None) is None


def test_backoff_grows_and_is_capped():
    rng = random.Random(0)
    delays = [backoff_delay(n, base=1.0, cap=8.0, rng=rng) for n in range(6)]
    assert 0.5 <= delays[0] <= 1.0 and 2.0 <= delays[2] <= 4.0
    assert all(d <= 8.0 for d in delays)


# --- labels -------------------------------------------------------------------------------


def test_labels():
    specs = parse_labels(["cat,dog", "horse", "red_fox", "snow_cat=snow leopard", "cat"])
    assert [s.name for s in specs] == ["cat", "dog", "horse", "red_fox", "snow_cat"]
    assert specs[3].query == "red fox" and specs[4].query == "snow leopard"
    assert [s.name for s in parse_labels(["cat dog horse"])] == ["cat", "dog", "horse"]
    for bad in (["../x"], [","], ["a/b"], [".hidden"]):
        with pytest.raises(ValueError):
            parse_labels(bad)


# --- source parsers, on the documented response shapes ----------------------------------------


def test_openverse_parser():
    data = {
        "result_count": 45,
        "page_count": 3,
        "page_size": 20,
        "page": 1,
        "results": [
            {
                "id": "a",
                "title": "Cat",
                "url": "https://live.staticflickr.com/1/cat.jpg",
                "foreign_landing_url": "https://www.flickr.com/photos/x/1",
                "creator": "Ann",
                "license": "by-nc",
                "license_version": "2.0",
                "license_url": "https://creativecommons.org/licenses/by-nc/2.0/",
            },
            {"id": "b", "url": None},
        ],
    }
    page = parse_openverse(data, 1)
    assert [c.url for c in page.candidates] == ["https://live.staticflickr.com/1/cat.jpg"]
    assert page.candidates[0].licence == "CC BY-NC 2.0" and page.candidates[0].author == "Ann"
    assert page.next_cursor == {"page": 2}
    assert parse_openverse({**data, "page": 3}, 3).next_cursor is None
    assert format_licence("cc0", "1.0") == "CC0 1.0" and format_licence("pdm", "") == "PDM"


def test_commons_parser_dict_and_list_pages():
    info = {
        "url": "https://upload.wikimedia.org/a/ab/Cat.jpg",
        "thumburl": "https://upload.wikimedia.org/thumb/a/ab/Cat.jpg/1024px-Cat.jpg",
        "descriptionurl": "https://commons.wikimedia.org/wiki/File:Cat.jpg",
        "mime": "image/jpeg",
        "extmetadata": {
            "LicenseShortName": {"value": "CC BY-SA 4.0"},
            "Artist": {"value": '<a href="//commons.wikimedia.org/wiki/User:B">Bea &amp; Co</a>'},
        },
    }
    svg = {**info, "mime": "image/svg+xml", "thumburl": "x.svg"}
    data = {
        "continue": {"gsroffset": 50, "continue": "gsroffset||"},
        "query": {
            "pages": {
                "2": {"title": "File:B.svg", "index": 2, "imageinfo": [svg]},
                "1": {"title": "File:Cat.jpg", "index": 1, "imageinfo": [info]},
            }
        },
    }
    page = parse_commons(data)
    assert len(page.candidates) == 1
    cand = page.candidates[0]
    assert cand.url.endswith("1024px-Cat.jpg") and cand.author == "Bea & Co"
    assert cand.licence == "CC BY-SA 4.0" and cand.source_page.endswith("File:Cat.jpg")
    assert page.next_cursor == {"gsroffset": 50, "continue": "gsroffset||"}
    listed = {"batchcomplete": True, "query": {"pages": list(data["query"]["pages"].values())}}
    assert parse_commons(listed).next_cursor is None
    with pytest.raises(ValueError):
        parse_commons({"error": {"code": "maxlag", "info": "lagged"}})


def test_reddit_parser():
    posts = [
        {
            "post_hint": "image",
            "url": "https://i.redd.it/a.jpg",
            "author": "u1",
            "permalink": "/r/cats/comments/1/a/",
            "title": "A",
        },
        {
            "post_hint": "image",
            "url": "https://i.redd.it/nsfw.jpg",
            "over_18": True,
            "permalink": "/r/x/comments/2/b/",
        },
        {
            "is_self": True,
            "url": "https://www.reddit.com/r/cats/comments/3/",
            "post_hint": "self",
            "permalink": "/r/cats/comments/3/c/",
        },
        {
            "is_gallery": True,
            "url": "https://www.reddit.com/gallery/4",
            "author": "u4",
            "permalink": "/r/cats/comments/4/d/",
            "gallery_data": {"items": [{"media_id": "m2"}, {"media_id": "m1"}]},
            "media_metadata": {
                "m1": {"s": {"u": "https://preview.redd.it/m1.jpg?a=1&amp;b=2"}},
                "m2": {"s": {"u": "https://preview.redd.it/m2.jpg"}},
            },
        },
        {
            "post_hint": "link",
            "url": "https://example.org/article",
            "permalink": "/r/c/5/",
            "preview": {
                "images": [{"source": {"url": "https://preview.redd.it/p5.jpg?x=1&amp;y=2"}}]
            },
        },
    ]
    data = {
        "kind": "Listing",
        "data": {"after": "t3_abc", "children": [{"kind": "t3", "data": p} for p in posts]},
    }
    page = parse_listing(data, "https://www.reddit.com/search.json")
    assert [c.url for c in page.candidates] == [
        "https://i.redd.it/a.jpg",
        "https://preview.redd.it/m2.jpg",
        "https://preview.redd.it/m1.jpg?a=1&b=2",
        "https://preview.redd.it/p5.jpg?x=1&y=2",
    ]
    assert page.candidates[0].source_page == "https://www.reddit.com/r/cats/comments/1/a/"
    assert page.candidates[0].licence is None and page.next_cursor == {"after": "t3_abc"}
    assert len(parse_listing(data, "https://www.reddit.com/", allow_nsfw=True).candidates) == 5
    empty = {"data": {"after": None, "children": []}}
    assert parse_listing(empty, "https://www.reddit.com/").next_cursor is None


def test_pixabay_parser():
    hits = [
        {
            "id": 1,
            "webformatURL": "https://pixabay.com/get/a_640.jpg",
            "largeImageURL": "https://pixabay.com/get/a_1280.jpg",
            "user": "Rita",
            "pageURL": "https://pixabay.com/photos/cat-1/",
            "tags": "cat, pet",
        }
    ]
    page = parse_hits({"total": 900, "totalHits": 500, "hits": hits}, 1, 200, "largeImageURL")
    assert page.candidates[0].url.endswith("_1280.jpg") and page.candidates[0].author == "Rita"
    assert page.candidates[0].licence == "Pixabay Content License"
    assert page.next_cursor == {"page": 2}
    assert parse_hits({"totalHits": 500, "hits": hits}, 3, 200, "webformatURL").next_cursor is None


# --- paging ledger ----------------------------------------------------------------------------


def test_resume_point_is_first_page_with_undecided_items():
    ledger = PageLedger()
    first = ledger.open_page("cat", {"page": 1})
    ledger.add_item("cat", first, 1)
    ledger.add_item("cat", first, 2)
    ledger.close_page("cat", {"page": 2})
    second = ledger.open_page("cat", {"page": 2})
    ledger.add_item("cat", second, 3)
    ledger.close_page("cat", {"page": 3})
    assert ledger.resume_cursor("cat") == {"page": 1}
    ledger.settle(1, decided=True)
    ledger.settle(2, decided=True)
    assert ledger.resume_cursor("cat") == {"page": 2}
    ledger.settle(3, decided=False)  # e.g. dropped at Ctrl-C
    assert ledger.resume_cursor("cat") == {"page": 2}
    other = PageLedger()
    other.close_page("dog", None)
    assert other.resume_cursor("dog") is None


# --- state rebuilt from the manifest ------------------------------------------------------------


def test_state_from_manifest_counts_files_on_disk_and_removes_orphans(tmp_path):
    from cgan.scraping.state import CrawlState

    (tmp_path / "cat").mkdir()
    kept = tmp_path / "cat" / ("a" * 40 + ".jpg")
    kept.write_bytes(make_jpeg(1))
    orphan = tmp_path / "cat" / ("b" * 40 + ".jpg")  # saved, then a hard stop
    orphan.write_bytes(make_jpeg(2))
    mine = tmp_path / "cat" / "my-own-photo.jpg"  # not ours: left alone
    mine.write_bytes(make_jpeg(3))
    lines = [
        make_record(
            url="u1",
            label="cat",
            status="kept",
            sha1="a" * 40,
            phash="0" * 16,
            path=f"cat/{'a' * 40}.jpg",
        ),
        make_record(
            url="u2",
            label="cat",
            status="kept",
            sha1="c" * 40,
            phash="f" * 16,
            path=f"cat/{'c' * 40}.jpg",
        ),  # deleted by hand since
        make_record(url="u3", label="cat", status="rejected", reason="timeout"),
        make_record(url="u4", label="cat", status="rejected", reason="http_404"),
    ]
    (tmp_path / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))

    state = CrawlState(tmp_path, max_distance=6, retry_failed=True)
    assert state.quota.kept["cat"] == 1
    assert state.known_urls == {"u1", "u2", "u4"}  # the timeout gets another try
    assert state.dedupe.find_exact("c" * 40) is not None  # deleted, still never re-kept
    assert not orphan.exists() and kept.exists() and mine.exists()
    assert not state.claim_url("u1") and state.claim_url("u3") and not state.claim_url("u3")
    strict = CrawlState(tmp_path, max_distance=6)
    assert "u3" in strict.known_urls
