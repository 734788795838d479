"""Where a resumed crawl should start paging, per label.

Moving the cursor to the next page as soon as a page is parsed would lose
candidates when the crawl stops with that page's items still undecided
(waiting for a slot, dropped at Ctrl-C, or skipped because the label filled
up before a higher ``--limit`` run). So the resume point is the first page
that still has undecided items, and only when every page is settled, the
next unfetched page. Re-fetching a page is cheap: URLs already in the
manifest are skipped without a download.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

Cursor = dict[str, Any]


@dataclass(eq=False)
class PageTrack:
    """One fetched page and how many of its items are still undecided."""

    cursor: Cursor
    open_items: int = 0
    incomplete: bool = False

    @property
    def settled(self) -> bool:
        return self.open_items == 0 and not self.incomplete


class PageLedger:
    """Per-label page tracks plus the frontier (next unfetched page, None when done)."""

    def __init__(self) -> None:
        self._tracks: defaultdict[str, list[PageTrack]] = defaultdict(list)
        self._frontier: dict[str, Cursor | None] = {}
        self._items: dict[int, tuple[str, PageTrack]] = {}

    def open_page(self, label: str, cursor: Cursor) -> PageTrack:
        """Start tracking a page fetched with ``cursor``."""
        track = PageTrack(dict(cursor))
        self._tracks[label].append(track)
        return track

    def add_item(self, label: str, track: PageTrack, token: int) -> None:
        """An item from ``track`` went into the pipelines."""
        track.open_items += 1
        self._items[token] = (label, track)

    def close_page(self, label: str, next_cursor: Cursor | None) -> None:
        """All of a page's items were handed out; remember where the next page is."""
        self._frontier[label] = None if next_cursor is None else dict(next_cursor)

    def settle(self, token: int, decided: bool) -> str | None:
        """An item left the pipelines, recorded (``decided``) or not; returns its label."""
        entry = self._items.pop(token, None)
        if entry is None:
            return None
        label, track = entry
        track.open_items -= 1
        if not decided:
            track.incomplete = True
        return label

    def resume_cursor(self, label: str) -> Cursor | None:
        """Cursor to restart ``label`` from; None means the source has no more."""
        tracks = self._tracks[label]
        while tracks and tracks[0].settled and len(tracks) > 1:
            tracks.pop(0)  # forget settled history, keep the latest for the frontier check
        for track in tracks:
            if not track.settled:
                return track.cursor
        return self._frontier.get(label)
