"""Staying inside an API's limits: the ones it announces in headers and the ones it documents.

One rule for both: wait before sending rather than be refused afterwards.

- Announced limits (`announced_limits`, `HostPace`). Many APIs say in every answer how much
  is left: Reddit's `X-Ratelimit-Used/-Remaining/-Reset`, Pixabay's and GitHub's
  `X-RateLimit-Limit/-Remaining/-Reset` (GitHub's reset is a Unix time), the IETF drafts'
  `RateLimit-Remaining/-Reset` and `RateLimit: r=..;t=..`, and Openverse's per-scope
  `X-RateLimit-Available-<scope>` with `X-RateLimit-Limit-<scope>: 20/min`. A host's
  remaining requests are spread evenly over the time left in its window, since Reddit asks
  for spacing rather than a burst at the start of each window.
- Documented limits (`RequestBudget`). Openverse lets an anonymous client make 20 requests
  a minute and 200 a day and says so in its documentation, not in a reset header; the
  budget counts requests in sliding windows and keeps the count in `OUT/.jobs/budgets.json`,
  so a crawl started again the same day knows what is left.

Header values come from strangers: a non-numeric or non-finite value is ignored, counts
are clamped to [0, 1e9], a reset to [0, RESET_CAP] and a reset that looks like a Unix time
is turned into seconds from now.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from scrapy.exceptions import IgnoreRequest
from scrapy.utils.defer import maybe_deferred_to_future

from cgan.common.files import write_text_atomic

logger = logging.getLogger(__name__)

RESET_CAP = 86_400.0  # no announced wait is believed beyond a day
_COUNT_CAP = 1e9
_EPOCH = 1e9  # a reset above this is a Unix time (GitHub's style), not seconds
_BUCKETS = 100  # a budget window is counted in this many buckets
BUDGET_FILE = "budgets.json"
MAX_SCOPES = 16  # limits remembered per host

_UNITS = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
}
_PERIOD = re.compile(r"(\d+(?:\.\d+)?)?\s*([a-z]*)")


class RateLimited(IgnoreRequest):
    """A request not sent because a limit is spent for longer than RATELIMIT_MAX_WAIT."""

    def __init__(self, detail: str, until: float | None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.until = until  # Unix time the limit frees up, when known


class Stopping(IgnoreRequest):
    """A request given up while it waited, because the crawl is being stopped (Ctrl-C)."""


async def pause(seconds: float, still_running: Callable[[], bool]) -> None:
    """Wait without blocking the crawl; raise Stopping as soon as the crawl is stopped.

    Waits for a rate limit can last minutes, and a stopping Scrapy waits for every
    request in the downloader, so a plain sleep would hold Ctrl-C up for that long.
    """
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        if not still_running():
            raise Stopping("the crawl is stopping")
        await maybe_deferred_to_future(deferLater(reactor, min(left, 0.25), lambda: None))


def utc_text(when: float) -> str:
    """`2025-06-02 14:03:07 UTC`, for messages that tell a person when to come back."""
    moment = datetime.fromtimestamp(when, tz=timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


# --- documented rates -----------------------------------------------------------------------


@dataclass(frozen=True)
class Rate:
    """At most `count` requests in any `window` seconds."""

    count: int
    window: float

    def __str__(self) -> str:
        names = {1.0: "second", 60.0: "minute", 3600.0: "hour", 86400.0: "day"}
        period = names.get(self.window, f"{self.window:g}s")
        return f"{self.count} requests per {period}"


def parse_rate(text: str) -> Rate:
    """`20/min`, `200/day`, `3/2.5s` or `5/30` (seconds) as a Rate; ValueError says why."""
    count_text, sep, period = str(text).strip().partition("/")
    match = _PERIOD.fullmatch(period.strip().lower())
    if not sep or not count_text.strip().isdigit() or match is None or not any(match.groups()):
        raise ValueError(f"bad rate {text!r}: expected COUNT/PERIOD such as 20/min or 3/2.5s")
    unit = match.group(2) or "s"
    if unit not in _UNITS and unit.endswith("s"):
        unit = unit[:-1]  # mins, hours, days
    if unit not in _UNITS:
        raise ValueError(f"bad rate {text!r}: the period's unit is one of s, min, h, day")
    count, window = int(count_text), float(match.group(1) or 1) * _UNITS[unit]
    if not 1 <= count <= _COUNT_CAP or not 0 < window <= 366 * 86400:
        raise ValueError(f"bad rate {text!r}: count and period must be positive and sane")
    return Rate(count, window)


def parse_rates(values: str | Iterable[str]) -> list[Rate]:
    """Comma separated rates; empty, `none` or `off` means no limit."""
    items = values.split(",") if isinstance(values, str) else list(values)
    texts = [item.strip() for item in items if item.strip()]
    if [text.lower() for text in texts] in ([], ["none"], ["off"]):
        return []
    return [parse_rate(text) for text in texts]


# --- announced limits -----------------------------------------------------------------------


@dataclass(frozen=True)
class Announced:
    """What one answer says about one of the host's limits (`scope`)."""

    scope: str
    remaining: float
    reset: float | None = None  # seconds until the window ends
    limit: float | None = None
    window: float | None = None  # the window's length, when named (Openverse's "20/min")


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    text = text.strip()
    if not text or len(text) > 32:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _count(text: str | None) -> float | None:
    value = _number(text)
    return None if value is None else min(max(value, 0.0), _COUNT_CAP)


