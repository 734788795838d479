"""How each source's part of a crawl ended: finished, failed (and why), interrupted.

Scrapy's ``finish_reason`` is ``finished`` for a spider whose every search
failed because its API could not be reached, so the spiders record a failure
in their crawler's stats (:func:`mark_failed`) and the runner reads it back
with :func:`source_outcome` for the report, ``summary.json`` and the exit code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scrapy.statscollectors import StatsCollector

FINISHED = "finished"
FAILED = "failed"
INTERRUPTED = "interrupted"


def pages_key(source: str) -> str:
    """Stats key counting the search pages a source answered."""
    return f"cgan/{source}/pages"


def failed_key(source: str) -> str:
    """Stats key holding why a source failed (first reason wins)."""
    return f"cgan/{source}/failed"


def mark_failed(stats: StatsCollector, source: str, reason: str) -> None:
    """Record that ``source`` failed; the first reason is kept, it is usually the cause."""
    if stats.get_value(failed_key(source)) is None:
        stats.set_value(failed_key(source), reason)


@dataclass
class SourceOutcome:
    """One source's result for the report and ``summary.json``."""

    source: str
    status: str
    reason: str | None = None
    pages: int = 0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("source")
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
    return SourceOutcome(source, str(finish or "not started"), pages=pages)


def nothing_gathered(outcomes: list[SourceOutcome]) -> bool:
    """True when a source failed and no source answered a single search page."""
    return any(o.status == FAILED for o in outcomes) and not any(o.pages for o in outcomes)
