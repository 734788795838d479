"""Run the selected spiders in one Scrapy process, show progress, report per label and source.

This is `scrapy crawl` for several spiders at once, with settings taken from settings.py
and the command line (cli.py). Scrapy's log goes to `OUT/crawl.log`; the terminal gets
the progress display and the project's own short lines (stderr, report.py) and at the end
the per-label table (stdout).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
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
SUMMARY_NAME = "summary.json"


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
    checked = {
        name: _check_type(name, value, settings.get(name))
        for name, value in options.overrides.items()
    }
    settings.setdict(checked, priority="cmdline")
    return settings


# Settings that are a time in seconds: a negative or endless one only trips an assertion
# deep in Scrapy or Twisted, mid-crawl.
_DURATION = re.compile(r"TIMEOUT|DELAY|BACKOFF|WAIT|RETRY_AFTER|MARGIN|RESET")


def _check_type(name: str, value: str, current: object) -> object:
    """Refuse `-s NAME=VALUE` that Scrapy would only choke on mid-crawl; the value to set
    (a dict or list setting given as JSON, parsed)."""
    from scrapy.settings import BaseSettings

    if name == "LOG_FILE":
        _check_log_file(value)
        return value
    if isinstance(current, BaseSettings | dict | list | tuple):
        return _structured(name, value, isinstance(current, BaseSettings | dict))
    try:
        if isinstance(current, bool):
            if value.strip().lower() not in {"0", "1", "true", "false"}:
                raise ValueError
            return value
        if isinstance(current, int):
            number: float = int(value)
        elif isinstance(current, float):
            number = float(value)
        else:
            return value
    except ValueError:
        kind = {"bool": "true or false", "int": "a whole number"}.get(type(current).__name__)
        raise CrawlError(f"-s {name}={value!r}: expected {kind or 'a number'}") from None
    if _DURATION.search(name) and not 0 <= number < math.inf:
        raise CrawlError(f"-s {name}={value!r}: a time in seconds must be 0 or more, and finite")
    return value


def _structured(name: str, value: str, is_dict: bool) -> object:
    """A dict setting must be a JSON object; a list one a JSON array or comma separated."""
    if not is_dict and not value.lstrip().startswith("["):
        return value  # Scrapy splits a list setting at commas
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError):
        parsed = None
    if not isinstance(parsed, dict if is_dict else list):
        expected = 'a JSON object, e.g. {"name": 1}' if is_dict else "a JSON array or a, b, c"
        raise CrawlError(f"-s {name}={value!r}: expected {expected}")
    return parsed


def _check_log_file(value: str) -> None:
    """-s LOG_FILE: Scrapy opens it after the crawl began; a missing folder is said now."""
    if not value:
        return  # Scrapy's log goes to stderr
    path = Path(value)
    if path.is_dir():
        raise CrawlError(f"-s LOG_FILE={value!r}: is a folder, not a file")
    if not path.parent.is_dir():
        raise CrawlError(f"-s LOG_FILE={value!r}: no folder {path.parent}; create it first")


def check_output_folder(out: Path, own_log: bool = True) -> None:
    """Refuse an output folder whose state files or class folders are links out of it: the
    crawl appends to, truncates and deletes in them. `own_log`: crawl.log is OUT's."""
    from cgan.scraping.folders import class_folders, refuse_link_out
    from cgan.scraping.ratelimit import BUDGET_FILE
    from cgan.scraping.shards import SHARD_FILE

    names = [MANIFEST_NAME, SUMMARY_NAME, SHARD_FILE, ".jobs", ".jobs/lock", f".jobs/{BUDGET_FILE}"]
    for name in names + ([LOG_NAME] if own_log else []):
        refuse_link_out(out / name, out, "state file")
    for root, folders, files in os.walk(out / ".jobs"):  # Scrapy's queues (JOBDIR)
        for name in folders + files:
            refuse_link_out(Path(root) / name, out, "state file")
    if out.is_dir():
        for folder in class_folders(out):
            refuse_link_out(folder, out, "class folder")


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
    check_output_folder(options.out, own_log="LOG_FILE" not in options.overrides)
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
        options.out / SUMMARY_NAME,
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
    write_json(options.out / SUMMARY_NAME, [], extra)
    print(
        f"{PREFIX}: shard {share.shard} has no (label, source) pair it can crawl "
        f"({len(share.pairs)} of {len(share.labels) * len(share.sources)} dealt to it); "
        f"{options.out} is left as an empty shard folder",
        file=sys.stderr,
    )
    return 0
