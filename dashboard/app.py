"""The dashboard's entry point: `cgan-dashboard` (or `streamlit run dashboard/app.py`).

Streamlit runs this file top to bottom on every interaction. It draws the sidebar, which
every page shares, lets st.navigation pick the page from the URL, loads the chosen model
(a cached onnxruntime session) for the pages that need one and runs that page alone, so
visiting one page never pays for the others. Each page is a file under views/.
"""

from __future__ import annotations

import streamlit as st

from cgan.dashboard import sidebar
from cgan.dashboard.loading import LoadedModel
from cgan.dashboard.ui import error_box, keep_values

# Paths are relative to this file, so the pages are found in a checkout and an install alike.
MODEL_PAGES = (
    st.Page("views/generate.py", title="Generate", icon=":material/grid_view:", default=True),
    st.Page("views/explore.py", title="Explore", icon=":material/swap_horiz:"),
    st.Page("views/inspect_model.py", title="Inspect", icon=":material/info:"),
)
TRAINING = st.Page("views/training.py", title="Training", icon=":material/monitoring:")


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
    keep_values()
    page = st.navigation([*MODEL_PAGES, TRAINING], position="top")
    with st.sidebar:
        st.title("cGAN dashboard")
        choice = sidebar.pick_model()
        status = st.empty()
        st.divider()
        settings = sidebar.sampling_settings()
    if page is not TRAINING:
        model = _load(choice)
        if model is None:
            return
        info = model.generator.info
        status.success(
            f"{len(info.labels)} classes · {info.image_size}px · {info.arch} · "
            f"{model.generator.provider.removesuffix('ExecutionProvider')}"
        )
        sidebar.hand_over(model, settings)
    page.run()


with error_box():  # a bug anywhere on the page: one line here, the traceback in the log
    main()
