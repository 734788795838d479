"""End-to-end: Reddit's Data API, Openverse and Pixabay with keys, rate-limit pacing, budgets.

Every crawl runs the real CLI against the fake APIs on 127.0.0.1 (fake_apis.py), which
check the client credentials, expire and revoke tokens, announce rate limits and answer
429 past them. No real host is contacted.
"""

from __future__ import annotations

import base64
import json
import math
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.scraping.conftest import make_crawl_args, read_manifest, run_cli
from tests.scraping.fake_apis import (
    OPENVERSE_TEST_ID,
    OPENVERSE_TEST_SECRET,
    PIXABAY_TEST_KEY,
    REDDIT_TEST_ID,
    REDDIT_TEST_SECRET,
    FixedWindow,
    LocalSource,
    SlidingWindow,
    make_jpeg,
)
from tests.terminal import foreground_job

REDDIT_KEYS = {
    "REDDIT_CLIENT_ID": REDDIT_TEST_ID,
    "REDDIT_CLIENT_SECRET": REDDIT_TEST_SECRET,
    "REDDIT_USERNAME": "cgan_tester",
}
OPENVERSE_KEYS = {
    "OPENVERSE_CLIENT_ID": OPENVERSE_TEST_ID,
    "OPENVERSE_CLIENT_SECRET": OPENVERSE_TEST_SECRET,
}


@pytest.fixture
def image_host() -> Iterator[LocalSource]:
    """A second server for the images, so that they don't share the API's host limits."""
    with LocalSource() as host:
        yield host


def _results(
    api: LocalSource, images: LocalSource, source: str, labels: tuple[str, ...], per_label: int
) -> None:
    for n, label in enumerate(labels):
        for i in range(per_label):
            path = f"/img/{source}-{label}{i}.jpg"
            images.add_file(path, make_jpeg(1000 * (n + 1) + i))
            api.add_result(source, label, images.url(path))


def _crawl(
    api: LocalSource,
    out: Path,
    labels: str,
    limit: int,
    sources: str,
    env: dict[str, str] | None = None,
    extra: dict[str, str] | None = None,
):
    # DEBUG: the log holds every request Scrapy makes, and it must hold no secret; the
    # probe keeps every request the scheduler (and so JOBDIR) was given.
    probe = json.dumps({"tests.scraping.scheduler_probe.SchedulerProbe": 0})
    extra = {"LOG_LEVEL": "DEBUG", "EXTENSIONS": probe, **(extra or {})}
    args = make_crawl_args(api, labels, limit, out, extra) + ["--sources", sources, "--quiet"]
    return run_cli(args, env=env, timeout=120)


def _api_queries(api: LocalSource, path: str) -> list[dict[str, str]]:
    return [
        {k: v[-1] for k, v in parse_qs(urlsplit(r).query).items()}
        for r in api.requests
        if urlsplit(r).path == path
    ]


def assert_no_secret_written(out: Path, output: str, secrets: list[str]) -> None:
    """No file under OUT (manifest, crawl.log, summary, .jobs ...) nor the output has one."""
    files = [path for path in out.rglob("*") if path.is_file()]
    scheduled = out / ".jobs" / "scheduled.pickles"  # tests/scraping/scheduler_probe.py
    assert scheduled in files and scheduled.stat().st_size > 0  # the job folder too
    for secret in secrets:
        needle = secret.encode()
        for path in files:
            assert needle not in path.read_bytes(), f"{secret[:6]}... found in {path}"
        assert secret not in output


def _secrets(client_id: str, secret: str, tokens: list[str]) -> list[str]:
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    assert tokens, "the crawl should have got a token"
    return [secret, basic, *tokens]


# --- Reddit's Data API ----------------------------------------------------------------------


@pytest.mark.slow
def test_reddit_api_one_token_its_user_agent_and_no_secret_anywhere(
    local_source, image_host, tmp_path
):
    _results(local_source, image_host, "reddit", ("cat", "dog", "fox"), 9)
    local_source.api_errors["/reddit-oauth/search"] = [503]  # a retry copies a request
    out = tmp_path / "out"
    result = _crawl(local_source, out, "cat,dog,fox", 9, "reddit", env=REDDIT_KEYS)

    assert result.returncode == 0, result.stderr[-3000:]
    tokens = local_source.reddit_tokens
    assert tokens.requests == 1  # three labels asked at once, one token
    assert local_source.count("/reddit/search.json") == 0  # not the public listing
    assert len(_api_queries(local_source, "/reddit-oauth/search")) == 10  # 9 pages + 1 retry
    agents = {agent for _, agent in local_source.user_agents}
    assert len(agents) == 1
    agent = agents.pop()
    assert agent.startswith("python:cgan-label2image:") and agent.endswith("(by /u/cgan_tester)")
    records = read_manifest(out)
    assert Counter(r["label"] for r in records if r["status"] == "kept") == {
        "cat": 9,
        "dog": 9,
        "fox": 9,
    }
    assert records[0]["source_page"].startswith(local_source.url("/r/pics/comments/"))
    output = result.stdout + result.stderr
    assert_no_secret_written(
        out, output, _secrets(REDDIT_TEST_ID, REDDIT_TEST_SECRET, tokens.issued)
    )


