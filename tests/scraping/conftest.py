"""Fixtures for the gather-stage tests: a local fake of the image APIs and a CLI runner.

Crawls run in a subprocess (the real `cgan-scrape` CLI) because Twisted's
reactor can start only once per process. Nothing here touches the network
beyond 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.scraping.fake_apis import PIXABAY_TEST_KEY, LocalSource

REPO = Path(__file__).resolve().parents[2]

# The user's keys, which a test crawl must never see unless the test gives them.
KEY_VARIABLES = (
    "PIXABAY_API_KEY",
    "REDDIT_CLIENT_ID",
    "REDDIT_CLIENT_SECRET",
    "REDDIT_USERNAME",
    "OPENVERSE_CLIENT_ID",
    "OPENVERSE_CLIENT_SECRET",
)

# Settings that make a local crawl fast and its failures quick to show.
FAST = {
    "AUTOTHROTTLE_ENABLED": "False",
    "DOWNLOAD_DELAY": "0",
    "DOWNLOAD_TIMEOUT": "2",  # generous enough for robots.txt on a busy 2-core box
    "RETRY_TIMES": "1",
    "RETRY_BACKOFF_BASE": "0.05",
    "CONCURRENT_REQUESTS_PER_DOMAIN": "16",
    "LOG_LEVEL": "INFO",
}


@pytest.fixture
def local_source() -> Iterator[LocalSource]:
    """A started fake API server, fresh per test (so hit counts are per test)."""
    with LocalSource(page_size=3) as source:
        yield source


def run_cli(
    args: list[str], env: dict[str, str] | None = None, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    """Run `python -m cgan.scraping ARGS` and capture its output."""
    full_env = dict(os.environ)
    for name in KEY_VARIABLES:  # tests decide whether a key exists
        full_env.pop(name, None)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "cgan.scraping", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env=full_env,
    )


def make_crawl_args(
    source: LocalSource, labels: str, limit: int, out: Path, extra: dict[str, str] | None = None
) -> list[str]:
    """CLI arguments for a crawl against `source` with the fast settings."""
    args = ["--labels", labels, "--limit", str(limit), "--out", str(out), "--min-size", "64"]
    for key, value in {**FAST, **source.settings(), **(extra or {})}.items():
        args += ["-s", f"{key}={value}"]
    return args


@pytest.fixture
def crawl(local_source: LocalSource) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run a crawl against the fixture server; `sources=...` picks spiders, `quiet` adds --quiet."""

    def _crawl(
        labels: str,
        limit: int,
        out: Path,
        sources: str = "openverse,wikimedia,reddit,pixabay",
        extra: dict[str, str] | None = None,
        timeout: float = 90,
        quiet: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        args = make_crawl_args(local_source, labels, limit, out, extra) + ["--sources", sources]
        args += ["--quiet"] if quiet else []
        result = run_cli(args, env={"PIXABAY_API_KEY": PIXABAY_TEST_KEY}, timeout=timeout)
        if result.returncode != 0:
            print(result.stdout, result.stderr[-4000:], sep="\n")
        return result

    return _crawl


def read_manifest(out: Path) -> list[dict[str, Any]]:
    """Every manifest line, parsed (a test failure if any line is not JSON)."""
    path = out / "manifest.jsonl"
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n"), "manifest must end with a whole line"
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture
def manifest() -> Callable[[Path], list[dict[str, Any]]]:
    """Give tests the manifest reader without importing this module."""
    return read_manifest


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Give tests the CLI runner."""
    return run_cli


@pytest.fixture
def crawl_args() -> Callable[..., list[str]]:
    """Give tests the argument builder for hand-driven crawls."""
    return make_crawl_args
