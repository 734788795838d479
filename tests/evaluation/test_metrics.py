"""The evaluation metrics on feature sets with known answers, and the judge's shapes."""

from __future__ import annotations

import time

import numpy as np
import pytest

from cgan.evaluation.metrics import accuracy, frechet_distance, precision_recall


def test_frechet_distance_of_known_gaussians():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((20000, 4))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    shifted = a + np.array([3.0, 0.0, 0.0, 4.0])
    assert frechet_distance(a, shifted) == pytest.approx(25.0, rel=1e-6)
    scaled = rng.standard_normal((20000, 4)) * 2.0  # Tr(1 + 4 - 2*2) = 1 per dimension
    assert frechet_distance(a, scaled) == pytest.approx(4.0, rel=0.05)


def test_precision_and_recall_separate_fidelity_from_coverage():
    rng = np.random.default_rng(1)
    real = rng.standard_normal((2000, 2))
    assert precision_recall(real, real.copy()) == (1.0, 1.0)
    far = rng.standard_normal((2000, 2)) + 50.0
    assert precision_recall(real, far) == (0.0, 0.0)
    # Fakes collapsed onto one corner of the real cloud: faithful but not diverse.
    collapsed = real[real[:, 0] > 1.0][:200]
    precision, recall = precision_recall(real, collapsed)
    assert precision > 0.95 and recall < 0.4


def test_accuracy():
    assert accuracy([0, 1, 2, 2], [0, 1, 1, 2]) == 0.75


def test_judge_outputs_logits_and_features():
    pytest.importorskip("keras")
    from cgan.evaluation.judge import build_judge, feature_and_logit_model

    judge = build_judge(num_classes=10, resolution=32, width=8)
    features, logits = feature_and_logit_model(judge)(np.zeros((2, 32, 32, 3), np.float32))
    assert tuple(features.shape) == (2, 256) and tuple(logits.shape) == (2, 10)


def test_frechet_distance_refuses_one_sample_at_once():
    """One sample's covariance is NaN everywhere; scipy's sqrtm spent 38 s on it and then
    failed with a LinAlgError: refuse it with one line before any matrix root."""
    from cgan.common.errors import EvaluationError

    rng = np.random.default_rng(2)
    started = time.monotonic()
    with pytest.raises(EvaluationError, match="at least 2 samples, got 1"):
        frechet_distance(rng.standard_normal((1, 128)), rng.standard_normal((50, 128)))
    assert time.monotonic() - started < 1.0
    assert np.isfinite(frechet_distance(rng.random((2, 128)), rng.random((50, 128))))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_frechet_distance_refuses_features_that_are_not_finite(bad: float):
    """A model that draws NaN pixels gives NaN features: no figure, one line saying so."""
    from cgan.common.errors import EvaluationError

    rng = np.random.default_rng(3)
    broken = rng.standard_normal((40, 16))
    broken[5, 3] = bad
    with pytest.raises(EvaluationError, match="not all finite"):
        frechet_distance(rng.standard_normal((40, 16)), broken)


def test_precision_recall_needs_more_samples_than_k():
    """The k-th nearest other point of each sample must exist (np.partition fails else)."""
    from cgan.common.errors import EvaluationError

    rng = np.random.default_rng(4)
    with pytest.raises(EvaluationError, match="at least 4 samples, got 3"):
        precision_recall(rng.standard_normal((50, 2)), rng.standard_normal((3, 2)), k=3)