def _reset(text: str | None, now: float) -> float | None:
    value = _number(text)
    if value is None:
        return None
    if value > _EPOCH:
        value -= now
    return min(max(value, 0.0), RESET_CAP)


def _params(text: str) -> dict[str, str]:
    """`limit=100, remaining=5, reset=30` or `"default";r=5;t=30` as a dict."""
    found: dict[str, str] = {}
    for part in re.split(r"[,;]", text[:1000]):
        key, sep, value = part.partition("=")
        if sep:
            found.setdefault(key.strip().lower(), value.strip().strip('"'))
    return found


def announced_limits(headers: Mapping[str, str], now: float | None = None) -> list[Announced]:
    """Every limit the answer's headers announce; `headers` maps lower-case names to values."""
    now = time.time() if now is None else now
    found: list[Announced] = []
    for prefix in ("x-ratelimit-", "ratelimit-"):
        remaining = _count(headers.get(prefix + "remaining"))
        limit = _count(headers.get(prefix + "limit"))
        used = _count(headers.get(prefix + "used"))
        if remaining is None and limit is not None and used is not None:
            remaining = max(limit - used, 0.0)
        if limit is None and used is not None and remaining is not None:
            limit = used + remaining
        if remaining is not None:
            reset = _reset(headers.get(prefix + "reset"), now)
            found.append(Announced(prefix.rstrip("-"), remaining, reset, limit))
    combined = headers.get("ratelimit")
    if combined:
        params = _params(combined)
        remaining = _count(params.get("r", params.get("remaining")))
        if remaining is not None:
            reset = _reset(params.get("t", params.get("reset")), now)
            found.append(Announced("ratelimit", remaining, reset, _count(params.get("limit"))))
    for name, value in headers.items():
        if not name.startswith("x-ratelimit-available-"):
            continue
        scope = name.removeprefix("x-ratelimit-available-")
        remaining = _count(value)
        if remaining is None or not scope:
            continue
        try:
            rate: Rate | None = parse_rate(headers.get(f"x-ratelimit-limit-{scope}", ""))
        except ValueError:
            rate = None
        found.append(
            Announced(
                scope, remaining, None, rate and float(rate.count), rate.window if rate else None
            )
        )
    return found


@dataclass
class _Scope:
    remaining: float
    reset_at: float | None  # monotonic time the window ends, margin included
    limit: float | None
    window: float | None


