"""The Inspect page: everything the model file says about itself, where it runs, and how fast.

The metadata comes from the ONNX file (the export contract), so it describes the model
actually loaded, not a run directory that may have moved on since the export.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict
from typing import Any

import onnxruntime as ort
import streamlit as st

from cgan.dashboard.loading import LoadedModel
from cgan.dashboard.sidebar import page_inputs
from cgan.dashboard.ui import LAST_GENERATION, error_box, file_size
from cgan.inference.generator import ImageGenerator
from cgan.inference.metadata import ModelInfo

LATENCY_BATCHES = ((1, 7), (100, 3))  # (batch, repeats): one image, and a 10x10 grid
LATENCY = "inspect.latency"  # {model key: [(batch, median ms), ...]}, measured once


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _table(rows: list[tuple[str, Any]], head: tuple[str, str]) -> str:
    lines = [f"| {head[0]} | {head[1]} |", "|---|---|"]
    lines += [f"| {name} | {_cell(value)} |" for name, value in rows]
    return "\n".join(lines)


def model_rows(model: LoadedModel) -> list[tuple[str, Any]]:
    """The facts shown in the model table, in reading order."""
    info: ModelInfo = model.generator.info
    size = info.image_size
    ema = (
        f"EMA generator (decay {info.ema_decay})"
        if info.weights == "ema"
        else "raw generator (no EMA)"
    )
    parity = info.parity_max_abs_diff
    return [
        ("file", model.source),
        ("size", f"{file_size(model.size_bytes)}, sha256 {model.sha256[:16]}…"),
        ("labels", f"{len(info.labels)}: {', '.join(info.labels)}"),
        ("resolution", f"{size}x{size} RGB"),
        ("latent dim", str(info.latent_dim)),
        ("architecture", info.arch),
        ("dataset", info.dataset),
        ("training", f"{info.training_steps} generator steps, {info.epochs:g} epochs"),
        ("weights", ema),
        ("precision", info.precision),
        ("ONNX opset", str(info.opset)),
        ("parity with Keras", "not recorded" if parity is None else f"max abs diff {parity:.2e}"),
        (
            "exported",
            f"{info.export_time or 'unknown'} by version {info.project_version or 'unknown'}",
        ),
        ("source run", info.source_run or "unknown"),
        ("execution provider", model.generator.provider),
        ("providers available", ", ".join(ort.get_available_providers())),
    ]


def median_ms(generator: ImageGenerator, batch: int, repeats: int) -> float:
    """The generator as a user feels it (noise made in numpy plus the onnxruntime run):
    the median over `repeats` calls after one warm-up call, since the first run allocates."""
    labels = [i % len(generator.labels) for i in range(batch)]
    seeds = list(range(batch))
    generator.generate(labels, seeds)
    times = []
    for _ in range(max(1, repeats)):
        started = time.perf_counter()
        generator.generate(labels, seeds)
        times.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(times)


def render(model: LoadedModel) -> None:
    info = model.generator.info
    left, right = st.columns([3, 2], gap="large")
    with left:
        st.subheader("Model")
        st.markdown(_table(model_rows(model), ("property", "value")))
    with right:
        st.subheader("Generation latency")
        with error_box():
            _latency(model)
        st.subheader("Metrics")
        _metrics(info.metrics)
    config = info.extra.get("training_config")  # ModelInfo has checked the types
    if config:
        with st.expander("Training configuration (from the model file)"):
            st.json(config)
    with st.expander("All metadata"):
        st.json(asdict(info), expanded=False)


def _latency(model: LoadedModel) -> None:
    measured: dict[str, list[tuple[int, float]]] = st.session_state.setdefault(LATENCY, {})
    if st.button("Measure again", key="inspect.remeasure"):
        measured.pop(model.key, None)
    if model.key not in measured:
        with st.spinner("Timing the generator…"):
            measured[model.key] = [
                (batch, median_ms(model.generator, batch, repeats))
                for batch, repeats in LATENCY_BATCHES
            ]
    rows = [
        (
            f"{batch} image{'s' if batch > 1 else ''}",
            f"{ms:.1f} ms ({1000.0 * batch / max(ms, 1e-9):.0f} images/s)",
        )
        for batch, ms in measured[model.key]
    ]
    last = st.session_state.get(LAST_GENERATION)
    if last and last.get("model") == model.key:
        rows.append((f"last grid ({last['images']} images)", f"{last['ms']:.1f} ms"))
    st.markdown(_table(rows, ("batch", "latency (median)")))
    st.caption(
        f"On {model.generator.provider}: noise made in numpy plus the onnxruntime run, "
        "median of several calls after a warm-up call."
    )


def _metrics(metrics: dict[str, Any] | None) -> None:
    if not metrics:
        st.info("No metrics in this model: the run was not evaluated before export.")
        return
    values = [(name, value) for name, value in metrics.items() if name != "protocol"]
    st.markdown(_table(values, ("metric", "value")))
    protocol = metrics.get("protocol")
    if protocol:
        st.caption("Protocol: how the metrics were measured")
        st.json(protocol, expanded=True)
    else:
        st.caption("No protocol recorded: these numbers cannot be compared with others.")


render(page_inputs()[0])
