"""Put evaluation results into an exported model's metadata (and refresh its card)."""

from __future__ import annotations

from pathlib import Path

import onnx

from cgan.export.convert import attach_metadata
from cgan.export.exporter import write_atomically
from cgan.inference.metadata import ModelInfo


def embed_metrics(model_path: Path, metrics: dict, card: bool = True) -> ModelInfo:
    model = onnx.load(model_path)
    info = ModelInfo.from_props({p.key: p.value for p in model.metadata_props})
    info.metrics = metrics
    attach_metadata(model, info)
    write_atomically(model, model_path)
    if card and model_path.with_suffix(".md").is_file():
        from cgan.export.card import write_card

        write_card(model_path)
    return info
