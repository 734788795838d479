"""Run the selected spiders in one Scrapy process and report per label and source.

This is ``scrapy crawl`` for several spiders at once, with settings taken
from ``scraping/settings.py`` and the command line; see :mod:`scraping.cli`.
Scrapy's log goes to ``OUT/crawl.log``; the terminal gets the per-label table
(stdout) and the project's own short lines (stderr, see :mod:`scraping.terminal`).
"""

from __future__ import annotations

import contextlib
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from cgan.common.errors import ScrapeError
from cgan.scraping.labels import LabelSpec
from cgan.scraping.manifest import utc_now
from cgan.scraping.outcomes import FAILED, FINISHED, INTERRUPTED, SourceOutcome, nothing_gathered

if TYPE_CHECKING:
    from scrapy.settings import Settings

try:  # advisory lock so two crawls don't write one manifest at once
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


LOG_NAME = "crawl.log"


class CrawlError(ScrapeError):
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
    settings.setmodule("cgan.scraping.settings", priority="project")
    values = {
        "CGAN_LABELS": [spec.encode() for spec in options.labels],
        "CGAN_LIMIT": options.limit,
        "CGAN_RESUME": options.resume,
        "CGAN_RETRY_FAILED": options.retry_failed,
        "IMAGES_STORE": str(options.out),
        "LOG_FILE": str(options.out / LOG_NAME),  # -s LOG_FILE=... still wins
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
    """Crawl, print the per-label table; 0 done, 130 interrupted, 1 nothing gathered.

    A source that could not be reached fails alone (exit 0, one line on
    stderr) while another one answers; when none answered a single search
    page, or a source did not finish, the exit code is 1.
    """
    from scrapy.crawler import CrawlerProcess

    from cgan.scraping.outcomes import source_outcome
    from cgan.scraping.spiders import SOURCES
    from cgan.scraping.summary import render, summarise, write_json
    from cgan.scraping.terminal import terminal_lines

    report = report or sys.stdout
    settings = settings or build_settings(options)
    with output_lock(options.out):
        if not options.resume:
            for source in options.sources:
                shutil.rmtree(options.out / ".jobs" / source, ignore_errors=True)
        process = CrawlerProcess(settings)  # from here on, Scrapy logs to LOG_FILE
        with terminal_lines(settings.get("LOG_LEVEL") or "INFO"):
            crawlers = []
            for source in options.sources:
                crawler = process.create_crawler(SOURCES[source])
                process.crawl(crawler)
                crawlers.append(crawler)
            started = utc_now()
            process.start()

    outcomes = [
        source_outcome(source, crawler.stats)
        for source, crawler in zip(options.sources, crawlers, strict=True)
    ]
    failed = [o.source for o in outcomes if o.status == FAILED]
    labels = [spec.name for spec in options.labels]
    summaries = summarise(options.out, labels, options.limit, since=started)
    print(render(summaries, failed_sources=failed), file=report)
    write_json(
        options.out / "summary.json",
        summaries,
        {
            "started": started,
            "finished": utc_now(),
            "sources": {o.source: o.to_json() for o in outcomes},
        },
    )
    return report_outcomes(outcomes, settings.get("LOG_FILE"))


def report_outcomes(outcomes: list[SourceOutcome], log_file: str | None) -> int:
    """One stderr line per source that failed or stopped early; the exit code."""
    log_hint = f" (Scrapy's log: {log_file})" if log_file else ""
    for outcome in outcomes:
        if outcome.status == FAILED:
            print(f"cgan-scrape: {outcome.source} failed: {outcome.reason}", file=sys.stderr)
    if any(o.status == INTERRUPTED for o in outcomes):
        print(
            "cgan-scrape: interrupted; the manifest is consistent, "
            "run the same command again to resume",
            file=sys.stderr,
        )
        return 130
    if nothing_gathered(outcomes):
        print(f"cgan-scrape: no source answered; nothing was gathered{log_hint}", file=sys.stderr)
        return 1
    unfinished = [o.source for o in outcomes if o.status not in (FINISHED, FAILED)]
    if unfinished:
        print(
            f"cgan-scrape: sources that did not finish: {', '.join(unfinished)}{log_hint}",
            file=sys.stderr,
        )
        return 1
    return 0
