"""Run the selected spiders in one Scrapy process, show progress, report per label and source.

This is `scrapy crawl` for several spiders at once, with settings taken from settings.py
and the command line (cli.py). Scrapy's log goes to `OUT/crawl.log`; the terminal gets
the progress display and the project's own short lines (stderr, report.py) and at the end
the per-label table (stdout).
"""

from __future__ import annotations

import contextlib
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from cgan.common.errors import ScrapeError
from cgan.common.progress import Progress
from cgan.scraping.items import LabelSpec
from cgan.scraping.manifest import KEPT, MANIFEST_NAME, Manifest, utc_now
from cgan.scraping.report import FAILED, PREFIX, STOPPED, report_outcomes
from cgan.scraping.shards import ShardPlan, claim_folder, describe

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.settings import Settings

    from cgan.scraping.state import CrawlState

try:  # an advisory lock, so that two crawls don't write one manifest at once
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


LOG_NAME = "crawl.log"


class CrawlError(ScrapeError):
    """A problem with the request itself (reported as a usage error)."""


@dataclass
class CrawlOptions:
    """Everything `cgan-scrape` (crawl) was asked to do."""

    labels: list[LabelSpec]
    limit: int
    out: Path
    sources: list[str]
    overrides: dict[str, str] = field(default_factory=dict)
    resume: bool = True
    retry_failed: bool = False
    progress: bool = True
    # --shard K/N: this machine's share; `labels` and `sources` are then that share's.
    shard: ShardPlan | None = None

    def labels_of(self, source: str) -> list[LabelSpec]:
        """The labels `source` searches for in this run (a shard's own pairs only)."""
        if self.shard is None:
            return list(self.labels)
        names = set(self.shard.labels_of(source))
        return [spec for spec in self.labels if spec.name in names]


def build_settings(options: CrawlOptions) -> Settings:
    """Project settings, then the command line's values on top (like `scrapy crawl -s`)."""
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
    """Refuse `-s NAME=VALUE` that Scrapy would only choke on mid-crawl."""
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
    """Hold `OUT/.jobs/lock` for the whole crawl; fail fast if another crawl has it."""
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


class CrawlProgress:
    """Kept/limit per label and the rejections so far, live, for all sources together.

    It listens to Scrapy's item_scraped signal, which every decided item reaches after the
    manifest pipeline has counted it, and reads the kept counts from the output folder's
    shared state, so images kept by an earlier run count from the start.
    """

    def __init__(
        self,
        state: CrawlState,
        labels: list[str],
        limit: int,
        enabled: bool = True,
        stream: IO[str] | None = None,
    ) -> None:
        self.state, self.labels, self.limit = state, labels, limit
        self.rejected = 0
        self.display = Progress(
            PREFIX,
            total=limit * len(labels),
            unit="images",
            initial=self._kept(),
            enabled=enabled,
            stream=stream,
        )
        self._show()

    def watch(self, crawler: Crawler) -> None:
        from scrapy import signals

        crawler.signals.connect(self._decided, signal=signals.item_scraped)

    def _decided(self, item: Any, **_: Any) -> None:
        from itemadapter import ItemAdapter

        if ItemAdapter(item).get("status") != KEPT:
            self.rejected += 1
        self._show()
        gained = self._kept() - self.display.done
        if gained or self.display.live:  # 0 redraws a bar; a log line only says something new
            self.display.advance(gained)

    def _kept(self) -> int:
        return sum(min(self.state.quota.kept[label], self.limit) for label in self.labels)

    def _show(self) -> None:
        kept = {label: f"{self.state.quota.kept[label]}/{self.limit}" for label in self.labels}
        self.display.status({**kept, "rejected": self.rejected})

    def close(self) -> None:
        self.display.close()


