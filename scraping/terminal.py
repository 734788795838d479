"""What a crawl prints on the terminal: the project's own lines, one line each.

Scrapy's log (settings, stats dumps, every retry, tracebacks) goes to
``OUT/crawl.log`` (``LOG_FILE``, set by :mod:`scraping.runner`); on the
terminal it buried the few lines a person needs among hundreds. This handler
shows only records from the project's loggers (``scraping.*``, which the
spiders log to as well), as ``cgan-scrape: ...`` without tracebacks, plus
Scrapy's answer to Ctrl-C, without which a person would press it again and
stop the crawl hard.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from typing import IO, Any

PROJECT_LOGGER = "cgan.scraping"
PREFIX = "cgan-scrape"
_SHUTDOWN_LOGGER = "scrapy.crawler"  # "Received SIGINT, shutting down gracefully..."


def reported_later() -> dict[str, Any]:
    """``extra=`` for a line the end-of-crawl report repeats: the log file only.

    A fresh dict each call: Scrapy's spider logger adds to the one it is given.
    """
    return {"terminal": False}


class TerminalFormatter(logging.Formatter):
    """``cgan-scrape: [warning: ]message`` on one line, never a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        text = " ".join(record.getMessage().split())
        level = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
        return f"{PREFIX}: {level}{text}"


def _for_terminal(record: logging.LogRecord) -> bool:
    if record.name == _SHUTDOWN_LOGGER:
        return str(record.msg).startswith("Received ")
    return bool(getattr(record, "terminal", True))


@contextlib.contextmanager
def terminal_lines(level: str | int = "INFO", stream: IO[str] | None = None) -> Iterator[None]:
    """Show the project's log lines at ``level`` (at least INFO) while the block runs."""
    numeric = logging.getLevelName(level) if isinstance(level, str) else level
    handler = logging.StreamHandler(stream or sys.stderr)
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
