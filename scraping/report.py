"""What a crawl tells its user: terminal lines, per-source outcomes, per-label summary.

- Terminal lines. Scrapy's log (settings, stats dumps, every retry, tracebacks) goes to
  `OUT/crawl.log`; on the terminal it buried the few lines a person needs among hundreds.
  `terminal_lines` shows only records of the project's loggers (`cgan.scraping.*`, which
  the spiders log to as well) as `cgan-scrape: ...` without tracebacks, plus Scrapy's
  answer to Ctrl-C, without which a person would press it again and stop the crawl hard.
- Per-source outcomes. Scrapy's `finish_reason` is `finished` for a spider whose every
  search failed because its API could not be reached, so the spiders record a failure in
  their crawler's stats (`mark_failed`) and the runner reads it back (`source_outcome`)
  for the report, `summary.json` and the exit code.
- Per-label summary: kept, limit, new and rejections by reason, from the manifest, as a
  table on stdout and as `OUT/summary.json`.

Nothing here imports Scrapy, so `cgan-scrape build` and `verify` can share the tables.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from tqdm import tqdm

from cgan.common.files import write_text_atomic
from cgan.scraping.manifest import KEPT, latest_by_url, read_manifest

if TYPE_CHECKING:
    from scrapy.statscollectors import StatsCollector

PREFIX = "cgan-scrape"
PROJECT_LOGGER = "cgan.scraping"
_SHUTDOWN_LOGGER = "scrapy.crawler"  # "Received SIGINT, shutting down gracefully..."

FINISHED = "finished"
FAILED = "failed"
INTERRUPTED = "interrupted"
STOPPED = "stopped"  # a rate limit or daily budget is spent; a later run carries on


# --- plain-text tables ----------------------------------------------------------------------


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned text columns, numbers right-aligned, with a rule under the header."""
    cells = [[str(value) for value in row] for row in rows]
    widths = [len(header) for header in headers]
    for row in cells:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=False)]
    numeric = [
        all(isinstance(row[i], int | float) for row in rows) if rows else False
        for i in range(len(headers))
    ]

    def line(values: Sequence[str]) -> str:
        parts = [
            value.rjust(width) if is_num else value.ljust(width)
            for value, width, is_num in zip(values, widths, numeric, strict=False)
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(list(headers)), rule, *(line(row) for row in cells)])


# --- terminal lines -------------------------------------------------------------------------


def log_file_only() -> dict[str, Any]:
    """`extra=` for a line the terminal shows another way (progress, the final report).

    A fresh dict each call: Scrapy's spider logger adds to the one it is given.
    """
    return {"terminal": False}


class TerminalFormatter(logging.Formatter):
    """`cgan-scrape: [warning: ]message` on one line, never a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        text = " ".join(record.getMessage().split())
        level = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
        return f"{PREFIX}: {level}{text}"


class _TerminalHandler(logging.StreamHandler):
    """Writes through tqdm, so that a line never lands in the middle of a progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=self.stream)
        except Exception:
            self.handleError(record)


def _for_terminal(record: logging.LogRecord) -> bool:
    if record.name == _SHUTDOWN_LOGGER:
        return str(record.msg).startswith("Received ")
    return bool(getattr(record, "terminal", True))


@contextlib.contextmanager
def terminal_lines(level: str | int = "INFO", stream: IO[str] | None = None) -> Iterator[None]:
    """Show the project's log lines at `level` (at least INFO) while the block runs."""
    numeric = logging.getLevelName(level) if isinstance(level, str) else level
    handler = _TerminalHandler(stream or sys.stderr)
    handler.setLevel(max(logging.INFO, numeric if isinstance(numeric, int) else logging.INFO))
    handler.setFormatter(TerminalFormatter())
    handler.addFilter(_for_terminal)
    loggers = [logging.getLogger(name) for name in (PROJECT_LOGGER, _SHUTDOWN_LOGGER)]
    previous = [logger.level for logger in loggers]
    for logger in loggers:
        if logger.getEffectiveLevel() > handler.level:  # Scrapy lowers the root; others may not
            logger.setLevel(handler.level)
        logger.addHandler(handler)
    try:
        yield
    finally:
        for logger, level in zip(loggers, previous, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)


# --- per-source outcomes --------------------------------------------------------------------


def pages_key(source: str) -> str:
    """Stats key counting the search pages a source answered."""
    return f"cgan/{source}/pages"


def failed_key(source: str) -> str:
    """Stats key holding why a source failed."""
    return f"cgan/{source}/failed"


def mark_failed(stats: StatsCollector, source: str, reason: str) -> None:
    """Record that `source` failed; the first reason is kept, it is usually the cause."""
    if stats.get_value(failed_key(source)) is None:
        stats.set_value(failed_key(source), reason)


def mark_stopped(
    stats: StatsCollector, source: str, reason: str, resume_after: str | None = None
) -> None:
    """Record that `source` stopped early because a limit is spent (first reason kept)."""
    if stats.get_value(f"cgan/{source}/stopped") is None:
        stats.set_value(f"cgan/{source}/stopped", reason)
        stats.set_value(f"cgan/{source}/resume_after", resume_after)


@dataclass
class SourceOutcome:
    """One source's result for the report and `summary.json`."""

    source: str
    status: str
    reason: str | None = None
    pages: int = 0
    resume_after: str | None = None  # STOPPED: when the spent limit frees up, if known

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("source")
        if data["resume_after"] is None:
            data.pop("resume_after")
        return data


