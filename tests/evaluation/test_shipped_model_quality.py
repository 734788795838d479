"""The shipped CIFAR-10 generator draws the class it is asked for, as the shipped judge sees
it, far above chance (0.1). A fresh sample of seeds, not the ones the evaluation used."""

from __future__ import annotations

import numpy as np
import pytest

from cgan.evaluation import SHIPPED_JUDGE
from cgan.inference.default_model import shipped_model_path

SHIPPED = shipped_model_path()


@pytest.mark.slow
@pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped model here")
def test_judge_recognises_the_requested_classes():
    pytest.importorskip("tensorflow")
    from cgan.evaluation.judge import load_judge
    from cgan.evaluation.metrics import accuracy
    from cgan.inference.generator import ImageGenerator

    generator = ImageGenerator(SHIPPED, provider="cpu")
    judge = load_judge(SHIPPED_JUDGE)
    assert judge.labels == generator.labels
    per_class = 40
    classes = np.repeat(np.arange(10), per_class)
    seeds = list(range(50_000, 50_000 + per_class)) * 10
    images = generator.generate(classes.tolist(), seeds)
    _, predicted = judge.features_and_predictions(images)
    measured = generator.info.metrics["accuracy"]
    # 400 images: a standard error of about 0.025 around the 10,000-sample figure
    assert accuracy(predicted, classes) > measured - 0.1
    assert accuracy(predicted, classes) > 0.3
