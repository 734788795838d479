"""The progress display of the crawl and the dataset build: plain lines on a non-terminal
stderr (kept/limit per label for the crawl), nothing with --quiet, stdout untouched."""

from __future__ import annotations

import io
import re
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

import pytest

from cgan.scraping.runner import CrawlProgress
from tests.scraping.fake_apis import make_jpeg

CRAWL_LINE = re.compile(
    r"^cgan-scrape: (\d+)/(\d+) images, [\d.]+ images/s, "
    r"cat (\d+)/(\d+), dog (\d+)/(\d+), rejected (\d+)$"
)


def _offer(source, label: str, good: int, broken: int, seed: int) -> None:
    for i in range(good + broken):
        path = f"/img/{label}{i}.jpg"
        if i < good:
            source.add_file(path, make_jpeg(seed + i))
        else:
            source.add_file(path, b"", status=404)
        source.add_result("openverse" if i % 2 else "wikimedia", label, path)


@pytest.mark.slow
def test_crawl_shows_kept_over_limit_per_label_on_stderr(local_source, crawl, tmp_path):
    _offer(local_source, "cat", good=6, broken=2, seed=700)
    _offer(local_source, "dog", good=6, broken=1, seed=800)
    result = crawl("cat,dog", 5, tmp_path / "out", sources="openverse,wikimedia")
    assert result.returncode == 0, result.stderr[-3000:]

    matches = [CRAWL_LINE.match(line) for line in result.stderr.splitlines()]
    shown = [tuple(int(n) for n in match.groups()) for match in matches if match]
    assert shown, result.stderr
    for done, total, cat, cat_limit, dog, dog_limit, rejected in shown:
        assert (total, cat_limit, dog_limit) == (10, 5, 5) and done == cat + dog
        assert rejected <= 3  # the 404s decided so far
    done = [line[0] for line in shown]
    assert done == sorted(set(done)), "a line per tenth of the work, never one twice"
    assert shown[-1][:6] == (10, 10, 5, 5, 5, 5)
    assert "images/s" not in result.stdout and "kept" in result.stdout.splitlines()[0]


@pytest.mark.slow
def test_quiet_crawl_shows_no_progress(local_source, crawl, tmp_path):
    _offer(local_source, "cat", good=3, broken=0, seed=900)
    result = crawl("cat", 3, tmp_path / "out", sources="openverse,wikimedia", quiet=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "images/s" not in result.stderr
    assert result.stdout.splitlines()[2].split()[:3] == ["cat", "3", "3"]


def _state(**kept: int) -> SimpleNamespace:
    return SimpleNamespace(quota=SimpleNamespace(kept=defaultdict(int, kept)))


def test_progress_counts_what_earlier_runs_kept_and_every_rejection():
    state, stream = _state(cat=2), io.StringIO()
    progress = CrawlProgress(state, ["cat", "dog"], limit=4, stream=stream)
    assert progress.display.done == 2 and stream.getvalue() == ""
    progress._decided({"status": "rejected"})
    state.quota.kept["dog"] = 1
    progress._decided({"status": "kept"})
    progress.close()
    lines = stream.getvalue().splitlines()
    assert CRAWL_LINE.match(lines[-1]), lines
    assert lines[-1].startswith("cgan-scrape: 3/8 images,")
    assert lines[-1].endswith("cat 2/4, dog 1/4, rejected 1")


def test_disabled_progress_prints_nothing():
    stream = io.StringIO()
    progress = CrawlProgress(_state(cat=4), ["cat"], limit=4, enabled=False, stream=stream)
    progress._decided({"status": "kept"})
    progress.close()
    assert stream.getvalue() == ""


def _folders(root: Path, per_class: int) -> Path:
    src = root / "scraped"
    for n, label in enumerate(("cat", "dog")):
        (src / label).mkdir(parents=True)
        for i in range(per_class):
            (src / label / f"{i}.jpg").write_bytes(make_jpeg(n * 50 + i, (96, 80)))
    return src


def test_build_shows_images_done_and_quiet_hides_them(cli, tmp_path):
    src = _folders(tmp_path, per_class=10)
    args = ["build", "--src", str(src), "--size", "32"]
    result = cli([*args, "--out", str(tmp_path / "a")], timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) >= 2 and all(line.startswith("cgan-scrape build: ") for line in lines)
    assert lines[-1].startswith("cgan-scrape build: 20/20 images, ")
    assert "20 images in 2 classes" in result.stdout

    quiet = cli([*args, "--out", str(tmp_path / "b"), "--quiet"], timeout=60)
    assert quiet.returncode == 0 and quiet.stderr == ""
