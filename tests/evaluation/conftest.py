"""A tiny judge for the synthetic shapes and a reference folder of real synthetic images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="session")
def synthetic_reference(tmp_path_factory) -> Path:
    from cgan.training.shapes import make_shapes

    data = make_shapes(3, 60, 32, seed=11)
    root = tmp_path_factory.mktemp("reference")
    for index, (image, label) in enumerate(zip(data.images, data.labels, strict=True)):
        folder = root / data.names[label]
        folder.mkdir(exist_ok=True)
        Image.fromarray(image).save(folder / f"{index:04d}.png")
    return root


@pytest.fixture(scope="session")
def tiny_judge(tmp_path_factory) -> Path:
    """A judge trained for a few seconds: enough to tell the shapes' colours apart."""
    pytest.importorskip("tensorflow")
    from cgan.training.runtime import quiet_tensorflow

    quiet_tensorflow()
    import keras

    from cgan.evaluation.judge import build_judge
    from cgan.training.shapes import make_shapes

    data = make_shapes(3, 100, 32, seed=5)
    order = sorted(data.names)  # as a class-folder dataset would name them
    labels = np.array([order.index(data.names[k]) for k in data.labels])
    keras.utils.set_random_seed(0)
    judge = build_judge(3, 32, width=8)
    judge.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    judge.fit(
        data.images.astype(np.float32) / 127.5 - 1, labels, epochs=30, batch_size=32, verbose=0
    )
    path = tmp_path_factory.mktemp("judge") / "judge.weights.h5"
    judge.save_weights(path)
    path.with_name("judge.json").write_text(
        json.dumps({"labels": order, "width": 8, "test_accuracy": 1.0, "sha256": "test"})
    )
    return path
