"""The Training page: follow runs — quality figures and losses against steps, epochs or
CPU-hours, several runs overlaid, the sample grids of every epoch, the best snapshot and the
command that exports any checkpoint, the run's config.

Files are read on every rerun (nothing cached), so the page shows a run that is still
training as it is now; the auto-refresh toggle reruns this part on a timer. Each part fails
on its own: a damaged metrics line or grid leaves the rest of the page standing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image

from cgan.common.run_dir import RunDir
from cgan.dashboard.imaging import png_bytes
from cgan.dashboard.runs import (
    QUALITY,
    checkpoint_names,
    config_of,
    evaluation_frame,
    list_runs,
    metrics_frame,
    open_run,
    runs_dir,
    sample_epochs,
)
from cgan.dashboard.ui import error_box, kept, shown_path

RUN_KEY = "training.run"
COMPARE_KEY = "training.compare"
AXIS_KEY = "training.axis"
EPOCH_KEY = "training.epoch"
CHECKPOINT_KEY = "training.checkpoint"
REFRESH_S = 10
SAMPLE_BOX_PX = (600, 560)  # small sample grids are enlarged (nearest) to fit about this box
AXES = {"step": "step", "epoch": "epoch", "CPU-hours": "cpu_hours"}
CHARTS = (
    ("Losses", ("d_loss", "g_loss")),
    ("Discriminator outputs (mean sigmoid)", ("d_real", "d_fake")),
    ("Throughput (real images/s)", ("images_per_sec",)),
)

Runs = list[tuple[str, RunDir]]


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
    others = [n for n in names if n != name]
    if COMPARE_KEY in st.session_state:  # runs that are gone or now the main one drop out
        st.session_state[COMPARE_KEY] = [n for n in st.session_state[COMPARE_KEY] if n in others]
    compare_col, axis_col = st.columns([3, 2], vertical_alignment="bottom")
    compared = compare_col.multiselect(
        "Overlay other runs", others, key=kept(COMPARE_KEY, []), placeholder="none"
    )
    axis = axis_col.radio(
        "Against", list(AXES), horizontal=True, key=kept(AXIS_KEY, "step", list(AXES))
    )
    with error_box():
        runs = [(n, open_run(root, n)) for n in [name, *compared]]
        (_live_body if live else _body)(runs, AXES[axis])


def _part(draw: Callable[[], None]) -> None:
    """One part of the page, failing on its own with a one-line box."""
    with error_box():
        draw()


def _body(runs: Runs, axis: str) -> None:
    name, run = runs[0]
    text, config = config_of(run)
    _part(lambda: _progress(run, config, metrics_frame(run)))
    st.subheader("Quality")
    _part(lambda: _quality(runs, axis))
    st.subheader("Loss curves")
    _part(lambda: _charts(runs, axis))
    st.subheader("Samples")
    _part(lambda: _samples(run))
    st.subheader("Export")
    _part(lambda: _export(name, run))
    st.subheader("Configuration")
    if text is None:
        st.info("This run has no config.toml.")
    else:
        if not config:
            st.warning("config.toml does not parse as TOML; shown as it is.")
        st.code(text, language="toml")


_live_body = st.fragment(_body, run_every=REFRESH_S)


def _long(
    frames: list[tuple[str, pd.DataFrame]], columns: tuple[str, ...], axis: str
) -> pd.DataFrame:
    """Runs' columns as rows of (x, value, run, figure): the shape an overlay is drawn from."""
    parts = [
        pd.DataFrame({"x": f[axis], "value": f[c], "run": name, "figure": c}).dropna()
        for name, f in frames
        for c in columns
        if c in f and axis in f
    ]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _overlay(data: pd.DataFrame, axis: str, marks: pd.DataFrame | None = None) -> alt.Chart:
    """One line per run and figure; `marks` (x, value, run, figure) as diamonds on top."""
    title = next(k for k, v in AXES.items() if v == axis)
    base = alt.Chart(data).encode(
        x=alt.X("x:Q", title=title),
        y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False)),
        color=alt.Color("run:N", legend=alt.Legend(orient="bottom", title=None)),
        tooltip=["run:N", "figure:N", alt.Tooltip("x:Q", title=title), "value:Q"],
    )
    figures = data["figure"].nunique()
    dash = alt.StrokeDash("figure:N", legend=alt.Legend(orient="bottom") if figures > 1 else None)
    chart = base.mark_line(point=len(data) <= 120).encode(strokeDash=dash)
    if marks is not None and not marks.empty:
        best = (
            alt.Chart(marks)
            .mark_point(shape="diamond", size=220, filled=True)
            .encode(
                x="x:Q",
                y="value:Q",
                color=alt.Color("run:N"),
                tooltip=["run:N", "figure:N", "value:Q", "step:Q"],
            )
        )
        chart = chart + best
    return chart.properties(height=240)


