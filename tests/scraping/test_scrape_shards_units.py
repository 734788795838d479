"""Split crawls without a crawl: dealing pairs, --shard values, shard records, the merge."""

from __future__ import annotations

import json
import random
from itertools import combinations
from pathlib import Path

import pytest

from cgan.scraping.build import BuildOptions, build_dataset
from cgan.scraping.cli import build_parser, main
from cgan.scraping.imagecheck import sha1_of
from cgan.scraping.manifest import MANIFEST_NAME, make_record
from cgan.scraping.merge import MergeError
from cgan.scraping.shards import (
    Shard,
    ShardError,
    ShardPlan,
    all_pairs,
    claim_folder,
    deal,
    read_record,
    shard_arg,
)
from tests.scraping.crawl_folders import crawl_folder
from tests.scraping.fake_apis import make_jpeg, near_copy

SOURCES = ["openverse", "pixabay", "reddit", "wikimedia"]

# --- dealing pairs ---------------------------------------------------------------------------


@pytest.mark.parametrize("n_labels", [1, 2, 3, 5, 11])
@pytest.mark.parametrize("n_sources", [1, 3, 4])
@pytest.mark.parametrize("count", [1, 2, 3, 4, 7, 20])
def test_dealing_is_disjoint_complete_balanced_and_deterministic(n_labels, n_sources, count):
    labels = [f"label{i}" for i in range(n_labels)]
    sources = SOURCES[:n_sources]
    shards = deal(all_pairs(labels, sources), count)
    assert len(shards) == count
    flat = [pair for share in shards for pair in share]
    assert sorted(flat) == all_pairs(labels, sources), "complete, and no pair twice"
    for a, b in combinations(shards, 2):
        assert not set(a) & set(b), "disjoint"
    sizes = [len(share) for share in shards]
    assert max(sizes) - min(sizes) <= 1, "balanced to within one pair"

    # Any order of typing labels and sources gives the same split on every machine.
    rng = random.Random(count * 100 + n_labels)
    shuffled_labels, shuffled_sources = labels[:], sources[:]
    rng.shuffle(shuffled_labels)
    rng.shuffle(shuffled_sources)
    for k in range(1, count + 1):
        plan = ShardPlan.make(Shard(k, count), shuffled_labels, shuffled_sources, 10)
        assert list(plan.pairs) == shards[k - 1]


def test_round_robin_over_sorted_pairs():
    plan = ShardPlan.make(Shard(1, 2), ["dog", "cat"], ["reddit", "openverse", "wikimedia"], 5)
    assert plan.pairs == (("cat", "openverse"), ("cat", "wikimedia"), ("dog", "reddit"))
    assert plan.labels_of("openverse") == ["cat"] and plan.labels_of("pixabay") == []
    assert ShardPlan.from_json(json.loads(json.dumps(plan.to_json()))) == plan


@pytest.mark.parametrize("text", ["0/2", "3/2", "2", "a/b", "1/0", "-1/2", "1/2/3", "", "/"])
def test_bad_shard_values_are_one_line(text, capsys):
    with pytest.raises(Exception) as raised:
        shard_arg(text)
    assert "expected K/N with 1 <= K <= N" in str(raised.value)
    with pytest.raises(SystemExit) as stopped:
        main(["--labels", "cat", "--shard", text, "--out", "/nonexistent/never-written"])
    assert stopped.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cgan-scrape: error: argument --shard")


def test_good_shard_values():
    assert shard_arg("1/1") == Shard(1, 1) and str(shard_arg(" 3 / 4 ")) == "3/4"


# --- shard records ---------------------------------------------------------------------------


