"""Per-label download slots that keep the kept count at or under ``--limit``.

Downloads run concurrently, so "stop at 500" needs bookkeeping: an item may
start downloading only while ``kept + in_flight < limit``. Others wait; when a
download is rejected its slot goes to the next waiter, and once the label is
full every waiter is told to give up. Kept can therefore never pass the limit,
and nothing is downloaded that could not be kept.
"""

from __future__ import annotations

from collections import defaultdict, deque

from twisted.internet.defer import Deferred, succeed


class LabelQuota:
    """Kept counts, in-flight reservations and waiters, per label."""

    def __init__(self) -> None:
        self.limits: dict[str, int] = {}
        self.kept: defaultdict[str, int] = defaultdict(int)
        self.in_flight: defaultdict[str, int] = defaultdict(int)
        self._waiters: defaultdict[str, deque[Deferred[bool]]] = defaultdict(deque)
        self._holders: dict[int, str] = {}

    def set_limit(self, label: str, limit: int) -> None:
        """Set how many images ``label`` may keep."""
        self.limits[label] = limit

    def is_full(self, label: str) -> bool:
        """True once ``label`` has kept its limit."""
        return self.kept[label] >= self.limits.get(label, 0)

    def has_room(self, label: str) -> bool:
        """True while a new download for ``label`` could still be kept."""
        return self.kept[label] + self.in_flight[label] < self.limits.get(label, 0)

    def acquire(self, label: str, token: int) -> Deferred[bool]:
        """Fire True once ``token`` holds a slot, or False if the label filled up."""
        if self.is_full(label):
            return succeed(False)
        if self.has_room(label):
            self._hold(label, token)
            return succeed(True)
        waiter: Deferred[bool] = Deferred()
        waiter.addCallback(self._granted, label, token)
        self._waiters[label].append(waiter)
        return waiter

    def finish(self, token: int, kept: bool) -> None:
        """Free ``token``'s slot, counting it as kept or handing it to a waiter."""
        label = self._holders.pop(token, None)
        if label is None:
            return
        self.in_flight[label] -= 1
        if kept:
            self.kept[label] += 1
        self._wake(label)

    def abandon(self, token: int) -> None:
        """Free the slot of an item that failed without a decision."""
        self.finish(token, kept=False)

    def close(self) -> None:
        """Tell every waiter to give up (the crawl is ending)."""
        for label in list(self._waiters):
            waiters = self._waiters.pop(label)
            while waiters:
                waiters.popleft().callback(None)

    def _hold(self, label: str, token: int) -> None:
        self.in_flight[label] += 1
        self._holders[token] = label

    def _granted(self, granted: bool | None, label: str, token: int) -> bool:
        # Runs when a waiter is woken: None means "give up", True means a slot
        # was freed for it and it now takes it.
        if granted:
            self._hold(label, token)
            return True
        return False

    def _wake(self, label: str) -> None:
        waiters = self._waiters.get(label)
        if not waiters:
            return
        if self.is_full(label):
            while waiters:
                waiters.popleft().callback(None)
        elif self.has_room(label):
            waiters.popleft().callback(True)