@pytest.mark.slow
def test_reddit_token_refused_mid_crawl_is_renewed_and_the_page_sent_again(
    local_source, image_host, tmp_path
):
    _results(local_source, image_host, "reddit", ("cat", "dog"), 12)
    local_source.reddit_tokens.uses = 3  # revoked early, though it claims an hour
    out = tmp_path / "out"
    result = _crawl(local_source, out, "cat,dog", 12, "reddit", env=REDDIT_KEYS)

    assert result.returncode == 0, result.stderr[-3000:]
    tokens = local_source.reddit_tokens
    pages = _api_queries(local_source, "/reddit-oauth/search")
    assert tokens.refused_tokens >= 1
    # One new token per refused one: two pages refused together share the renewal.
    assert 2 <= tokens.requests <= tokens.refused_tokens + 1
    assert len(pages) == 8 + tokens.refused_tokens  # every refused page was sent once more
    kept = Counter(r["label"] for r in read_manifest(out) if r["status"] == "kept")
    assert kept == {"cat": 12, "dog": 12}
    assert "failed" not in result.stderr
    output = result.stdout + result.stderr
    assert_no_secret_written(
        out, output, _secrets(REDDIT_TEST_ID, REDDIT_TEST_SECRET, tokens.issued)
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        (
            lambda tokens: setattr(tokens, "revoked", True),
            "the endpoint refused the credentials (HTTP 401, invalid_client); "
            "check REDDIT_CLIENT_ID and REDDIT_CLIENT_SECRET",
        ),
        (
            lambda tokens: setattr(tokens, "answer", b"<html>maintenance</html>"),
            "the endpoint answered something that is not a JSON object",
        ),
    ],
    ids=["revoked-secret", "malformed-answer"],
)
def test_a_refused_or_broken_token_fails_reddit_in_one_line_and_others_go_on(
    local_source, image_host, tmp_path, setup, reason
):
    _results(local_source, image_host, "reddit", ("cat", "dog"), 3)
    _results(local_source, image_host, "wikimedia", ("cat", "dog"), 3)
    setup(local_source.reddit_tokens)
    out = tmp_path / "out"
    result = _crawl(local_source, out, "cat,dog", 3, "reddit,wikimedia", env=REDDIT_KEYS)

    assert result.returncode == 0, result.stderr[-3000:]
    host = urlsplit(local_source.base).netloc
    reddit = [line for line in result.stderr.splitlines() if "reddit" in line]
    assert reddit == [f"cgan-scrape: reddit failed: access token from {host}: {reason}"]
    assert local_source.reddit_tokens.requests == 1  # not asked again for every page
    assert local_source.count("/reddit-oauth/search") == 0
    sources = json.loads((out / "summary.json").read_text())["sources"]
    assert sources["reddit"]["status"] == "failed"
    assert sources["wikimedia"]["status"] == "finished"
    kept = Counter(r["source"] for r in read_manifest(out) if r["status"] == "kept")
    assert kept == {"wikimedia": 6}
    assert REDDIT_TEST_SECRET not in (out / "crawl.log").read_text()


def test_reddit_without_keys_stays_on_the_public_listing_under_robots_txt(
    local_source, image_host, tmp_path
):
    local_source.robots += "Disallow: /reddit/\n"  # what www.reddit.com says since 2024
    _results(local_source, image_host, "reddit", ("cat",), 3)
    result = _crawl(local_source, tmp_path / "out", "cat", 3, "reddit")
    assert local_source.count("/reddit/search.json") == 0
    assert local_source.reddit_tokens.requests == 0
    assert "robots.txt forbids it" in result.stderr


# --- Pixabay's API key ----------------------------------------------------------------------