def run_crawl(
    options: CrawlOptions, settings: Settings | None = None, report: IO[str] | None = None
) -> int:
    """Crawl, print the per-label table; 0 done, 130 interrupted, 1 nothing gathered.

    A source that could not be reached fails alone (exit 0, one line on stderr) while
    another one answers; when none answered a single search page, or a source did not
    finish, the exit code is 1.
    """
    from cgan.scraping.report import render, source_outcome, summarise, terminal_lines, write_json

    report = report or sys.stdout
    labels = [spec.name for spec in options.labels]
    with output_lock(options.out):
        for line in claim_folder(options.out, options.shard):
            print(f"{PREFIX}: {line}", file=sys.stderr)
        if not options.sources:
            return _no_work(options)
        if options.shard is not None:
            own = [pair for pair in options.shard.pairs if pair[1] in options.sources]
            print(
                f"{PREFIX}: shard {options.shard.shard}: {len(own)} (label, source) pairs: "
                f"{describe(own)}",
                file=sys.stderr,
            )
        from scrapy.crawler import CrawlerProcess

        from cgan.scraping.state import CrawlState

        settings = settings or build_settings(options)
        if not options.resume:
            for source in options.sources:
                shutil.rmtree(options.out / ".jobs" / source, ignore_errors=True)
        process = CrawlerProcess(settings)  # from here on, Scrapy logs to LOG_FILE
        with terminal_lines(settings.get("LOG_LEVEL") or "INFO"):
            # Read the manifest now (the pipelines share this state), so that the display
            # starts from what earlier runs kept.
            state = CrawlState.for_settings(settings)
            progress = CrawlProgress(state, labels, options.limit, options.progress)
            crawlers = []
            for source in options.sources:
                crawler = process.create_crawler(source)  # by name, as `scrapy crawl` does
                progress.watch(crawler)
                if options.shard is None:
                    process.crawl(crawler)  # every label, from CGAN_LABELS
                else:  # this shard's labels of this source, as a spider argument (-a labels=)
                    process.crawl(crawler, labels=[s.encode() for s in options.labels_of(source)])
                crawlers.append(crawler)
            started = utc_now()
            try:
                process.start()
            finally:
                progress.close()

    outcomes = [
        source_outcome(source, crawler.stats)
        for source, crawler in zip(options.sources, crawlers, strict=True)
    ]
    failed = [o.source for o in outcomes if o.status == FAILED]
    stopped = [o.source for o in outcomes if o.status == STOPPED]
    summaries = summarise(options.out, labels, options.limit, since=started)
    print(render(summaries, failed_sources=failed, stopped_sources=stopped), file=report)
    write_json(
        options.out / "summary.json",
        summaries,
        {
            "started": started,
            "finished": utc_now(),
            "sources": {o.source: o.to_json() for o in outcomes},
            **_shard_json(options),
        },
    )
    return report_outcomes(outcomes, settings.get("LOG_FILE"))


def _shard_json(options: CrawlOptions) -> dict[str, Any]:
    return {} if options.shard is None else {"shard": str(options.shard.shard)}


def _no_work(options: CrawlOptions) -> int:
    """A shard with no pair to crawl (more shards than pairs, or only pixabay's without a
    key): leave an empty, valid crawl folder.

    Exit 0, so that a script starting `--shard K/N` on every machine needs no special case;
    build merges the empty folder like any other shard.
    """
    from cgan.scraping.report import write_json

    share = options.shard
    assert share is not None, "an unsharded crawl always has a source"
    manifest = Manifest(options.out / MANIFEST_NAME)
    manifest.open()  # creates the empty manifest that marks a crawl folder
    manifest.close()
    now = utc_now()
    extra = {"started": now, "finished": now, "sources": {}, **_shard_json(options)}
    write_json(options.out / "summary.json", [], extra)
    print(
        f"{PREFIX}: shard {share.shard} has no (label, source) pair it can crawl "
        f"({len(share.pairs)} of {len(share.labels) * len(share.sources)} dealt to it); "
        f"{options.out} is left as an empty shard folder",
        file=sys.stderr,
    )
    return 0
