"""End-to-end: sources that cannot be reached fail clearly, one line each, and alone.

An unreachable source is a closed port on 127.0.0.1 (connection refused) or a
listening socket that never answers (timeout); no other host is contacted.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.scraping.fake_apis import make_jpeg


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def _silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


def _sources(out: Path) -> dict[str, dict]:
    return json.loads((out / "summary.json").read_text())["sources"]


@pytest.mark.slow
def test_no_source_reachable_fails_with_one_line_per_source(
    cli, crawl_args, local_source, tmp_path
):
    closed = _closed_port()
    out = tmp_path / "out"
    with _silent_port() as silent:
        urls = {
            "OPENVERSE_API_URL": f"http://127.0.0.1:{closed}/v1/images/",
            "WIKIMEDIA_API_URL": f"http://127.0.0.1:{silent}/w/api.php",
        }
        args = crawl_args(local_source, "cat,dog", 5, out, urls)
        result = cli(args + ["--sources", "openverse,wikimedia"])

    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert all(line.startswith("cgan-scrape: ") for line in lines), lines  # no Scrapy log
    openverse = [line for line in lines if "openverse" in line]
    wikimedia = [line for line in lines if "wikimedia" in line]
    assert openverse == [f"cgan-scrape: openverse failed: connection refused (127.0.0.1:{closed})"]
    assert wikimedia == [f"cgan-scrape: wikimedia failed: timed out (127.0.0.1:{silent})"]
    assert "nothing was gathered" in lines[-1] and str(out / "crawl.log") in lines[-1]

    log = (out / "crawl.log").read_text()
    assert "DownloadConnectionRefusedError" in log and "DownloadTimeoutError" in log
    assert "search for 'dog' failed" in log  # per-label detail: the log file only
    assert _sources(out) == {
        "openverse": {
            "status": "failed",
            "reason": f"connection refused (127.0.0.1:{closed})",
            "pages": 0,
        },
        "wikimedia": {"status": "failed", "reason": f"timed out (127.0.0.1:{silent})", "pages": 0},
    }
    assert "ran out" not in result.stdout and "openverse, wikimedia failed" in result.stdout


@pytest.mark.slow
def test_one_source_down_the_others_still_count(cli, crawl_args, local_source, manifest, tmp_path):
    for i in range(3):
        local_source.add_file(f"/img/w{i}.jpg", make_jpeg(50 + i))
        local_source.add_result("wikimedia", "cat", f"/img/w{i}.jpg")
    # A search URL that is a local file: never read, the source is skipped.
    local_source.add_file("/img/r.jpg", make_jpeg(60))
    listing = tmp_path / "search.json"
    post = {"url": local_source.url("/img/r.jpg"), "post_hint": "image", "permalink": "/r/x/1/"}
    listing.write_text(json.dumps({"data": {"children": [{"kind": "t3", "data": post}]}}))
    closed = _closed_port()
    out = tmp_path / "out"
    urls = {
        "OPENVERSE_API_URL": f"http://127.0.0.1:{closed}/v1/images/",
        "REDDIT_SEARCH_URL": listing.as_uri(),
    }
    args = crawl_args(local_source, "cat", 3, out, urls)
    result = cli(args + ["--sources", "openverse,wikimedia,reddit"])

    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert [line for line in lines if "openverse" in line] == [
        f"cgan-scrape: openverse failed: connection refused (127.0.0.1:{closed})"
    ]
    assert [line for line in lines if "reddit" in line] == [
        f"cgan-scrape: reddit failed: skipped: REDDIT_SEARCH_URL={listing.as_uri()!r} "
        "is not usable: scheme 'file' is not http or https"
    ]
    assert not any("nothing was gathered" in line for line in lines)
    sources = _sources(out)
    assert sources["openverse"]["status"] == sources["reddit"]["status"] == "failed"
    assert sources["wikimedia"] == {"status": "finished", "reason": None, "pages": 1}
    kept = [r for r in manifest(out) if r["status"] == "kept"]
    assert {r["source"] for r in kept} == {"wikimedia"} and len(kept) == 3
    assert len(list((out / "cat").glob("*.jpg"))) == 3
    assert local_source.hits["/img/r.jpg"] == 0
