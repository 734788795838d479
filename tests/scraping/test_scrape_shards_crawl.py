"""A crawl split over two processes against the local fake APIs, merged, and compared
with the same crawl in one process."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from cgan.scraping.build import BuildOptions, build_dataset
from cgan.scraping.imagecheck import sha1_of
from cgan.scraping.shards import read_record
from tests.scraping.conftest import KEY_VARIABLES, REPO, make_crawl_args
from tests.scraping.fake_apis import LocalSource, make_jpeg, near_copy

LABELS = "cat,dog"
SOURCES = "openverse,reddit,wikimedia"
# Dealt round-robin over the sorted pairs: shard 1 gets cat/openverse, cat/wikimedia,
# dog/reddit; shard 2 gets cat/reddit, dog/openverse, dog/wikimedia.


def _serve(source: LocalSource) -> dict[str, set[str]]:
    """Three pictures per (label, source) and duplicates planted across the two shards.

    Returns the sha1s of each group of copies: `exact` (cat, same bytes in both shards),
    `near` (cat, a resized copy in the other shard), `across` (same bytes under cat in
    shard 1 and dog in shard 2).
    """
    seed = 0
    for label in LABELS.split(","):
        for name in SOURCES.split(","):
            for _ in range(3):
                seed += 1
                source.add_file(f"/img/{seed}.jpg", make_jpeg(1000 + seed))
                source.add_result(name, label, f"/img/{seed}.jpg")
    exact, near, across = make_jpeg(2001), make_jpeg(2002), make_jpeg(2003)
    planted = [
        ("cat", "openverse", "exact-a", exact),  # shard 1
        ("cat", "reddit", "exact-b", exact),  # shard 2
        ("cat", "wikimedia", "near-a", near),  # shard 1
        ("cat", "reddit", "near-b", near_copy(near)),  # shard 2
        ("cat", "openverse", "across-a", across),  # shard 1
        ("dog", "openverse", "across-b", across),  # shard 2
    ]
    for label, name, file, body in planted:
        source.add_file(f"/img/{file}.jpg", body)
        source.add_result(name, label, f"/img/{file}.jpg")
    return {
        "exact": {sha1_of(exact)},
        "near": {sha1_of(near), sha1_of(near_copy(near))},
        "across": {sha1_of(across)},
    }


def _run(source: LocalSource, out: Path, *extra: str) -> subprocess.Popen[str]:
    """Start one crawl process (no key of the user's reaches it)."""
    env = {name: value for name, value in os.environ.items() if name not in KEY_VARIABLES}
    command = _command(source, out, *extra)
    pipe = subprocess.PIPE
    return subprocess.Popen(command, stdout=pipe, stderr=pipe, text=True, env=env, cwd=REPO)


def _finish(proc: subprocess.Popen[str]) -> None:
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr[-3000:]
    assert "Traceback" not in stderr


def _command(source: LocalSource, out: Path, *extra: str) -> list[str]:
    args = make_crawl_args(source, LABELS, 50, out) + ["--sources", SOURCES, "--quiet"]
    return [sys.executable, "-m", "cgan.scraping", *args, *extra]


def _searches(source: LocalSource, since: int) -> Counter[tuple[str, str]]:
    """(API, label) of every search page requested after request number `since`."""
    found: Counter[tuple[str, str]] = Counter()
    for request in source.requests[since:]:
        parts = urlsplit(request)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        words = query.get("q") or query.get("gsrsearch", "").replace(" filetype:bitmap", "")
        if words:
            found[(parts.path, words)] += 1
    return found


def _kept(out: Path) -> dict[str, set[str]]:
    """Label -> sha1s of the kept images a crawl folder's manifest lists."""
    kept: dict[str, set[str]] = {}
    for line in (out / "manifest.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["status"] == "kept":
            kept.setdefault(row["label"], set()).add(row["sha1"])
    return kept


def _pairs(out: Path) -> set[tuple[str, str]]:
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    return {(row["label"], row["source"]) for row in rows}


def _built(out: Path) -> dict[str, dict[str, str]]:
    """Label -> {file name: sha256 of the built file} of a built dataset."""
    return {
        folder.name: {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}
        for folder in sorted(out.iterdir())
        if folder.is_dir()
    }


@pytest.mark.slow
def test_two_shard_processes_merge_into_the_one_process_dataset(local_source, tmp_path, cli):
    groups = _serve(local_source)

    # One process, all pairs.
    whole = tmp_path / "whole"
    _finish(_run(local_source, whole))
    one_process_searches = _searches(local_source, 0)
    hits_before, requests_before = Counter(local_source.hits), len(local_source.requests)

    # Two processes at once, one shard each, each into its own folder.
    shards = [tmp_path / "shard1", tmp_path / "shard2"]
    procs = [_run(local_source, out, "--shard", f"{k}/2") for k, out in enumerate(shards, 1)]
    for proc in procs:
        _finish(proc)

    # The pairs: disjoint, and together those of the one-process crawl, by record, by
    # manifest and by what was asked of the APIs (every search page exactly as often).
    one, two = (read_record(out) for out in shards)
    assert not set(one.pairs) & set(two.pairs)
    assert set(one.pairs) | set(two.pairs) == _pairs(whole)
    assert _pairs(shards[0]) == set(one.pairs) and _pairs(shards[1]) == set(two.pairs)
    assert _searches(local_source, requests_before) == one_process_searches
    for path, count in local_source.hits.items():
        if path.startswith("/img/"):
            assert count - hits_before[path] == hits_before[path] == 1, path

    # Each shard kept its copy of the planted pictures; the one process kept one of each.
    shard_kept = [_kept(out) for out in shards]
    assert groups["exact"] <= shard_kept[0]["cat"] and groups["exact"] <= shard_kept[1]["cat"]
    assert groups["near"] <= shard_kept[0]["cat"] | shard_kept[1]["cat"]
    assert groups["across"] <= shard_kept[0]["cat"] and groups["across"] <= shard_kept[1]["dog"]

    merged = tmp_path / "merged"
    build = cli(
        [
            "build",
            "--src",
            str(shards[0]),
            str(shards[1]),
            "--out",
            str(merged),
            "--size",
            "32",
            "--quiet",
        ],
        timeout=60,
    )
    assert build.returncode == 0, build.stderr
    assert "removed 2 duplicate, 1 near_duplicate" in build.stderr
    reference = tmp_path / "reference"
    build_dataset(BuildOptions(src=whole, out=reference, size=32, progress=False))

    # The same dataset, up to which copy of a planted group survived: the one process kept
    # whichever copy finished downloading first (the near copy's bytes differ; the picture
    # in both labels went to either label), the merge keeps the copy taken first in turns.
    def identity(label: str, name: str) -> tuple[str, str]:
        sha1 = Path(name).stem
        group = next((g for g, members in groups.items() if sha1 in members), None)
        return ("*" if group == "across" else label, group or sha1)

    merged_files, reference_files = _built(merged), _built(reference)
    assert sorted(
        identity(label, name) for label, files in merged_files.items() for name in files
    ) == sorted(identity(label, name) for label, files in reference_files.items() for name in files)
    for label, files in merged_files.items():  # same pictures built to the same bytes
        for name in files.keys() & reference_files.get(label, {}).keys():
            assert files[name] == reference_files[label][name], (label, name)

    # One manifest row per image in the dataset, saying which shard folder it came from.
    rows = [json.loads(line) for line in (merged / "manifest.jsonl").read_text().splitlines()]
    on_disk = {f"{label}/{name}" for label, files in merged_files.items() for name in files}
    assert len(rows) == len(on_disk) and {row["path"] for row in rows} == on_disk
    plans = {str(shards[0]): one, str(shards[1]): two}
    by_url = {
        str(out): {
            row["url"]: row
            for row in map(json.loads, (out / "manifest.jsonl").read_text().splitlines())
        }
        for out in shards
    }
    for row in rows:
        plan = plans[row["src"]]
        assert row["shard"] == str(plan.shard)
        assert (row["label"], row["source"]) in plan.pairs
        crawled = by_url[row["src"]][row["url"]]  # its shard's line, credits and all
        assert {k: v for k, v in row.items() if k in crawled and k != "path"} == {
            k: v for k, v in crawled.items() if k != "path"
        }
        assert row["src_path"] == crawled["path"] and row["url"].startswith(local_source.base)