@pytest.mark.slow
def test_pixabay_key_reaches_the_api_and_nothing_else(local_source, image_host, tmp_path):
    assert len(PIXABAY_TEST_KEY) >= 8  # the log filter ignores shorter values
    _results(local_source, image_host, "pixabay", ("cat", "dog"), 6)  # 2 pages of 3 each
    local_source.api_errors["/pixabay/api/"] = [503]  # a retry copies a request
    out = tmp_path / "out"
    env = {"PIXABAY_API_KEY": PIXABAY_TEST_KEY}
    extra = {"PIXABAY_PAGE_SIZE": "3"}
    result = _crawl(local_source, out, "cat,dog", 6, "pixabay", env=env, extra=extra)

    assert result.returncode == 0, result.stderr[-3000:]
    queries = _api_queries(local_source, "/pixabay/api/")
    assert len(queries) == 5  # 4 pages + 1 retry, every one with the key (the API checks it)
    assert {q.get("key") for q in queries} == {PIXABAY_TEST_KEY}
    assert image_host.requests and not any(PIXABAY_TEST_KEY in p for p in image_host.requests)
    kept = Counter(r["label"] for r in read_manifest(out) if r["status"] == "kept")
    assert kept == {"cat": 6, "dog": 6}
    log = (out / "crawl.log").read_text()
    assert "Crawled (200) <GET " + local_source.url("/pixabay/api/?q=") in log
    assert "key=" not in log  # taken off the URLs, not just blanked by the log filter
    assert_no_secret_written(out, result.stdout + result.stderr, [PIXABAY_TEST_KEY])


# --- pacing by rate-limit headers -----------------------------------------------------------


@pytest.mark.slow
def test_rate_limit_headers_pace_the_crawl_so_no_429_is_ever_answered(
    local_source, image_host, tmp_path
):
    _results(local_source, image_host, "reddit", ("cat", "dog"), 12)  # 4 pages each
    settings = {"RATELIMIT_MARGIN": "0.1"}

    # Without the pacing the same crawl runs into the limit: the test can tell.
    local_source.reddit_limit = FixedWindow(limit=5, window=1.0)
    unpaced = _crawl(
        local_source,
        tmp_path / "unpaced",
        "cat,dog",
        12,
        "reddit",
        env=REDDIT_KEYS,
        extra={**settings, "RATELIMIT_ENABLED": "False"},
    )
    assert local_source.reddit_limit.refused > 0, unpaced.stderr[-2000:]
    assert "reddit stopped: the API answered HTTP 429" in unpaced.stderr

    local_source.reddit_limit = FixedWindow(limit=5, window=1.0)
    before = len(_api_queries(local_source, "/reddit-oauth/search"))
    out = tmp_path / "paced"
    result = _crawl(local_source, out, "cat,dog", 12, "reddit", env=REDDIT_KEYS, extra=settings)

    assert result.returncode == 0, result.stderr[-3000:]
    assert local_source.reddit_limit.refused == 0
    assert len(_api_queries(local_source, "/reddit-oauth/search")) - before == 8
    kept = Counter(r["label"] for r in read_manifest(out) if r["status"] == "kept")
    assert kept == {"cat": 12, "dog": 12}
    assert "waits" in (out / "crawl.log").read_text()  # it did have to wait


# --- Openverse ------------------------------------------------------------------------------


def _age_budgets(out: Path, seconds: float) -> None:
    """Let `seconds` pass for the saved budgets (their buckets are 1/100 of a window)."""
    path = out / ".jobs" / "budgets.json"
    data = json.loads(path.read_text())
    for entry in data.values():
        for window, counts in entry["windows"].items():
            shift = math.ceil(seconds / (float(window) / 100))
            entry["windows"][window] = {str(int(i) - shift): n for i, n in counts.items()}
        entry["last"] -= seconds
    path.write_text(json.dumps(data))


