"""The Training page: follow a run directory — loss curves, the per-epoch sample grids, its config.

Files are read on every rerun (nothing cached), so the page shows a run that is still
training as it is now; the auto-refresh toggle reruns this part on a timer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image

from cgan.common.run_dir import RunDir
from cgan.dashboard.imaging import png_bytes
from cgan.dashboard.runs import (
    config_of,
    list_runs,
    metrics_frame,
    open_run,
    runs_dir,
    sample_epochs,
)
from cgan.dashboard.ui import error_box, kept, shown_path

RUN_KEY = "training.run"
EPOCH_KEY = "training.epoch"
REFRESH_S = 10
SAMPLE_BOX_PX = (600, 560)  # small sample grids are enlarged (nearest) to fit about this box
CHARTS = (
    ("Losses", ("d_loss", "g_loss")),
    ("Discriminator outputs (mean sigmoid)", ("d_real", "d_fake")),
    ("Throughput (real images/s)", ("images_per_sec",)),
)
COLORS = {
    "d_loss": "#d62728",
    "g_loss": "#1f77b4",
    "d_real": "#2ca02c",
    "d_fake": "#ff7f0e",
    "images_per_sec": "#7f7f7f",
}


def render() -> None:
    root = runs_dir()
    names = list_runs(root)
    if not names:
        st.info(
            f"No training runs under {shown_path(root)}/ yet. Start one with `make train` "
            "(or `cgan-train --run-dir runs/NAME`), or point CGAN_RUNS_DIR at a runs folder."
        )
        return
    pick, live_col = st.columns([4, 1], vertical_alignment="bottom")
    name = pick.selectbox(f"Run in {shown_path(root)}/", names, key=kept(RUN_KEY, names[0], names))
    live = live_col.toggle(f"Auto-refresh ({REFRESH_S} s)", key=kept("training.live", False))
    with error_box():
        run = open_run(root, name)
        (_live_body if live else _body)(run)


def _body(run: RunDir) -> None:
    text, config = config_of(run)
    frame = metrics_frame(run)
    _progress(run, config, frame)
    st.subheader("Loss curves")
    _charts(frame)
    st.subheader("Samples")
    _samples(run)
    st.subheader("Configuration")
    if text is None:
        st.info("This run has no config.toml.")
    else:
        if not config:
            st.warning("config.toml does not parse as TOML; shown as it is.")
        st.code(text, language="toml")


_live_body = st.fragment(_body, run_every=REFRESH_S)


def _progress(run: RunDir, config: dict, frame: pd.DataFrame) -> None:
    progress = run.read_progress()
    last = frame.iloc[-1] if not frame.empty else None
    step = int(progress.get("step") or (last["step"] if last is not None else 0))
    total = config.get("steps")
    epoch = progress.get("epoch", last.get("epoch") if last is not None else None)
    text = f"step {step:,}" + (f" of {total:,}" if total else "")
    if epoch is not None:
        text += f" · epoch {float(epoch):.2f}"
    if config.get("arch"):
        text += (
            f" · {config['arch']} on {config.get('data', '?')}, "
            f"{len(config.get('labels', []))} classes"
        )
    if isinstance(total, int) and total > 0:
        st.progress(min(1.0, step / total), text=text)
    else:
        st.caption(text)
    if last is not None:
        shown = [
            c for c in ("d_loss", "g_loss", "d_real", "d_fake", "images_per_sec") if c in frame
        ]
        for column, name in zip(st.columns(len(shown)), shown, strict=True):
            column.metric(name, f"{last[name]:.4g}")


def _charts(frame: pd.DataFrame) -> None:
    if frame.empty:
        st.info("No metrics.jsonl records yet: the trainer writes one every --log-every steps.")
        return
    columns = st.columns(len(CHARTS))
    for column, (title, wanted) in zip(columns, CHARTS, strict=True):
        present = [name for name in wanted if name in frame]
        if not present:
            continue
        column.caption(title)
        column.line_chart(
            frame, x="step", y=present, height=260, color=[COLORS[name] for name in present]
        )


def _sample_png(path: Path) -> bytes:
    with Image.open(path) as image:
        picture = np.asarray(image.convert("RGB"))
    height, width = picture.shape[:2]
    scale = max(1, min(4, SAMPLE_BOX_PX[0] // max(1, width), SAMPLE_BOX_PX[1] // max(1, height)))
    return png_bytes(picture.repeat(scale, axis=0).repeat(scale, axis=1))


def _samples(run: RunDir) -> None:
    epochs = sample_epochs(run)
    if not epochs:
        latest = run.samples / "latest.png"
        if latest.is_file():
            st.image(_sample_png(latest), caption="latest.png", output_format="PNG")
        else:
            st.info("No sample grids yet: the trainer writes samples/epoch_NNNN.png per epoch.")
        return
    if len(epochs) == 1:
        epoch = epochs[0]
    else:
        epoch = st.select_slider("Epoch", epochs, key=kept(EPOCH_KEY, epochs[-1], epochs))
    path = run.sample_grid(epoch)
    try:
        picture = _sample_png(path)
    except OSError:
        st.warning(f"{path.name} cannot be read (still being written?).")
        return
    st.image(
        picture,
        output_format="PNG",
        caption=f"epoch {epoch} (of {len(epochs)} grid{'s' if len(epochs) > 1 else ''}): "
        "one row per class, the same noise every epoch",
    )


render()
