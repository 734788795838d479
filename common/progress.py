"""One progress display for every command that runs longer than a few seconds.

On a terminal it is a tqdm bar with a live status (images/s, losses, kept/limit per
label); in a log file, where a redrawn bar is noise, it is one plain line per tenth of
the work, so `nohup` and CI logs stay readable. Work made of a few long stages (export,
evaluation) logs a line when a stage ends, so input that fails in the first stage still
gives the one error line and nothing else.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import IO

from tqdm import tqdm


class Progress:
    """`advance(n)` as work gets done, `status({...})` for the figures beside the bar."""

    def __init__(
        self,
        prog: str,
        total: int | None,
        unit: str,
        *,
        initial: int = 0,
        enabled: bool = True,
        stream: IO[str] | None = None,
        log_every_tenth: bool = True,
    ) -> None:
        self.prog, self.total, self.unit = prog, total, unit
        self.initial = self.done = initial
        self.started = time.monotonic()
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.log_every_tenth = log_every_tenth
        self.live = enabled and bool(getattr(self.stream, "isatty", lambda: False)())
        self._status: dict[str, str] = {}
        self._stage: tuple[str, float] | None = None
        self._next_share = 0.1
        self._bar = (
            tqdm(
                total=total,
                initial=initial,
                unit=unit,
                desc=prog,
                file=self.stream,
                dynamic_ncols=True,
                leave=True,
            )
            if self.live
            else None
        )

    def rate(self) -> float:
        """Units per second of wall time since the display started."""
        return (self.done - self.initial) / max(time.monotonic() - self.started, 1e-9)

    def status(self, fields: Mapping[str, object]) -> None:
        """Figures shown beside the bar (and in the next plain line)."""
        self._status = {key: str(value) for key, value in fields.items()}
        if self._bar is not None:
            self._bar.set_postfix(self._status, refresh=False)

    def advance(self, count: int = 1) -> None:
        self.done += count
        if self._bar is not None:
            self._bar.update(count)
        elif self.enabled and self.total and self.log_every_tenth:
            share = self.done / self.total
            if share >= self._next_share or self.done >= self.total:
                self.line()
                self._next_share = (int(share * 10) + 1) / 10

    def stage(self, text: str) -> None:
        """Name the part of the work that starts now; in a log, the one before is reported
        as done (with its duration) and this one when it ends."""
        self._end_stage()
        self._stage = (text, time.monotonic())
        self.status({"now": text})
        if self._bar is not None:
            self._bar.refresh()

    def _end_stage(self) -> None:
        if self._stage is not None and self._bar is None and self.enabled:
            text, started = self._stage
            print(f"{self.prog}: {text} ({time.monotonic() - started:.1f} s)", file=self.stream)
        self._stage = None

    def line(self) -> None:
        """One plain line with the count, the rate and the status (for logs)."""
        if not self.enabled or self._bar is not None:
            return
        of_total = f"/{self.total}" if self.total else ""
        status = "".join(f", {key} {value}" for key, value in self._status.items())
        print(
            f"{self.prog}: {self.done}{of_total} {self.unit}, {self.rate():.1f} {self.unit}/s"
            + status,
            file=self.stream,
            flush=True,
        )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        if exc_type is None:
            self._end_stage()  # a failed stage is reported by its error, not as done
        self.close()