@pytest.mark.slow
def test_openverse_anonymous_daily_budget_stops_the_source_and_a_later_run_resumes(
    local_source, image_host, tmp_path
):
    _results(local_source, image_host, "openverse", ("cat", "dog"), 9)  # 3 pages each
    local_source.openverse_anonymous_limit = SlidingWindow(limit=3, window=86400)
    out = tmp_path / "out"
    budget = {"OPENVERSE_ANONYMOUS_LIMITS": "100/1s,3/day", "RATELIMIT_MAX_WAIT": "5"}

    def crawl():
        return _crawl(local_source, out, "cat,dog", 9, "openverse", extra=budget)

    first = crawl()
    assert first.returncode == 0, first.stderr[-3000:]
    message = (
        "cgan-scrape: openverse stopped: the anonymous limit of 3 requests per day is spent "
        "(OPENVERSE_CLIENT_ID and OPENVERSE_CLIENT_SECRET raise it); "
        "run the same command again after "
    )
    lines = [line for line in first.stderr.splitlines() if "openverse" in line]
    assert (
        len(lines) == 1 and lines[0].startswith(message) and lines[0].endswith(" UTC to continue")
    )
    assert len(_api_queries(local_source, "/openverse/v1/images/")) == 3
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sources"]["openverse"]["status"] == "stopped"
    assert summary["sources"]["openverse"]["resume_after"].endswith("UTC")
    assert "openverse stopped at a spent limit" in first.stdout
    assert (out / ".jobs" / "budgets.json").is_file()

    second = crawl()  # the same day: not a single request
    assert second.returncode == 0, second.stderr[-3000:]
    assert any(line.startswith(message) for line in second.stderr.splitlines())
    assert len(_api_queries(local_source, "/openverse/v1/images/")) == 3

    _age_budgets(out, 86400 + 900)  # the next day, for us and for the server
    local_source.openverse_anonymous_limit.history.clear()
    third = crawl()
    assert third.returncode == 0, third.stderr[-3000:]
    assert "stopped" not in third.stderr
    queries = _api_queries(local_source, "/openverse/v1/images/")
    assert len(queries) == 6
    assert sorted((q["q"], q["page"]) for q in queries) == [
        (label, str(page)) for label in ("cat", "dog") for page in (1, 2, 3)
    ]  # carried on from where it stopped; no page asked twice
    assert all(int(q["page_size"]) <= 20 for q in queries)
    assert local_source.openverse_anonymous_limit.refused == 0
    kept = Counter(r["label"] for r in read_manifest(out) if r["status"] == "kept")
    assert kept == {"cat": 9, "dog": 9}


@pytest.mark.slow
def test_openverse_with_keys_uses_expiring_tokens_and_larger_pages(
    local_source, image_host, tmp_path
):
    _results(local_source, image_host, "openverse", ("cat", "dog"), 30)
    local_source.openverse_tokens.lifetime = 1.0  # expires_in 1: renewed during the crawl
    local_source.api_delay = 0.3
    local_source.openverse_anonymous_limit = SlidingWindow(limit=1, window=60)  # not for us
    out = tmp_path / "out"
    extra = {"OPENVERSE_PAGE_SIZE": "50", "OPENVERSE_REGISTERED_PAGE_SIZE": "6"}
    result = _crawl(local_source, out, "cat,dog", 30, "openverse", env=OPENVERSE_KEYS, extra=extra)

    assert result.returncode == 0, result.stderr[-3000:]
    tokens = local_source.openverse_tokens
    assert tokens.requests >= 2  # a new token once the first expired
    queries = _api_queries(local_source, "/openverse/v1/images/")
    assert {q["page_size"] for q in queries} == {"6"}
    assert len(queries) == 10 + tokens.refused_tokens
    kept = Counter(r["label"] for r in read_manifest(out) if r["status"] == "kept")
    assert kept == {"cat": 30, "dog": 30}
    assert local_source.openverse_anonymous_limit.refused == 0
    output = result.stdout + result.stderr
    assert_no_secret_written(
        out, output, _secrets(OPENVERSE_TEST_ID, OPENVERSE_TEST_SECRET, tokens.issued)
    )


@pytest.mark.slow
def test_ctrl_c_during_a_rate_limit_wait_stops_at_once(local_source, image_host, tmp_path):
    _results(local_source, image_host, "openverse", ("cat", "dog"), 3)
    out = tmp_path / "out"
    extra = {"OPENVERSE_ANONYMOUS_LIMITS": "1/60s", "RATELIMIT_MAX_WAIT": "120"}
    args = make_crawl_args(local_source, "cat,dog", 3, out, extra)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cgan.scraping", *args, "--sources", "openverse", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=foreground_job,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(read_manifest(out)) < 3:
        time.sleep(0.1)  # one label's page and images are done; the other waits 60 s
    assert len(_api_queries(local_source, "/openverse/v1/images/")) == 1
    proc.send_signal(signal.SIGINT)
    start = time.monotonic()
    _, stderr = proc.communicate(timeout=30)
    assert time.monotonic() - start < 15  # not the 60 s the wait had left
    assert proc.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr
    records = read_manifest(out)
    assert len(records) == 3 and all(r["status"] == "kept" for r in records)
    assert len(_api_queries(local_source, "/openverse/v1/images/")) == 1
