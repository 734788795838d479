"""What every page draws the same way: one-line error boxes, kept widget values, new-seed
buttons, downloads, and how sizes, seeds and folders are named on the page.

Failures are shown as one-line error boxes, never tracebacks: what the user caused or can
fix says what to do; anything else is a bug, logged with its traceback on the server.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import streamlit as st

from cgan.common.cli import first_line
from cgan.common.errors import DashboardError, InferenceError

LAST_GENERATION = "generate.last"  # {"model": key, "images": n, "ms": float}: Generate -> Inspect
NEW_SEED_LIMIT = 1_000_000  # new seeds stay short enough to read and retype
DOWNLOAD_ICON = ":material/download:"
NEW_SEED_ICON = ":material/casino:"
_KEPT = "_kept_keys"
log = logging.getLogger("cgan.dashboard")


@contextmanager
def error_box() -> Iterator[None]:
    """Show an error raised in the block as st.error and go on with the rest of the page.
    InferenceError and DashboardError are the user's to fix; anything else is a bug: the
    page says so in one line and the server log gets the traceback. Streamlit's own
    control flow (rerun, stop) derives from BaseException and passes through."""
    try:
        yield
    except (InferenceError, DashboardError) as exc:
        st.error(first_line(exc), icon=":material/error:")
    except Exception as exc:
        log.exception("dashboard bug")
        st.error(
            f"Something went wrong inside the dashboard ({type(exc).__name__}: "
            f"{first_line(exc)}); the details are in the server log.",
            icon=":material/bug_report:",
        )


def kept(key: str, default: Any, options: Sequence[Any] | None = None) -> str:
    """The key for a widget whose value should outlive its page being left.

    Streamlit forgets a widget's value when a run does not draw it, so going to Inspect
    and back would reset the class and the seed. Such a value is put in session state
    here (falling back to `default`, also when it is no longer one of `options`), and
    keep_values() carries it over every run. The widget itself then takes no default,
    which also lets a callback such as new_seed() set it without a Streamlit warning.
    """
    st.session_state.setdefault(_KEPT, set()).add(key)
    if key not in st.session_state or (
        options is not None and st.session_state[key] not in options
    ):
        st.session_state[key] = default
    return key


def keep_values() -> None:
    """First thing in every run: re-store the kept values, so other pages keep them."""
    for key in st.session_state.get(_KEPT, ()):
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


def random_seed(current: int | None = None) -> int:
    """A fresh seed, never the current one, so that "new seed" always changes the images."""
    while True:
        seed = secrets.randbelow(NEW_SEED_LIMIT)
        if seed != current:
            return seed


def new_seed(*keys: str) -> None:
    """on_click of a "new seed" button: a callback may set a widget's value before it is
    drawn, which a plain assignment after the button could not."""
    for key in keys:
        st.session_state[key] = random_seed(st.session_state.get(key))


def new_seed_button(label: str, key: str, seed_keys: tuple[str, ...], where: Any = st) -> None:
    where.button(label, icon=NEW_SEED_ICON, key=key, on_click=new_seed, args=seed_keys)


def download(
    label: str, data: bytes, file_name: str, key: str, mime: str = "image/png", where: Any = st
) -> None:
    """A download button that does not rerun the page: the images stay as they are."""
    where.download_button(
        label, data, file_name=file_name, mime=mime, key=key, icon=DOWNLOAD_ICON, on_click="ignore"
    )


def seed_text(first: int, count: int) -> str:
    """ "seed 7" or "seeds 7–106": how captions name the seeds shown."""
    return f"seed {first}" if count == 1 else f"seeds {first}–{first + count - 1}"


def file_size(size: int) -> str:
    """1.5 MB, 200 kB, 12 bytes: the unit a person would use."""
    if size >= 10**6:
        return f"{size / 10**6:.1f} MB"
    return f"{size / 10**3:.0f} kB" if size >= 10**3 else f"{size} bytes"


def shown_path(path: Path) -> str:
    """A path as the user would type it where the app was started: relative to the current
    folder when inside it, else as it is (an installed app has no repository to be in)."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except (OSError, ValueError):
        return str(path)