def source_outcome(source: str, stats: StatsCollector | None) -> SourceOutcome:
    """Read one source's outcome from its crawler's stats after the crawl."""
    if stats is None:
        return SourceOutcome(source, "not started")
    pages = int(stats.get_value(pages_key(source), 0))
    finish = stats.get_value("finish_reason")
    if finish == "shutdown":
        return SourceOutcome(source, INTERRUPTED, pages=pages)
    reason = stats.get_value(failed_key(source))
    if reason is not None:
        return SourceOutcome(source, FAILED, str(reason), pages)
    stopped = stats.get_value(f"cgan/{source}/stopped")
    if stopped is not None:
        after = stats.get_value(f"cgan/{source}/resume_after")
        return SourceOutcome(source, STOPPED, str(stopped), pages, after and str(after))
    return SourceOutcome(source, str(finish or "not started"), pages=pages)


def nothing_gathered(outcomes: list[SourceOutcome]) -> bool:
    """True when a source failed and no source answered a single search page."""
    return any(o.status == FAILED for o in outcomes) and not any(o.pages for o in outcomes)


def report_outcomes(
    outcomes: list[SourceOutcome], log_file: str | None, stream: IO[str] | None = None
) -> int:
    """One line per source that failed or stopped early, and the crawl's exit code.

    0 when done (a source that failed alone or stopped at a spent limit included), 130
    when interrupted, 1 when no source answered a single search page or a source did not
    finish.
    """
    stream = stream or sys.stderr
    log_hint = f" (Scrapy's log: {log_file})" if log_file else ""
    for outcome in outcomes:
        if outcome.status == FAILED:
            print(f"{PREFIX}: {outcome.source} failed: {outcome.reason}", file=stream)
        elif outcome.status == STOPPED:
            when = f"after {outcome.resume_after}" if outcome.resume_after else "later"
            print(
                f"{PREFIX}: {outcome.source} stopped: {outcome.reason}; "
                f"run the same command again {when} to continue",
                file=stream,
            )
    if any(o.status == INTERRUPTED for o in outcomes):
        print(
            f"{PREFIX}: interrupted; the manifest is consistent, "
            "run the same command again to resume",
            file=stream,
        )
        return 130
    if nothing_gathered(outcomes):
        print(f"{PREFIX}: no source answered; nothing was gathered{log_hint}", file=stream)
        return 1
    unfinished = [o.source for o in outcomes if o.status not in (FINISHED, FAILED, STOPPED)]
    if unfinished:
        print(
            f"{PREFIX}: sources that did not finish: {', '.join(unfinished)}{log_hint}", file=stream
        )
        return 1
    return 0


# --- per-label summary ----------------------------------------------------------------------


@dataclass
class LabelSummary:
    """What one label ended up with."""

    label: str
    limit: int
    kept: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    kept_this_run: int = 0

    @property
    def short(self) -> bool:
        return self.kept < self.limit


def summarise(
    out_dir: Path, labels: list[str], limit: int, since: str | None = None
) -> list[LabelSummary]:
    """Count kept images (still on disk) and rejections per reason for each label."""
    summaries = {label: LabelSummary(label, limit) for label in labels}
    for record in latest_by_url(read_manifest(out_dir)).values():
        summary = summaries.get(record.get("label"))
        if summary is None:
            continue
        if record["status"] == KEPT:
            if (out_dir / (record.get("path") or "")).is_file():
                summary.kept += 1
                if since and record.get("time", "") >= since:
                    summary.kept_this_run += 1
        else:
            summary.rejected += 1
            summary.reasons[record.get("reason") or "unknown"] += 1
    return list(summaries.values())


def render(
    summaries: list[LabelSummary],
    failed_sources: Sequence[str] = (),
    stopped_sources: Sequence[str] = (),
) -> str:
    """The crawl report as a table plus a line for each label that fell short.

    A label is only said to have run out of images when every source answered and
    finished; otherwise the note names the sources that failed or stopped at a spent
    limit (stderr says why and when to run again).
    """
    rows = []
    for s in summaries:
        top = ", ".join(f"{reason}={n}" for reason, n in s.reasons.most_common(4))
        rows.append([s.label, s.kept, s.limit, s.kept_this_run, s.rejected, top or "-"])
    text = format_table(["label", "kept", "limit", "new", "rejected", "top reasons"], rows)
    if failed_sources or stopped_sources:
        parts = [f"{', '.join(failed_sources)} failed"] if failed_sources else []
        if stopped_sources:
            parts.append(f"{', '.join(stopped_sources)} stopped at a spent limit")
        why = f"{' and '.join(parts)} (see stderr); run again to retry"
    else:
        why = "the sources ran out of usable images (try more --sources or a broader label=query)"
    notes = [f"note: {s.label} has {s.kept}/{s.limit}: {why}" for s in summaries if s.short]
    return "\n".join([text, *notes])


def write_json(path: Path, summaries: list[LabelSummary], extra: dict[str, Any]) -> None:
    """Save the report next to the manifest, for scripts and the dashboard."""
    labels = {}
    for s in summaries:
        data = asdict(s)
        data["reasons"] = dict(s.reasons.most_common())
        data.pop("label")
        labels[s.label] = data
    write_text_atomic(path, json.dumps({**extra, "labels": labels}, indent=2) + "\n")