def _best_marks(runs: Runs, frames: list[tuple[str, pd.DataFrame]], axis: str) -> pd.DataFrame:
    """Where each run's kept best snapshot lies on its curve (best/best.json)."""
    rows = []
    for (name, run), (_, frame) in zip(runs, frames, strict=True):
        best = run.read_best()
        figure, step = best.get("figure"), best.get("step")
        if frame.empty or figure not in frame or axis not in frame:
            continue
        at = frame[frame["step"] == step]
        if not at.empty:
            rows.append(
                {"x": at[axis].iloc[0], "value": at[figure].iloc[0], "run": name,
                 "figure": figure, "step": step}
            )  # fmt: skip
    return pd.DataFrame(rows)


def _quality(runs: Runs, axis: str) -> None:
    frames = [(name, evaluation_frame(run)) for name, run in runs]
    if all(frame.empty for _, frame in frames):
        st.info(
            "No quality figures yet: train with `--eval-every N` (and `--keep-best fd`) to "
            "measure the EMA generator at every N steps."
        )
        return
    main = frames[0][1]
    best = runs[0][1].read_best()
    if best:
        figure = best.get("figure", "")
        value = best.get(figure)
        shown = f"{value:.4g}" if isinstance(value, (int, float)) else "?"
        st.caption(
            f"Best snapshot of {runs[0][0]}: step {best.get('step')} ({figure} {shown}); "
            "marked with a diamond."
        )
    if not main.empty:
        st.caption(f"Protocol: {runs[0][1].evaluation_records()[-1].get('protocol', '?')}")
    marks = _best_marks(runs, frames, axis)
    columns = st.columns(2)
    for index, (title, wanted) in enumerate(QUALITY):
        data = _long(frames, wanted, axis)
        if data.empty:
            continue
        column = columns[index % 2]
        column.caption(title)
        shown = marks[marks["figure"].isin(wanted)] if not marks.empty else None
        column.altair_chart(_overlay(data, axis, shown), width="stretch")


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


def _charts(runs: Runs, axis: str) -> None:
    frames = [(name, metrics_frame(run)) for name, run in runs]
    if all(frame.empty for _, frame in frames):
        st.info("No metrics.jsonl records yet: the trainer writes one every --log-every steps.")
        return
    columns = st.columns(len(CHARTS))
    for column, (title, wanted) in zip(columns, CHARTS, strict=True):
        data = _long(frames, wanted, axis)
        if data.empty:
            continue
        column.caption(title)
        column.altair_chart(_overlay(data, axis), width="stretch")


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


def _export(name: str, run: RunDir) -> None:
    """The command that exports a chosen checkpoint (export needs TensorFlow, which the
    dashboard never imports)."""
    names = checkpoint_names(run)
    if not names:
        st.info("No checkpoint yet: the trainer writes one every --checkpoint-every steps.")
        return
    choice = st.selectbox(
        "Checkpoint", names, key=kept(CHECKPOINT_KEY, names[0], names),
        help="best: the snapshot --keep-best kept; otherwise newest first",
    )  # fmt: skip
    out = name.replace("/", "-") + ("-best" if choice == "best" else f"-{choice}") + ".onnx"
    st.code(f"cgan-export {shown_path(run.root)} --checkpoint {choice} -o {out}", language="bash")


render()
