"""Failures a user caused or can fix are shown as one-line error boxes, never tracebacks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import streamlit as st

from inference.errors import InferenceError

T = TypeVar("T")
MAX_MESSAGE = 300


class DashboardError(Exception):
    """A choice the dashboard cannot honour (say, a run that is not in the runs folder)."""


def one_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message, capped in length."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE - 1] + "…"


def file_size(size: int) -> str:
    """1.5 MB, 200 kB, 12 bytes: the unit a person would use."""
    if size >= 10**6:
        return f"{size / 10**6:.1f} MB"
    return f"{size / 10**3:.0f} kB" if size >= 10**3 else f"{size} bytes"


def run_model(call: Callable[..., T], *args: object, **kwargs: object) -> T:
    """Call the generator; onnxruntime's own failures (say, out of memory) become an
    InferenceError so that they reach the user as one line like every other model error."""
    try:
        return call(*args, **kwargs)
    except InferenceError:
        raise
    except Exception as exc:  # onnxruntime raises several unrelated types
        raise InferenceError(f"the model failed to run: {one_line(exc)}") from None


@contextmanager
def error_box() -> Iterator[None]:
    """Show InferenceError and DashboardError raised in the block as st.error and go on
    with the rest of the page; anything else is a bug and is left to propagate."""
    try:
        yield
    except (InferenceError, DashboardError) as exc:
        st.error(one_line(exc), icon=":material/error:")
