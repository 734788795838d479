"""Run the selected spiders in one Scrapy process and report per label.

This is ``scrapy crawl`` for several spiders at once, with settings taken
from ``scraping/settings.py`` and the command line; see :mod:`scraping.cli`.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from scraping.labels import LabelSpec
from scraping.manifest import utc_now

if TYPE_CHECKING:
    from scrapy.settings import Settings

try:  # advisory lock so two crawls don't write one manifest at once
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class CrawlError(Exception):
    """A problem with the request itself (reported as a usage error)."""


@dataclass
class CrawlOptions:
    """Everything ``cgan-scrape`` (crawl) was asked to do."""

    labels: list[LabelSpec]
    limit: int
    out: Path
    sources: list[str]
    overrides: dict[str, str] = field(default_factory=dict)
    resume: bool = True
    retry_failed: bool = False


def build_settings(options: CrawlOptions) -> Settings:
    """Project settings, then the CLI's values on top (like ``scrapy crawl -s``)."""
    from scrapy.settings import Settings

    settings = Settings()
    settings.setmodule("scraping.settings", priority="project")
    values = {
        "CGAN_LABELS": [spec.encode() for spec in options.labels],
        "CGAN_LIMIT": options.limit,
        "CGAN_RESUME": options.resume,
        "CGAN_RETRY_FAILED": options.retry_failed,
        "IMAGES_STORE": str(options.out),
    }
    settings.setdict(values, priority="cmdline")
    for name, value in options.overrides.items():
        _check_type(name, value, settings.get(name))
    settings.setdict(options.overrides, priority="cmdline")
    return settings


def _check_type(name: str, value: str, current: object) -> None:
    """Reject ``-s NAME=VALUE`` that Scrapy would only choke on mid-crawl."""
    try:
        if isinstance(current, bool):
            if value.strip().lower() not in {"0", "1", "true", "false"}:
                raise ValueError
        elif isinstance(current, int):
            int(value)
        elif isinstance(current, float):
            float(value)
    except ValueError:
        kind = {"bool": "true or false", "int": "a whole number"}.get(type(current).__name__)
        raise CrawlError(f"-s {name}={value!r}: expected {kind or 'a number'}") from None


@contextlib.contextmanager
def output_lock(out: Path) -> Iterator[None]:
    """Hold ``OUT/.jobs/lock`` for the whole crawl; fail fast if another crawl has it."""
    jobs = out / ".jobs"
    jobs.mkdir(parents=True, exist_ok=True)
    handle: IO[str] = (jobs / "lock").open("w")
    try:
        if fcntl is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise CrawlError(f"another cgan-scrape is already writing to {out}") from None
        yield
    finally:
        handle.close()


def run_crawl(
    options: CrawlOptions, settings: Settings | None = None, report: IO[str] | None = None
) -> int:
    """Crawl, print the per-label table; 0 done, 130 interrupted, 1 a spider failed."""
    from scrapy.crawler import CrawlerProcess

    from scraping.spiders import SOURCES
    from scraping.summary import render, summarise, write_json

    report = report or sys.stdout
    settings = settings or build_settings(options)
    with output_lock(options.out):
        if not options.resume:
            for source in options.sources:
                shutil.rmtree(options.out / ".jobs" / source, ignore_errors=True)
        process = CrawlerProcess(settings)
        crawlers = []
        for source in options.sources:
            crawler = process.create_crawler(SOURCES[source])
            process.crawl(crawler)
            crawlers.append(crawler)
        started = utc_now()
        process.start()

    finish = {
        source: (crawler.stats.get_value("finish_reason") if crawler.stats else None)
        for source, crawler in zip(options.sources, crawlers, strict=True)
    }
    labels = [spec.name for spec in options.labels]
    summaries = summarise(options.out, labels, options.limit, since=started)
    print(render(summaries), file=report)
    write_json(
        options.out / "summary.json",
        summaries,
        {"started": started, "finished": utc_now(), "sources": finish},
    )
    if any(reason == "shutdown" for reason in finish.values()):
        print(
            "cgan-scrape: interrupted; the manifest is consistent, "
            "run the same command again to resume",
            file=sys.stderr,
        )
        return 130
    failed = [source for source, reason in finish.items() if reason != "finished"]
    if failed:
        print(f"cgan-scrape: sources that did not finish: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