def test_a_folder_keeps_its_shard(tmp_path):
    out = tmp_path / "shard1"
    out.mkdir()
    first = ShardPlan.make(Shard(1, 2), ["cat", "dog"], SOURCES, 10)
    assert claim_folder(out, first) == []
    assert read_record(out) == first
    assert claim_folder(out, first) == []  # resuming the same shard
    with pytest.raises(ShardError, match="holds shard 1/2, not 2/2"):
        claim_folder(out, ShardPlan.make(Shard(2, 2), ["cat", "dog"], SOURCES, 10))
    with pytest.raises(ShardError, match="resume it with --shard 1/2"):
        claim_folder(out, None)
    # With 4 sources and 2 shards a new label shifts the deal by a whole turn: no change.
    assert claim_folder(out, ShardPlan.make(Shard(1, 2), ["ant", "cat", "dog"], SOURCES, 10)) == []
    # With 3 sources it re-deals the pairs after it: the ones that moved away are named.
    three = SOURCES[:3]
    claim_folder(out, ShardPlan.make(Shard(1, 2), ["cat", "dog"], three, 10))
    notices = claim_folder(out, ShardPlan.make(Shard(1, 2), ["ant", "cat", "dog"], three, 10))
    assert len(notices) == 1 and "now belong to another shard" in notices[0]

    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / MANIFEST_NAME).write_text(json.dumps(make_record(url="u", status="kept")) + "\n")
    assert claim_folder(plain, None) == []
    with pytest.raises(ShardError, match="holds an unsharded crawl"):
        claim_folder(plain, first)


def test_resuming_with_another_shard_is_refused_in_one_line(cli, tmp_path):
    out = tmp_path / "shard1"
    out.mkdir()
    claim_folder(out, ShardPlan.make(Shard(1, 2), ["cat"], ["openverse", "reddit"], 10))
    args = ["--labels", "cat", "--sources", "openverse,reddit", "--out", str(out)]
    result = cli([*args, "--shard", "2/2"], timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"cgan-scrape: error: {out} holds shard 1/2, not 2/2: give each shard its own --out"
    ]


