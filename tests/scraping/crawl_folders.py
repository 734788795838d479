"""Crawl output folders written directly, as a crawl leaves them: for the tests of what
reads them (the build, the merge) without running Scrapy."""

from __future__ import annotations

import json
from pathlib import Path

from cgan.scraping.imagecheck import analyse, sha1_of
from cgan.scraping.manifest import MANIFEST_NAME, make_record
from cgan.scraping.shards import ShardPlan, claim_folder
from tests.scraping.test_scrape_units import LIMITS, _raw


def crawl_folder(
    root: Path, name: str, images: list[tuple[str, str, bytes]], shard: ShardPlan | None = None
) -> Path:
    """A crawl output folder as the crawl leaves it: files, manifest lines, shard record."""
    folder = root / name
    folder.mkdir()
    if shard is not None:  # first, as the crawl does
        claim_folder(folder, shard)
    lines = []
    for i, (label, source, body) in enumerate(images):
        facts = analyse(body, "image/jpeg", LIMITS, _raw)
        path = f"{label}/{sha1_of(body)}.jpg"
        (folder / label).mkdir(exist_ok=True)
        (folder / path).write_bytes(body)
        record = make_record(
            url=f"https://example.org/{name}/{i}.jpg",
            label=label,
            source=source,
            licence="CC BY 4.0",
            status="kept",
            sha1=facts.sha1,
            phash=facts.phash,
            path=path,
        )
        lines.append(json.dumps(record))
    (folder / MANIFEST_NAME).write_text("".join(line + "\n" for line in lines))
    return folder
