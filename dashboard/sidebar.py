"""The sidebar, drawn by app.py on every page: which model to use and on what provider, and
the sampling settings the pages share (truncation, zoom); and how app.py hands the loaded
model to the page that runs next.

An uploaded model travels through one session-state key, UPLOAD: the file uploader's
callback puts an UploadedModel there and the model picker reads it. That keeps the rest of
the app independent of the upload widget, and gives tests (and any other front end) one
clean place to hand a model in.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from cgan.common.errors import InferenceError
from cgan.dashboard.imaging import auto_zoom
from cgan.dashboard.loading import (
    LoadedModel,
    UploadedModel,
    list_models,
    load_file,
    load_upload,
    models_dir,
)
from cgan.dashboard.ui import file_size, kept, shown_path
from cgan.inference.default_model import ENV_VAR as MODEL_ENV
from cgan.inference.default_model import default_model_path
from cgan.inference.session import PROVIDERS

SHIPPED, FOLDER, UPLOADED = "Shipped model", "Models folder", "Upload"
SOURCES = (SHIPPED, FOLDER, UPLOADED)
SOURCE_KEY = "model.source"
FOLDER_KEY = "model.file"
PROVIDER_KEY = "model.provider"
UPLOAD = "model.upload"
UPLOAD_WIDGET = "model.upload_widget"
PAGE_INPUTS = "page.inputs"  # (LoadedModel, Settings) for this run's model page
TRUNCATIONS: tuple[str | float, ...] = (
    "off",
    2.0,
    1.5,
    1.2,
    1.0,
    0.8,
    0.7,
    0.6,
    0.5,
    0.4,
    0.3,
    0.2,
)
ZOOMS: tuple[str | int, ...] = ("auto", 1, 2, 3, 4, 6, 8)


@dataclass(frozen=True)
class ModelChoice:
    """What the user picked; loading it is left to the caller, so errors land in the page."""

    path: Path | None = None
    upload: UploadedModel | None = None
    provider: str = "auto"

    def load(self) -> LoadedModel:
        if self.upload is not None:
            try:
                return load_upload(self.upload, self.provider)
            except InferenceError as exc:  # name the file: the uploader may be out of sight
                raise InferenceError(f"{self.upload.name}: {exc}") from None
        assert self.path is not None
        return load_file(self.path, self.provider)


@dataclass(frozen=True)
class Settings:
    """Sampling settings shared by the Generate and Explore pages."""

    truncation: float | None = None
    zoom: int | None = None  # None: about 96 pixels a tile

    def scale_for(self, image_size: int) -> int:
        return self.zoom or auto_zoom(image_size)


def hand_over(model: LoadedModel, settings: Settings) -> None:
    """app.py, before it runs a model page: what that page will draw with.

    A page file is run by st.navigation, not called, so it cannot take arguments; session
    state is per browser session, so two users never see each other's model."""
    st.session_state[PAGE_INPUTS] = (model, settings)


def page_inputs() -> tuple[LoadedModel, Settings]:
    """In a model page: the model and settings app.py handed over in this run."""
    return st.session_state[PAGE_INPUTS]


def shipped_model() -> Path | None:
    """$CGAN_MODEL or the model shipped in the package; None when there is neither."""
    try:
        return default_model_path()
    except InferenceError:
        return None


def remember_upload() -> None:
    """on_change of the uploader: keep the bytes (or forget them when it is cleared)."""
    file = st.session_state.get(UPLOAD_WIDGET)
    st.session_state[UPLOAD] = None if file is None else UploadedModel(file.name, file.getvalue())


def _from_folder() -> Path | None:
    folder = models_dir()
    models = list_models(folder)
    if not models:
        st.warning(
            f"No .onnx file under {shown_path(folder)}/. Export one with `make export`, "
            "point CGAN_MODELS_DIR at a folder of models, or upload a file."
        )
        return None
    names = [path.relative_to(folder).as_posix() for path in models]
    name = st.selectbox(
        f"Model in {shown_path(folder)}/", names, key=kept(FOLDER_KEY, names[0], names)
    )
    return folder / name


def _from_upload() -> UploadedModel | None:
    st.file_uploader(
        "Exported generator (.onnx)",
        type=["onnx"],
        key=UPLOAD_WIDGET,
        on_change=remember_upload,
        help="A file written by cgan-export; it is checked before use.",
    )
    upload = st.session_state.get(UPLOAD)
    if upload is None:
        st.info("Upload an .onnx file made by `cgan-export`.")
        return None
    st.caption(f"Using {upload.name} ({file_size(len(upload.data))})")
    return upload


def pick_model() -> ModelChoice | None:
    """Draws the model controls; None when no model is chosen yet (the reason is shown)."""
    shipped = shipped_model()
    source = st.radio("Model", SOURCES, index=0 if shipped else 1, key=SOURCE_KEY)
    provider = st.selectbox(
        "Execution provider",
        PROVIDERS,
        key=PROVIDER_KEY,
        help="auto: CUDA when onnxruntime-gpu finds a GPU, else CPU",
    )
    if source == UPLOADED:
        upload = _from_upload()
        return ModelChoice(upload=upload, provider=provider) if upload else None
    if source == SHIPPED and shipped is not None:
        origin = f"${MODEL_ENV}" if os.environ.get(MODEL_ENV) else "the package"
        st.caption(f"{shown_path(shipped)} (from {origin})")
        return ModelChoice(path=shipped, provider=provider)
    if source == SHIPPED:
        st.info("No model is shipped with this install; using the models folder instead.")
    path = _from_folder()
    return ModelChoice(path=path, provider=provider) if path else None


def sampling_settings() -> Settings:
    """Draws the truncation and zoom controls."""
    truncation = st.select_slider(
        "Truncation",
        TRUNCATIONS,
        value="off",
        key="sampling.truncation",
        help="Noise values beyond ±t are redrawn: smaller t gives more typical, less varied "
        "images. 'off' samples the full normal distribution.",
    )
    zoom = st.select_slider(
        "Zoom",
        ZOOMS,
        value="auto",
        key="sampling.zoom",
        help="Nearest-neighbour enlargement of each image; auto shows tiles at about 96 pixels.",
    )
    return Settings(
        truncation=None if truncation == "off" else float(truncation),
        zoom=None if zoom == "auto" else int(zoom),
    )