def test_a_shard_without_pairs_leaves_an_empty_valid_folder(cli, tmp_path):
    out = tmp_path / "idle"
    args = ["--labels", "cat", "--sources", "openverse", "--shard", "2/2", "--out", str(out)]
    result = cli(args, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "shard 2/2 has no (label, source) pair it can crawl" in result.stderr
    assert (out / MANIFEST_NAME).read_text() == ""
    assert read_record(out).pairs == ()
    assert json.loads((out / "summary.json").read_text())["shard"] == "2/2"


# --- the merge -------------------------------------------------------------------------------


def _plans(limit: int = 10) -> list[ShardPlan]:
    return [
        ShardPlan.make(Shard(k, 2), ["cat", "dog"], ["openverse", "reddit"], limit) for k in (1, 2)
    ]


def test_merge_dedupes_across_folders_takes_turns_and_caps(tmp_path):
    one, two = _plans(limit=4)
    assert one.pairs == (("cat", "openverse"), ("dog", "openverse"))
    shared, near = make_jpeg(900), make_jpeg(901)
    first = [("cat", "openverse", body) for body in (shared, *map(make_jpeg, (1, 2, 3)))]
    first.append(("dog", "openverse", near))
    second = [("cat", "reddit", body) for body in (shared, *map(make_jpeg, (11, 12, 13)))]
    second.append(("dog", "reddit", near_copy(near)))
    a = crawl_folder(tmp_path, "a", first, one)
    b = crawl_folder(tmp_path, "b", second, two)
    out = tmp_path / "merged"
    reports = build_dataset(BuildOptions(src=[a, b], out=out, size=32, progress=False))

    # cat, in turns: a's shared picture, b's copy of it (a duplicate), a1, b11, a2 fill the
    # limit of 4; b12, a3 and b13 are over it.
    cat = {p.stem for p in (out / "cat").glob("*.png")}
    assert cat == {sha1_of(shared), *(sha1_of(make_jpeg(s)) for s in (1, 11, 2))}
    assert reports["cat"].rejected == {"over_limit": 3, "duplicate": 1}
    assert reports["dog"].kept == 1 and reports["dog"].rejected == {"near_duplicate": 1}
    assert {p.stem for p in (out / "dog").glob("*.png")} == {sha1_of(near)}  # a's, --src order

    rows = [json.loads(line) for line in (out / MANIFEST_NAME).read_text().splitlines()]
    assert len(rows) == 5 and {r["path"] for r in rows} == {
        f"{d.name}/{p.name}" for d in (out / "cat", out / "dog") for p in d.iterdir()
    }
    for row in rows:
        assert row["shard"] == {str(a): "1/2", str(b): "2/2"}[row["src"]]
        assert (row["label"], row["source"]) in (one if row["shard"] == "1/2" else two).pairs
        assert row["licence"] == "CC BY 4.0" and row["url"].startswith("https://example.org/")
        assert Path(row["path"]).stem == Path(row["src_path"]).stem == row["sha1"]
    report = json.loads((out / "report.json").read_text())
    assert report["src"] == [str(a), str(b)] and report["merge"]["limit"] == 4
    assert report["merge"]["removed"] == {"over_limit": 3, "duplicate": 1, "near_duplicate": 1}

    # The other order of --src keeps b's copies instead; same sizes.
    again = build_dataset(BuildOptions(src=[b, a], out=tmp_path / "again", size=32, progress=False))
    assert {p.stem for p in (tmp_path / "again" / "dog").glob("*.png")} == {
        sha1_of(near_copy(near))
    }
    assert again["cat"].kept == 4


def test_merge_of_unsharded_folders_has_no_cap_and_skips_unrecorded_files(tmp_path):
    a = crawl_folder(tmp_path, "a", [("cat", "openverse", make_jpeg(s)) for s in (1, 2)])
    b = crawl_folder(tmp_path, "b", [("cat", "reddit", make_jpeg(s)) for s in (3, 4, 5)])
    (b / "cat" / "mine.jpg").write_bytes(make_jpeg(6))  # not in b's manifest
    reports = build_dataset(BuildOptions(src=[a, b], out=tmp_path / "o", size=32, progress=False))
    assert reports["cat"].kept == 5 and reports["cat"].rejected == {"unrecorded": 1}


def test_merge_refuses_inputs_that_are_not_one_dataset(tmp_path):
    one, two = _plans()
    img = [("cat", "openverse", make_jpeg(1))]
    a = crawl_folder(tmp_path, "a", img, one)
    b = crawl_folder(tmp_path, "b", [("cat", "reddit", make_jpeg(2))], two)
    plain = crawl_folder(tmp_path, "plain", [("cat", "reddit", make_jpeg(3))])
    other_split = crawl_folder(
        tmp_path, "c", img, ShardPlan.make(Shard(2, 3), ["cat", "dog"], ["openverse", "reddit"], 10)
    )
    other_limit = crawl_folder(tmp_path, "d", img, _plans(limit=5)[1])
    same_shard = crawl_folder(tmp_path, "e", img, one)
    not_crawl = tmp_path / "photos"
    (not_crawl / "cat").mkdir(parents=True)
    nested = crawl_folder(a, "inner", img)
    out = tmp_path / "out"
    cases = [
        ([a, not_crawl], out, "is not a crawl output folder"),
        ([a, tmp_path / "a"], out, "is given twice"),
        ([a, nested], out, "is inside --src"),
        ([a, b], a / "built", "--out must not be"),
        ([a, b], tmp_path, "is inside --out"),
        ([a, plain], out, "is not: merge the shards of one split"),
        ([a, other_split], out, "is not from the same split"),
        ([a, other_limit], out, "--limit 5"),
        ([a, same_shard], out, "are both shard 1/2"),
    ]
    for srcs, target, message in cases:
        with pytest.raises(MergeError, match=message):
            build_dataset(BuildOptions(src=srcs, out=target, size=32, progress=False))
    assert not out.exists()


def test_merge_warns_about_a_missing_shard(tmp_path, capsys):
    plans = [
        ShardPlan.make(Shard(k, 3), ["cat"], ["openverse", "reddit", "wikimedia"], 9)
        for k in (1, 2, 3)
    ]
    a = crawl_folder(tmp_path, "a", [("cat", "openverse", make_jpeg(1))], plans[0])
    c = crawl_folder(tmp_path, "c", [("cat", "wikimedia", make_jpeg(2))], plans[2])
    build_dataset(BuildOptions(src=[a, c], out=tmp_path / "o", size=32, progress=False))
    assert "warning: shard 2/3 not given" in capsys.readouterr().err


def test_build_takes_several_src_either_way():
    parser = build_parser()
    repeated = parser.parse_args(["--src", "a", "--src", "b", "--out", "o"])
    listed = parser.parse_args(["--src", "a", "b", "--out", "o"])
    assert repeated.src == listed.src == [Path("a"), Path("b")]
