"""The model card: a Markdown page beside the .onnx, with a sample grid rendered by
onnxruntime from the exported file itself (not from Keras)."""

from __future__ import annotations

import json
from pathlib import Path

from cgan.common.files import atomic_path, write_text_atomic
from cgan.inference.generator import ImageGenerator
from cgan.inference.metadata import ModelInfo

CARD_SEEDS = tuple(range(8))


def _metrics_section(metrics: dict | None) -> str:
    if not metrics:
        return "Not evaluated yet.\n"
    rows = [f"| {k} | {v} |" for k, v in metrics.items() if k not in ("protocol", "per_class")]
    text = "| metric | value |\n|---|---|\n" + "\n".join(rows) + "\n"
    per_class = metrics.get("per_class")
    if isinstance(per_class, dict) and per_class:
        text += "\nPer class:\n\n" + _per_class_table(per_class)
    protocol = metrics.get("protocol")
    if protocol:
        text += f"\nProtocol:\n\n```json\n{json.dumps(protocol, indent=2)}\n```\n"
    return text


def _per_class_table(per_class: dict) -> str:
    """One row per class, one column per measure (the union over classes, in first-seen order)."""
    columns = list(dict.fromkeys(k for v in per_class.values() if isinstance(v, dict) for k in v))
    lines = ["| class | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, values in per_class.items():
        values = values if isinstance(values, dict) else {}
        lines.append(f"| {name} | " + " | ".join(str(values.get(c, "")) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def write_card(onnx_path: Path) -> tuple[Path, Path]:
    """NAME.md and NAME.png beside NAME.onnx; returns their paths."""
    generator = ImageGenerator(onnx_path, provider="cpu")
    info = generator.info
    grid_path = onnx_path.with_suffix(".png")
    with atomic_path(grid_path) as temporary:
        grid = generator.class_grid(CARD_SEEDS, scale=max(1, 64 // info.image_size))
        grid.save(temporary, format="PNG")
    size_mb = onnx_path.stat().st_size / 1e6
    card = f"""# {onnx_path.stem}

Conditional generator exported by cgan-label2image {info.project_version}: give it a class
and a seed, get a {info.image_size}x{info.image_size} RGB image.

![samples: one row per class, seeds {CARD_SEEDS[0]}-{CARD_SEEDS[-1]}]({grid_path.name})

*Rendered with onnxruntime from `{onnx_path.name}`, seeds {CARD_SEEDS[0]}-{CARD_SEEDS[-1]},
no truncation, one row per class.*

## Model

| | |
|---|---|
| file | `{onnx_path.name}` ({size_mb:.1f} MB, {info.precision}, opset {info.opset}) |
| architecture | {info.arch} |
| weights | {info.weights}{f" (EMA decay {info.ema_decay})" if info.weights == "ema" else ""} |
| dataset | {info.dataset} |
| classes | {len(info.labels)}: {", ".join(info.labels)} |
| latent_dim | {info.latent_dim} |
| training | {info.training_steps} generator steps, {info.epochs:.2f} epochs{_cpu_hours(info)} |
| source run | `{info.source_run}`{_started_from(info)} |
| exported | {info.export_time} |
| parity with Keras | {_parity(info)} |

## Contract

Inputs `noise` float32 [batch, {info.latent_dim}] (standard normal, made by the caller) and
`label` int64 [batch] (index into the labels above); output `image` float32
[batch, {info.image_size}, {info.image_size}, 3] in [-1, 1]. Batch size is dynamic. All the
fields above are in the file's metadata (`cgan-infer --info --model {onnx_path.name}`).

## Metrics

{_metrics_section(info.metrics)}"""
    card_path = onnx_path.with_suffix(".md")
    write_text_atomic(card_path, card)
    return card_path, grid_path


def _parity(info: ModelInfo) -> str:
    """The export's parity figure; a model from elsewhere may not carry one."""
    if info.parity_max_abs_diff is None:
        return "not recorded"
    return f"max abs difference {info.parity_max_abs_diff:.2e} at batch sizes 1, 7, 64"


def _cpu_hours(info: ModelInfo) -> str:
    hours = info.extra.get("training_cpu_hours")
    return f", {hours:.2f} CPU-hours" if isinstance(hours, (int, float)) else ""


def _started_from(info: ModelInfo) -> str:
    """The run it was initialised from (cgan-train --init-from), when the metadata says."""
    config = info.extra.get("training_config")
    source = config.get("init_source") if isinstance(config, dict) else None
    return f", started from `{source}`" if isinstance(source, str) and source else ""
