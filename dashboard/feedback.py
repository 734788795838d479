"""Failures are shown as one-line error boxes, never tracebacks: what the user caused or
can fix says what to do; anything else is a bug, logged with its traceback on the server."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from cgan.common.errors import DashboardError, InferenceError

MAX_MESSAGE = 300
log = logging.getLogger("cgan.dashboard")


def one_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message, capped in length."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def file_size(size: int) -> str:
    """1.5 MB, 200 kB, 12 bytes: the unit a person would use."""
    if size >= 10**6:
        return f"{size / 10**6:.1f} MB"
    return f"{size / 10**3:.0f} kB" if size >= 10**3 else f"{size} bytes"


@contextmanager
def error_box() -> Iterator[None]:
    """Show an error raised in the block as st.error and go on with the rest of the page.
    InferenceError and DashboardError are the user's to fix; anything else is a bug: the
    page says so in one line and the server log gets the traceback. Streamlit's own
    control flow (rerun, stop) derives from BaseException and passes through."""
    try:
        yield
    except (InferenceError, DashboardError) as exc:
        st.error(one_line(exc), icon=":material/error:")
    except Exception as exc:
        log.exception("dashboard bug")
        st.error(
            f"Something went wrong inside the dashboard ({type(exc).__name__}: "
            f"{one_line(exc)}); the details are in the server log.",
            icon=":material/bug_report:",
        )
