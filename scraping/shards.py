"""Split one crawl over N machines: which (label, source) pairs shard K of N crawls.

The unit of work is a (label, source) pair: one source's search for one label, with its
own cursors. All pairs of the command are sorted (by label, then source) and dealt
round-robin, pair i to shard i mod N + 1. Dealing gives every shard its share to within
one pair, where a hash of each pair can leave one machine idle and another with most of
a small crawl; sorting makes the split the same on every machine however the labels and
sources were typed. The price: adding or removing a label or source re-deals the pairs
after it, so a pair can move to another shard, which then crawls it from the start (the
old shard's images stay in its folder and the merge removes the copies).

The pairs are dealt over the sources named in `--sources`, before pixabay is left out
for want of a key, so that machines with and without keys agree on the split.

A shard's output folder records its shard in `OUT/shard.json` on the first crawl and
keeps it: resuming with another `--shard`, or without one, is refused, and so is
sharding into a folder that holds an unsharded crawl. `cgan-scrape build` reads the
record to check that its `--src` folders are the shards of one split (merge.py).
No Scrapy here: the command line uses it before Scrapy is loaded.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cgan.common.cli import positive_int
from cgan.common.errors import ScrapeError
from cgan.common.files import write_text_atomic
from cgan.scraping.manifest import MANIFEST_NAME

SHARD_FILE = "shard.json"
ASSIGNMENT = "round-robin over the (label, source) pairs sorted by label, then source"

Pair = tuple[str, str]


class ShardError(ScrapeError):
    """A --shard that does not fit its output folder, or an unreadable shard record."""


@dataclass(frozen=True, order=True)
class Shard:
    """Shard `index` of `count` (both from 1), written `K/N` as on the command line."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def shard_arg(text: str) -> Shard:
    """argparse `type=` for `--shard K/N`: a bad value becomes the parser's one-line error."""
    index_text, sep, count_text = text.partition("/")
    try:
        if not sep:
            raise argparse.ArgumentTypeError("no '/'")
        shard = Shard(positive_int(index_text.strip()), positive_int(count_text.strip()))
    except argparse.ArgumentTypeError:
        shard = None
    if shard is None or shard.index > shard.count:
        raise argparse.ArgumentTypeError(
            f"expected K/N with 1 <= K <= N, such as 1/4; got {text!r}"
        )
    return shard


def all_pairs(labels: Iterable[str], sources: Iterable[str]) -> list[Pair]:
    """Every (label, source) pair of a crawl, sorted: the order the pairs are dealt in."""
    return sorted({(label, source) for label in labels for source in sources})


def deal(pairs: Iterable[Pair], count: int) -> list[list[Pair]]:
    """The pairs of each of `count` shards (list index K-1): sorted, then round-robin."""
    shards: list[list[Pair]] = [[] for _ in range(count)]
    for i, pair in enumerate(sorted(set(pairs))):
        shards[i % count].append(pair)
    return shards


@dataclass(frozen=True)
class ShardPlan:
    """What one shard crawls, and the split it belongs to (saved as `OUT/shard.json`)."""

    shard: Shard
    labels: tuple[str, ...]  # every label of the split crawl, sorted
    sources: tuple[str, ...]  # every source named in --sources, sorted
    pairs: tuple[Pair, ...]  # this shard's share
    limit: int  # --limit: images kept per label in this folder

    @classmethod
    def make(
        cls, shard: Shard, labels: Iterable[str], sources: Iterable[str], limit: int
    ) -> ShardPlan:
        """Deal the pairs of `labels` x `sources` and keep shard `shard`'s share."""
        labels, sources = tuple(sorted(set(labels))), tuple(sorted(set(sources)))
        share = deal(all_pairs(labels, sources), shard.count)[shard.index - 1]
        return cls(shard, labels, sources, tuple(share), limit)

    def labels_of(self, source: str) -> list[str]:
        """This shard's labels for one source, sorted."""
        return [label for label, name in self.pairs if name == source]

    def same_split(self, other: ShardPlan) -> bool:
        """Whether both come from one command: same N, labels and sources."""
        return (self.shard.count, self.labels, self.sources) == (
            other.shard.count,
            other.labels,
            other.sources,
        )

    def to_json(self) -> dict[str, Any]:
        """`OUT/shard.json`: enough for build to check that its folders are one split."""
        return {
            "shard": str(self.shard),
            "assignment": ASSIGNMENT,
            "labels": list(self.labels),
            "sources": list(self.sources),
            "pairs": [list(pair) for pair in self.pairs],
            "limit": self.limit,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ShardPlan:
        """Read `OUT/shard.json` back; KeyError/ValueError/TypeError when it is damaged."""
        shard = shard_arg(str(data["shard"]))
        pairs = tuple((str(label), str(source)) for label, source in data["pairs"])
        labels = tuple(str(label) for label in data["labels"])
        sources = tuple(str(source) for source in data["sources"])
        return cls(shard, labels, sources, pairs, int(data["limit"]))


def describe(pairs: Sequence[Pair], most: int = 8) -> str:
    """`cat/openverse, cat/reddit, ...` for a terminal line."""
    names = [f"{label}/{source}" for label, source in pairs]
    more = f", ... ({len(names)} in all)" if len(names) > most else ""
    return ", ".join(names[:most]) + more


def read_record(folder: Path) -> ShardPlan | None:
    """The shard a crawl folder holds, or None for an unsharded one."""
    path = folder / SHARD_FILE
    if not path.is_file():
        return None
    try:
        return ShardPlan.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError, argparse.ArgumentTypeError) as exc:
        raise ShardError(
            f"{path} is unreadable ({exc}); it records which shard {folder} holds"
        ) from None


def _holds_a_crawl(folder: Path) -> bool:
    manifest = folder / MANIFEST_NAME
    return manifest.is_file() and manifest.stat().st_size > 0


def claim_folder(out: Path, plan: ShardPlan | None) -> list[str]:
    """Refuse a crawl whose shard differs from the one `out` holds; record it; notices.

    Run under the output lock, so two crawls can't both claim a new folder. The notices
    name pairs this folder crawled before that the split now gives to another shard.
    """
    record = read_record(out)
    if plan is None:
        if record is not None:
            raise ShardError(
                f"{out} holds shard {record.shard} of a split crawl: resume it with "
                f"--shard {record.shard}, or give this crawl another --out"
            )
        return []
    if record is None and _holds_a_crawl(out):
        raise ShardError(f"{out} holds an unsharded crawl: give shard {plan.shard} its own --out")
    if record is not None and record.shard != plan.shard:
        raise ShardError(
            f"{out} holds shard {record.shard}, not {plan.shard}: give each shard its own --out"
        )
    write_text_atomic(out / SHARD_FILE, json.dumps(plan.to_json(), indent=2) + "\n")
    moved = sorted(set(record.pairs) - set(plan.pairs)) if record is not None else []
    if not moved:
        return []
    return [
        f"shard {plan.shard}: {describe(moved)} now belong to another shard (labels or sources "
        "changed); the images kept for them here stay, and build merges them"
    ]
