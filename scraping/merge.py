"""`cgan-scrape build` with several `--src`: one dataset from several crawl folders.

Made for the shards of a split crawl (`--shard K/N`, shards.py), it also merges any crawl
folders. Each folder's kept images come from its manifest, which carries what the merged
manifest must keep (source, URL, licence, author) and the hashes to dedupe by; a file in a
class folder without a manifest line is left out (`unrecorded`).

The images are taken in turns, as a one-process crawl would get them from its sources
running side by side: every folder's first kept image of each label (in its manifest's
order), then every second one, and so on; within a turn `--src` order, then label. An image
is left out when it has the same bytes as one taken before (`duplicate`), is within the
threshold of one (`near_duplicate`, the crawl's own `DedupIndex`, so one rule for crawl and
merge), or when its label already has the split's `--limit` (`over_limit`: each shard
keeps up to the limit per label from its own sources). Which copy of a duplicate survives
therefore depends only on the folders and their order, never on timing.

Inputs are refused in one line when they cannot be one dataset: a folder that is not a crawl
folder, the same folder twice, one inside another, `--out` inside a `--src` (or a `--src`
inside `--out`, which the build replaces), shards of different splits (another N, other
labels or sources, another --limit), two folders holding the same shard, or shards mixed
with unsharded folders. A missing shard is only warned about.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from cgan.common.errors import ScrapeError
from cgan.common.files import resolves_inside
from cgan.scraping.dedupe import DedupIndex
from cgan.scraping.folders import MARKER, class_folders, class_images, refuse_nested
from cgan.scraping.manifest import FIELDS, KEPT, MANIFEST_NAME, latest_by_url, read_manifest
from cgan.scraping.shards import ShardPlan, read_record


class MergeError(ScrapeError):
    """Crawl folders that cannot be merged into one dataset; a usage error."""


@dataclass(frozen=True)
class Candidate:
    """One kept image of one crawl folder, with its manifest line."""

    src_index: int
    src: Path
    shard: str | None
    rank: int  # its place among the folder's kept images of its label, manifest order
    row: dict[str, Any]

    @property
    def label(self) -> str:
        return str(self.row["label"])

    @property
    def path(self) -> Path:
        return self.src / str(self.row["path"])

    def turn(self) -> tuple[int, int, str]:
        """Sort key: the order in which candidates are taken."""
        return (self.rank, self.src_index, self.label)


@dataclass
class SrcSummary:
    """What one folder gave to the merge, for the report."""

    path: Path
    shard: str | None
    offered: int = 0
    taken: int = 0


@dataclass
class Merge:
    """The images to build per label, why the others were left out, where each came from."""

    images: dict[str, list[Path]] = field(default_factory=dict)
    removed: defaultdict[str, Counter[str]] = field(
        default_factory=lambda: defaultdict(Counter[str])
    )
    chosen: dict[Path, Candidate] = field(default_factory=dict)
    srcs: list[SrcSummary] = field(default_factory=list)
    limit: int | None = None
    missing_shards: list[str] = field(default_factory=list)
    # Kept lines left out before any label is known: their path leaves the crawl folder.
    skipped: Counter[str] = field(default_factory=Counter)

    def report_json(self, max_distance: int) -> dict[str, Any]:
        totals: Counter[str] = Counter()
        for counts in self.removed.values():
            totals.update(counts)
        return {
            "phash_distance": max_distance,
            "limit": self.limit,
            "missing_shards": self.missing_shards,
            "removed": dict(totals.most_common()),
            "skipped_lines": dict(self.skipped.most_common()),
            "srcs": [
                {"path": str(s.path), "shard": s.shard, "offered": s.offered, "taken": s.taken}
                for s in self.srcs
            ],
        }

    def summary_line(self) -> str:
        """One line for the terminal: what the merge removed."""
        totals: Counter[str] = Counter()
        for counts in self.removed.values():
            totals.update(counts)
        shards = [s.shard for s in self.srcs if s.shard]
        which = f" (shards {', '.join(shards)})" if shards else ""
        parts = [f"{n} {reason}" for reason, n in (totals + self.skipped).most_common()]
        parts = parts or ["nothing"]
        return f"merged {len(self.srcs)} crawl folders{which}: removed {', '.join(parts)}"


def _inside(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def check_folders(srcs: list[Path], out: Path) -> None:
    """Refuse folders that cannot be merged: not crawl folders, repeated, nested."""
    resolved = [src.resolve() for src in srcs]
    for i, (src, real) in enumerate(zip(srcs, resolved, strict=True)):
        if not real.is_dir():
            raise MergeError(f"--src {src} does not exist or is not a folder")
        report = real / "report.json"
        if report.is_file() and MARKER in report.read_text(errors="replace"):
            raise MergeError(f"--src {src} is a built dataset; give the crawl folders it came from")
        if not (real / MANIFEST_NAME).is_file():
            raise MergeError(
                f"--src {src} is not a crawl output folder (no {MANIFEST_NAME}); several --src "
                "must be cgan-scrape crawl folders"
            )
        for other, other_real in zip(srcs[:i], resolved[:i], strict=True):
            if real == other_real:
                raise MergeError(f"--src {src} is given twice")
            if _inside(real, other_real) or _inside(other_real, real):
                inner, outer = (src, other) if _inside(real, other_real) else (other, src)
                raise MergeError(f"--src {inner} is inside --src {outer}")
        refuse_nested(src, out, MergeError)


def check_split(srcs: list[Path], plans: list[ShardPlan | None]) -> list[str]:
    """Refuse shards of different splits; return the shards of the split that are missing."""
    shards = [(src, plan) for src, plan in zip(srcs, plans, strict=True) if plan is not None]
    if not shards:
        return []
    if len(shards) != len(srcs):
        plain = next(src for src, plan in zip(srcs, plans, strict=True) if plan is None)
        src, plan = shards[0]
        raise MergeError(
            f"--src {src} is shard {plan.shard} of a split crawl but --src {plain} is not: "
            "merge the shards of one split, or unsharded folders"
        )
    first_src, first = shards[0]
    seen: dict[int, Path] = {}
    for src, plan in shards:
        if not plan.same_split(first):
            raise MergeError(
                f"--src {src} (shard {plan.shard}, labels {','.join(plan.labels)}, sources "
                f"{','.join(plan.sources)}) is not from the same split as --src {first_src} "
                f"(shard {first.shard}, labels {','.join(first.labels)}, sources "
                f"{','.join(first.sources)}); crawl every shard with the same command"
            )
        if plan.limit != first.limit:
            raise MergeError(
                f"--src {src} was crawled with --limit {plan.limit}, --src {first_src} with "
                f"--limit {first.limit}; rerun one of them with the other's --limit"
            )
        if plan.shard.index in seen:
            raise MergeError(
                f"--src {seen[plan.shard.index]} and --src {src} are both shard {plan.shard}"
            )
        seen[plan.shard.index] = src
    count = first.shard.count
    return [f"{k}/{count}" for k in range(1, count + 1) if k not in seen]


def _names_a_file_of(rel: str, label: str, src: Path) -> bool:
    """Whether a manifest `path` is `label/<file>` and, links followed, inside `src`."""
    parts = rel.split("/")
    if len(parts) != 2 or parts[0] != label or {".", ".."} & set(parts) or "" in parts:
        return False
    return "\\" not in rel and resolves_inside(src / rel, src)


def _candidates(index: int, src: Path, plan: ShardPlan | None, merge: Merge) -> list[Candidate]:
    """The kept images of one folder that are still on disk, in manifest order."""
    shard = str(plan.shard) if plan is not None else None
    ranks: Counter[str] = Counter()
    found: list[Candidate] = []
    for row in latest_by_url(read_manifest(src)).values():
        label, rel = row.get("label"), row.get("path") or ""
        if row.get("status") != KEPT or not label:  # the types were checked on load
            continue
        if not _names_a_file_of(rel, label, src):
            merge.skipped["path_out_of_src"] += 1  # a hand-made or hostile line
            continue
        if (src / rel).is_file():  # a file moved away (verify --move-rejected) is not offered
            found.append(Candidate(index, src, shard, ranks[label], row))
            ranks[label] += 1
    recorded = {str(c.row["path"]) for c in found}
    for folder in class_folders(src):
        if not resolves_inside(folder, src):
            continue  # never listed; its lines were skipped above
        merge.images.setdefault(folder.name, [])
        for path in class_images(folder):
            if f"{folder.name}/{path.name}" not in recorded:
                merge.removed[folder.name]["unrecorded"] += 1
    merge.srcs.append(SrcSummary(src, shard, offered=len(found)))
    return found


def merge_crawls(srcs: list[Path], out: Path, max_distance: int, log: IO[str]) -> Merge:
    """Check the folders, then choose the images of the merged dataset (module docstring)."""
    check_folders(srcs, out)
    plans = [read_record(src) for src in srcs]
    merge = Merge()
    merge.missing_shards = check_split(srcs, plans)
    if merge.missing_shards:
        print(
            f"cgan-scrape build: warning: shard {', '.join(merge.missing_shards)} not given; "
            "its (label, source) pairs are not in this dataset",
            file=log,
        )
    merge.limit = next((plan.limit for plan in plans if plan is not None), None)
    candidates: list[Candidate] = []
    for i, (src, plan) in enumerate(zip(srcs, plans, strict=True)):
        candidates += _candidates(i, src, plan, merge)
    index = DedupIndex(max_distance)
    taken: Counter[str] = Counter()
    for candidate in sorted(candidates, key=Candidate.turn):
        label, row = candidate.label, candidate.row
        sha1, phash = str(row.get("sha1") or row["url"]), row.get("phash")  # checked on load
        merge.images.setdefault(label, [])
        if index.find_exact(sha1) is not None:
            merge.removed[label]["duplicate"] += 1
        elif phash is not None and index.find_near(phash) is not None:
            merge.removed[label]["near_duplicate"] += 1
        elif merge.limit is not None and taken[label] >= merge.limit:
            merge.removed[label]["over_limit"] += 1
        else:
            index.add(sha1, phash, label)
            taken[label] += 1
            merge.images[label].append(candidate.path)
            merge.chosen[candidate.path] = candidate
            merge.srcs[candidate.src_index].taken += 1
    merge.images = dict(sorted(merge.images.items()))
    return merge


def merged_row(candidate: Candidate, path: str) -> dict[str, Any]:
    """A merged manifest line: the crawl's line, `path` in the dataset, and where it came from."""
    row = {name: candidate.row.get(name) for name in FIELDS}
    return {
        **row,
        "path": path,
        "src": str(candidate.src),
        "src_path": candidate.row["path"],
        "shard": candidate.shard,
    }
