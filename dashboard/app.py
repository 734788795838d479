"""The dashboard's entry point: `make dashboard`, or `streamlit run dashboard/app.py`.

Streamlit runs this file top to bottom on every interaction. It draws the sidebar, loads
the chosen model (a cached onnxruntime session) and hands it to the view the user picked;
only that view runs, so switching views never pays for the others.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import streamlit as st

try:
    import dashboard  # noqa: F401  (installed with `pip install -e .[dashboard]`)
except ImportError:  # run from a checkout that is not installed: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cgan.dashboard import state  # noqa: E402
from cgan.dashboard.feedback import error_box  # noqa: E402
from cgan.dashboard.loading import LoadedModel  # noqa: E402
from cgan.dashboard.views import explore, generate, inspect_model, sidebar, training  # noqa: E402

ModelView = Callable[[LoadedModel, sidebar.Settings], None]
MODEL_VIEWS: dict[str, ModelView] = {
    ":material/grid_view: Generate": generate.render,
    ":material/swap_horiz: Explore": explore.render,
    ":material/info: Inspect": inspect_model.render,
}
TRAINING = ":material/monitoring: Training"
VIEWS = (*MODEL_VIEWS, TRAINING)


def _load(choice: sidebar.ModelChoice | None) -> LoadedModel | None:
    """The chosen model, or None with the reason shown in the page."""
    if choice is None:
        st.info("Choose a model in the sidebar.")
        return None
    with error_box():
        return choice.load()
    return None


def main() -> None:
    st.set_page_config(
        page_title="cGAN label-to-image", page_icon=":material/palette:", layout="wide"
    )
    state.keep_values()
    with st.sidebar:
        st.title("cGAN dashboard")
        choice = sidebar.pick_model()
        status = st.empty()
        st.divider()
        settings = sidebar.sampling_settings()
    view = st.radio("View", VIEWS, horizontal=True, key=state.VIEW, label_visibility="collapsed")
    if view == TRAINING:
        training.render()
        return
    model = _load(choice)
    if model is None:
        return
    info = model.generator.info
    status.success(
        f"{len(info.labels)} classes · {info.image_size}px · {info.arch} · "
        f"{model.generator.provider.removesuffix('ExecutionProvider')}"
    )
    MODEL_VIEWS[view](model, settings)


with error_box():  # a bug anywhere on the page: one line here, the traceback in the log
    main()
