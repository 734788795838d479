"""Per-label counts from the manifest, for the end-of-crawl report."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cgan.scraping.manifest import KEPT, latest_by_url, read_manifest
from cgan.scraping.tables import format_table


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


def render(summaries: list[LabelSummary], failed_sources: Sequence[str] = ()) -> str:
    """The crawl report as a table plus a line for each label that fell short.

    A label is only said to have run out of images when every source answered;
    otherwise the note names the sources that failed (stderr says why).
    """
    rows = []
    for s in summaries:
        top = ", ".join(f"{reason}={n}" for reason, n in s.reasons.most_common(4))
        rows.append([s.label, s.kept, s.limit, s.kept_this_run, s.rejected, top or "-"])
    text = format_table(["label", "kept", "limit", "new", "rejected", "top reasons"], rows)
    if failed_sources:
        why = f"{', '.join(failed_sources)} failed (see stderr); run again to retry"
    else:
        why = "the sources ran out of usable images (try more --sources or a broader label=query)"
    notes = [f"note: {s.label} has {s.kept}/{s.limit}: {why}" for s in summaries if s.short]
    return "\n".join([text, *notes])


def write_json(path: Path, summaries: list[LabelSummary], extra: dict[str, Any]) -> None:
    """Save the report next to the manifest for scripts and the dashboard."""
    labels = {}
    for s in summaries:
        data = asdict(s)
        data["reasons"] = dict(s.reasons.most_common())
        data.pop("label")
        labels[s.label] = data
    path.write_text(json.dumps({**extra, "labels": labels}, indent=2) + "\n", encoding="utf-8")