@dataclass
class HostPace:
    """What one host last announced, and when the next request to it may go.

    `margin` is added to every announced reset (they come in whole seconds);
    `unknown_reset` is how long to wait when a host says nothing is left but not when
    that changes. Requests sent but not yet answered (`in_flight`) are subtracted from
    what an answer announces, since the host counted them after it wrote its headers
    or will count them soon.
    """

    margin: float = 1.0
    unknown_reset: float = 60.0
    scopes: dict[str, _Scope] = field(default_factory=dict)
    in_flight: int = 0
    last_sent: float = -math.inf

    def observe(self, announced: Iterable[Announced], now: float) -> None:
        """Take in what one answer announced (`now`: monotonic time it arrived)."""
        others = max(self.in_flight - 1, 0)
        for item in announced:
            remaining = max(item.remaining - others, 0.0)
            reset_at = None if item.reset is None else now + item.reset + self.margin
            if reset_at is None and remaining < 1:
                # Spent, and no word on when: one slot of a sliding window, or a guess.
                guess = item.window / item.limit if item.window and item.limit else None
                reset_at = now + min(guess or self.unknown_reset, RESET_CAP) + self.margin
            old = self.scopes.get(item.scope)
            same_window = (
                old is not None
                and old.reset_at is not None
                and reset_at is not None
                and now < old.reset_at
                and reset_at <= old.reset_at + self.margin + 1
            )
            if same_window and old is not None:  # a late answer never gives back what we spent
                remaining = min(remaining, old.remaining)
            self.scopes.pop(item.scope, None)  # re-inserted last: the newest
            self.scopes[item.scope] = _Scope(remaining, reset_at, item.limit, item.window)
        while len(self.scopes) > MAX_SCOPES:  # a host inventing names cannot grow this
            del self.scopes[next(iter(self.scopes))]

    def wait(self, now: float) -> float:
        """Seconds until the next request keeps every announced limit (0 = now)."""
        longest = 0.0
        for scope in self.scopes.values():
            if scope.reset_at is not None and now >= scope.reset_at:
                # The window has ended: a full one if its size is known, else no limit
                # until the next answer says otherwise.
                scope.remaining = scope.limit if scope.limit is not None else math.inf
                scope.reset_at = None
            if scope.remaining < 1:
                if scope.reset_at is None:  # a refilled window spent before any answer
                    scope.reset_at = now + self.unknown_reset + self.margin
                wait = scope.reset_at - now
            elif scope.reset_at is not None:
                interval = (scope.reset_at - now) / scope.remaining
                wait = self.last_sent + interval - now
            else:
                wait = 0.0
            longest = max(longest, wait)
        return longest

    def claim(self, now: float) -> None:
        """A request goes now."""
        for scope in self.scopes.values():
            scope.remaining = max(scope.remaining - 1, 0.0)
        self.last_sent = now
        self.in_flight += 1

    def release(self) -> None:
        """A claimed request got its answer or failed."""
        self.in_flight = max(self.in_flight - 1, 0)

    @property
    def idle(self) -> bool:
        """Nothing announced and nothing in flight: the entry can go."""
        return not self.scopes and self.in_flight == 0


# --- documented limits, counted across runs -------------------------------------------------


def budget_file(out_dir: str | Path) -> Path:
    """Where the budgets of an output folder are kept (beside the JOBDIRs)."""
    return Path(out_dir) / ".jobs" / BUDGET_FILE


