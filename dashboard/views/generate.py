"""The Generate page: a grid of one class, seed after seed, with PNG downloads.

Image k of the grid uses seed SEED + k, so a seed always gives the same image whatever
the grid size, and the caption says which seeds are shown. Nothing here is cached: only
the onnxruntime session is, so a new seed is a new (fast) run of the model.
"""

from __future__ import annotations

import time

import numpy as np
import streamlit as st

from cgan.dashboard.imaging import enlarge, grid_png, png_bytes
from cgan.dashboard.loading import LoadedModel
from cgan.dashboard.sidebar import Settings, page_inputs
from cgan.dashboard.ui import (
    LAST_GENERATION,
    download,
    error_box,
    kept,
    new_seed_button,
    seed_text,
)
from cgan.inference.requests import MAX_SEED

SEED_KEY = "generate.seed"
MAX_SIDE = 16  # rows and columns: 256 images at most


def render(model: LoadedModel, settings: Settings) -> None:
    generator = model.generator
    labels = generator.labels
    pick, rows_col, cols_col, seed_col, button_col = st.columns(
        [3, 1, 1, 2, 1.4], vertical_alignment="bottom"
    )
    label = pick.selectbox("Class", labels, key=kept("generate.label", labels[0], labels))
    rows = int(rows_col.number_input("Rows", 1, MAX_SIDE, key=kept("generate.rows", 4)))
    columns = int(cols_col.number_input("Columns", 1, MAX_SIDE, key=kept("generate.columns", 8)))
    seed = int(
        seed_col.number_input(
            "Seed",
            0,
            MAX_SEED,
            key=kept(SEED_KEY, 0),
            help="Image k of the grid uses seed SEED + k.",
        )
    )
    new_seed_button("New seed", "generate.new_seed", (SEED_KEY,), where=button_col)

    count = rows * columns
    seeds = list(range(seed, seed + count))
    scale = settings.scale_for(generator.info.image_size)
    with error_box():
        started = time.perf_counter()
        index = labels.index(label)
        images = generator.generate([index] * count, seeds, settings.truncation)
        generated = time.perf_counter()
        picture = grid_png(images, rows=rows, scale=scale)
        rendered = time.perf_counter()
        model_ms = (generated - started) * 1000
        st.session_state[LAST_GENERATION] = {"model": model.key, "images": count, "ms": model_ms}
        truncation = f"truncation {settings.truncation}" if settings.truncation else "no truncation"
        st.image(
            picture,
            output_format="PNG",
            caption=f"{label} · {seed_text(seed, count)} · {truncation}",
        )
        st.caption(
            f"{count} images generated in {model_ms:.0f} ms on "
            f"{generator.provider}, grid rendered in "
            f"{(rendered - generated) * 1000:.0f} ms"
        )
        _downloads(label, seeds, images, picture, scale)


def _downloads(
    label: str, seeds: list[int], images: np.ndarray, picture: bytes, scale: int
) -> None:
    grid_col, pick_col, image_col = st.columns([2, 3, 2], vertical_alignment="bottom")
    download(
        "Grid (PNG)",
        picture,
        f"{label}-seeds{seeds[0]}-{seeds[-1]}.png",
        key="generate.download_grid",
        where=grid_col,
    )
    # Option names never change for a given count: the browser keeps showing an option's
    # old name when only its name changes, so the seed is on the button instead.
    choices = range(len(seeds))
    index = pick_col.selectbox(
        "Single image",
        choices,
        key=kept("generate.single", 0, choices),
        format_func=lambda i: f"#{i + 1}",
        help="Numbered in reading order: left to right, top to bottom.",
    )
    single = png_bytes(enlarge(images[index], scale))
    download(
        f"Seed {seeds[index]} (PNG)",
        single,
        f"{label}-seed{seeds[index]:04d}.png",
        key="generate.download_image",
        where=image_col,
    )


render(*page_inputs())
