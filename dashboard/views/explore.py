"""The Explore page: what the noise and what the label control.

The interpolation walks from one seed's noise to another's for a fixed class (the
generator's own spherical path); the class sweep feeds the same noise to every class, so
that each column differs only by label.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from cgan.dashboard.imaging import gif_bytes, grid_png
from cgan.dashboard.sidebar import Settings, page_inputs
from cgan.dashboard.ui import download, error_box, kept, new_seed_button, seed_text
from cgan.inference.generator import ImageGenerator
from cgan.inference.requests import MAX_SEED

SEED_A, SEED_B, SWEEP_SEED = "explore.seed_a", "explore.seed_b", "explore.sweep_seed"
MAX_FRAMES = 32
MAX_SWEEP_COLUMNS = 12


def render(generator: ImageGenerator, settings: Settings) -> None:
    st.subheader("Interpolation")
    with error_box():
        _interpolation(generator, settings)
    st.divider()
    st.subheader("Class sweep")
    with error_box():
        _class_sweep(generator, settings)


def _interpolation(generator: ImageGenerator, settings: Settings) -> None:
    pick, a_col, b_col, frames_col, button_col = st.columns(
        [3, 2, 2, 3, 2], vertical_alignment="bottom"
    )
    labels = generator.labels
    label = pick.selectbox("Class", labels, key=kept("explore.label", labels[0], labels))
    seed_a = int(a_col.number_input("From seed", 0, MAX_SEED, key=kept(SEED_A, 0)))
    seed_b = int(b_col.number_input("To seed", 0, MAX_SEED, key=kept(SEED_B, 1)))
    frames = int(frames_col.slider("Frames", 2, MAX_FRAMES, key=kept("explore.frames", 8)))
    new_seed_button("New seeds", "explore.new_seeds", (SEED_A, SEED_B), where=button_col)

    images = generator.interpolate(
        generator.labels.index(label), seed_a, seed_b, frames, settings.truncation
    )
    scale = settings.scale_for(generator.info.image_size)
    strip = grid_png(images, rows=1, scale=scale)
    st.image(
        strip,
        output_format="PNG",
        caption=f"{label}: seed {seed_a} → seed {seed_b}, {frames} frames",
    )
    download(
        "Strip (PNG)", strip, f"{label}-seed{seed_a}-to-{seed_b}.png", key="explore.download_strip"
    )
    if not st.toggle("Animated GIF", key=kept("explore.gif", False)):
        return
    controls, shown = st.columns([2, 3])
    frame_ms = int(
        controls.slider("Frame duration (ms)", 40, 1000, step=20, key=kept("explore.frame_ms", 120))
    )
    bounce = controls.checkbox("Forth and back", key=kept("explore.bounce", True))
    animation = gif_bytes(images, scale, frame_ms, bounce)  # encoded only when asked for
    download(
        "Animation (GIF)",
        animation,
        f"{label}-seed{seed_a}-to-{seed_b}.gif",
        key="explore.download_gif",
        mime="image/gif",
        where=controls,
    )
    shown.image(animation, caption=f"{len(images)} frames, {frame_ms} ms each")


def _class_sweep(generator: ImageGenerator, settings: Settings) -> None:
    seed_col, columns_col, button_col = st.columns([2, 3, 2], vertical_alignment="bottom")
    seed = int(
        seed_col.number_input(
            "Seed",
            0,
            MAX_SEED,
            key=kept(SWEEP_SEED, 0),
            help="Column k uses the noise of seed SEED + k.",
        )
    )
    columns = int(
        columns_col.slider(
            "Noise vectors (columns)", 1, MAX_SWEEP_COLUMNS, key=kept("explore.sweep_columns", 4)
        )
    )
    new_seed_button("New seed", "explore.sweep_new_seed", (SWEEP_SEED,), where=button_col)
    seeds = range(seed, seed + columns)
    sweeps = [generator.class_sweep(s, settings.truncation) for s in seeds]
    # [seeds, classes, H, W, 3] -> one row per class, one column per noise vector
    images = np.stack(sweeps, axis=1).reshape(-1, *sweeps[0].shape[1:])
    labels = generator.labels
    picture = grid_png(
        images,
        rows=len(labels),
        scale=settings.scale_for(generator.info.image_size),
        row_labels=labels,
    )
    st.image(
        picture,
        output_format="PNG",
        caption=f"each column: one noise vector ({seed_text(seed, columns)}) "
        "through every class; rows differ only by label",
    )
    download(
        "Sweep (PNG)",
        picture,
        f"class-sweep-seeds{seeds[0]}-{seeds[-1]}.png",
        key="explore.download_sweep",
    )


model, settings = page_inputs()
render(model.generator, settings)
