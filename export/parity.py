"""Prove the ONNX file computes what Keras computes, on the same inputs."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from cgan.inference.metadata import INPUT_LABEL, INPUT_NOISE, OUTPUT_IMAGE
from cgan.inference.session import open_session

PARITY_BATCHES = (1, 7, 64)


def max_abs_difference(
    generator: keras.Model,
    onnx_bytes: bytes,
    latent_dim: int,
    num_classes: int,
    batches: Sequence[int] = PARITY_BATCHES,
    seed: int = 0,
) -> dict[int, float]:
    """Max |Keras - onnxruntime| per batch size, all batches through one session."""
    session = open_session(onnx_bytes, "cpu")
    rng = np.random.default_rng(seed)
    differences = {}
    for batch in batches:
        noise = rng.standard_normal((batch, latent_dim)).astype(np.float32)
        labels = rng.integers(0, num_classes, batch)
        expected = np.asarray(generator([noise, labels.astype(np.int32)], training=False))
        (actual,) = session.run(
            [OUTPUT_IMAGE], {INPUT_NOISE: noise, INPUT_LABEL: labels.astype(np.int64)}
        )
        differences[batch] = float(np.max(np.abs(actual - expected)))
    return differences
