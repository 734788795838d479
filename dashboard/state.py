"""Session-state keys that more than one module uses, and the callbacks that write them.

The uploaded model travels through one key, UPLOAD: the file uploader's callback puts an
UploadedModel there and the model picker reads it. That keeps the rest of the app
independent of the upload widget, and gives tests (and any other front end) one clean
place to hand a model in.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

import streamlit as st

from cgan.dashboard.loading import UploadedModel

VIEW = "view"
UPLOAD = "model.upload"
UPLOAD_WIDGET = "model.upload_widget"
LAST_GENERATION = "generate.last"  # {"model": key, "images": n, "ms": float}
LATENCY = "inspect.latency"  # {model key: [Latency, ...]}
NEW_SEED_LIMIT = 1_000_000  # new seeds stay short enough to read and retype
_KEPT = "_kept_keys"


def kept(key: str, default: Any, options: Sequence[Any] | None = None) -> str:
    """The key for a widget whose value should outlive its view being hidden.

    Streamlit forgets a widget's value when a run does not draw it, so switching to
    Inspect and back would reset the class and the seed. Such a value is put in session
    state here (falling back to `default`, also when it is no longer one of `options`),
    and keep_values() carries it over every run. The widget itself then takes no default,
    which also lets a callback such as new_seed() set it without a Streamlit warning.
    """
    st.session_state.setdefault(_KEPT, set()).add(key)
    if key not in st.session_state or (
        options is not None and st.session_state[key] not in options
    ):
        st.session_state[key] = default
    return key


def keep_values() -> None:
    """First thing in every run: re-store the kept values, so hidden views keep them."""
    for key in st.session_state.get(_KEPT, ()):
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


def remember_upload() -> None:
    """on_change of the uploader: keep the bytes (or forget them when it is cleared)."""
    file = st.session_state.get(UPLOAD_WIDGET)
    st.session_state[UPLOAD] = None if file is None else UploadedModel(file.name, file.getvalue())


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