class RequestBudget:
    """The documented limits of one API for one kind of client, counted across runs.

    Each window is counted in buckets of 1/100 of its length; a bucket counts until its
    end leaves the window, so the count is never lower than the truth. Requests are also
    spaced by the shortest window's length / count, so `20/min` means one every 3 s
    rather than 20 at once. The counts are written to `path` after every request
    (`OUT/.jobs/budgets.json`, one entry per `key`), so a later run the same day carries
    on from them; a file that cannot be read is ignored with a warning.
    """

    def __init__(
        self,
        key: str,
        rates: list[Rate],
        path: Path | None = None,
        tier: str = "",
        hint: str = "",
    ) -> None:
        self.key, self.rates, self.path, self.tier, self.hint = key, rates, path, tier, hint
        self.counts: dict[Rate, dict[int, int]] = {rate: {} for rate in rates}
        self.last = -math.inf
        self.blocked_until = 0.0
        if path is not None:
            self._load()

    # counting
    def spent(self, now: float) -> tuple[float, Rate | None]:
        """Seconds until the windows have room for one more request, and the rate that is
        full (None while a 429 from the API holds us back)."""
        longest: tuple[float, Rate | None] = (max(self.blocked_until - now, 0.0), None)
        for rate in self.rates:
            width = rate.window / _BUCKETS
            counts = self.counts[rate]
            for index in [i for i in counts if (i + 1) * width <= now - rate.window]:
                del counts[index]
            excess = sum(counts.values()) + 1 - rate.count
            freed = 0
            for index in sorted(counts):
                if excess <= 0:
                    break
                freed += counts[index]
                if freed >= excess:
                    free_at = (index + 1) * width + rate.window - now
                    longest = max(longest, (free_at, rate), key=lambda pair: pair[0])
                    break
        return longest

    def wait(self, now: float) -> float:
        """Seconds until the next request may go: room in every window, and its turn."""
        spacing = 0.0
        if self.rates:
            shortest = min(self.rates, key=lambda rate: rate.window)
            spacing = self.last + shortest.window / shortest.count - now
        return max(self.spent(now)[0], spacing, 0.0)

    def spend(self, now: float) -> None:
        """Count a request sent at `now` and save the counts."""
        for rate in self.rates:
            index = int(now // (rate.window / _BUCKETS))
            self.counts[rate][index] = self.counts[rate].get(index, 0) + 1
        self.last = now
        self.save()

    def block_until(self, until: float) -> None:
        """The API refused us until `until` (a 429's Retry-After); remember it."""
        self.blocked_until = max(self.blocked_until, min(until, time.time() + RESET_CAP))
        self.save()

    def refusal(self, now: float, max_wait: float) -> RateLimited | None:
        """A RateLimited when the budget has no room for longer than `max_wait` seconds.

        Only a full window or a 429 counts: the spacing between requests is always waited.
        """
        wait, rate = self.spent(now)
        if wait <= max_wait:
            return None
        tier = f"{self.tier} " if self.tier else ""
        if rate is None:
            detail = "the API refused more requests (HTTP 429)"
        else:
            detail = f"the {tier}limit of {rate} is spent"
        return RateLimited(f"{detail}{self.hint}", now + wait)

    # persistence
    def _load(self) -> None:
        assert self.path is not None
        entry = _read_budgets(self.path).get(self.key)
        if not isinstance(entry, dict):
            return
        try:
            last, blocked = entry.get("last"), entry.get("blocked_until")
            self.last = -math.inf if last is None else float(last)
            self.blocked_until = 0.0 if blocked is None else float(blocked)
            windows = entry.get("windows") or {}
            for rate in self.rates:
                saved = windows.get(f"{rate.window:g}") or {}
                self.counts[rate] = {
                    int(index): int(count)
                    for index, count in saved.items()
                    if int(count) > 0 and str(index).lstrip("-").isdigit()
                }
        except (TypeError, ValueError, AttributeError, OverflowError):
            logger.warning("%s: ignoring the unreadable entry %r", self.path, self.key)
            self.counts = {rate: {} for rate in self.rates}
            self.last, self.blocked_until = -math.inf, 0.0
        if not math.isfinite(self.last) or self.last > time.time() + 60:
            self.last = -math.inf  # a clock moved backwards or a hand edit
        if not math.isfinite(self.blocked_until):
            self.blocked_until = 0.0

    def save(self) -> None:
        """Write this budget's entry into the shared file (atomically)."""
        if self.path is None:
            return
        data = _read_budgets(self.path)
        data[self.key] = {
            "rates": ",".join(f"{rate.count}/{rate.window:g}s" for rate in self.rates),
            "last": self.last if math.isfinite(self.last) else None,
            "blocked_until": self.blocked_until,
            "windows": {
                f"{rate.window:g}": {str(i): n for i, n in sorted(self.counts[rate].items())}
                for rate in self.rates
            },
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(self.path, json.dumps(data, indent=1) + "\n")
        except OSError as exc:
            logger.warning("cannot save the request budget to %s: %s", self.path, exc)


def _read_budgets(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        logger.warning("ignoring %s: %s", path, exc)
        return {}
    return data if isinstance(data, dict) else {}
