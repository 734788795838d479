"""Sample-quality metrics on feature vectors (numpy and scipy only)."""

from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg

from cgan.common.errors import EvaluationError

# A covariance needs two samples (one gives 0/0 = NaN everywhere, on which sqrtm spends
# tens of seconds before it fails); the figures are only rough that close to it.
MIN_FRECHET_SAMPLES = 2


def _checked_features(features: np.ndarray, what: str, at_least: int) -> np.ndarray:
    """`features` as a finite float64 [N, D] with N >= at_least, or one line saying why not."""
    array = np.asarray(features, np.float64)
    if array.ndim != 2 or array.shape[1] == 0:
        raise EvaluationError(f"{what}: expected [samples, features], got shape {array.shape}")
    if len(array) < at_least:
        raise EvaluationError(f"{what}: needs at least {at_least} samples, got {len(array)}")
    if not np.isfinite(array).all():
        raise EvaluationError(f"{what}: the features are not all finite (NaN or inf images?)")
    return array


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """|mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^1/2) between Gaussian fits (FID's formula).
    Refuses (EvaluationError) fewer than MIN_FRECHET_SAMPLES samples or non-finite features."""
    a = _checked_features(a, "the Frechet distance", MIN_FRECHET_SAMPLES)
    b = _checked_features(b, "the Frechet distance", MIN_FRECHET_SAMPLES)
    if a.shape[1] != b.shape[1]:
        raise EvaluationError(f"the Frechet distance: {a.shape[1]} vs {b.shape[1]} features")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", linalg.LinAlgWarning)
        try:
            root = linalg.sqrtm(cov_a @ cov_b)
            singular = not np.isfinite(root).all()
        except linalg.LinAlgWarning:
            singular = True
    if singular:  # fewer samples than dimensions, or dead features: regularise as FID does
        offset = np.eye(len(cov_a)) * 1e-6
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", linalg.LinAlgWarning)
            root = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    root = np.real(root)
    return float(
        np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(root)
    )


def _pairwise_sq_distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.maximum((x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2 * x @ y.T, 0.0)


def _knn_radii(features: np.ndarray, k: int, chunk: int = 2048) -> np.ndarray:
    """Squared distance from each point to its k-th nearest other point."""
    radii = np.empty(len(features))
    for start in range(0, len(features), chunk):
        d = _pairwise_sq_distances(features[start : start + chunk], features)
        radii[start : start + chunk] = np.partition(d, k, axis=1)[:, k]  # column 0 is itself
    return radii


def _inside_manifold(
    points: np.ndarray, support: np.ndarray, radii: np.ndarray, chunk: int = 2048
) -> np.ndarray:
    inside = np.empty(len(points), bool)
    for start in range(0, len(points), chunk):
        d = _pairwise_sq_distances(points[start : start + chunk], support)
        inside[start : start + chunk] = (d <= radii[None, :]).any(axis=1)
    return inside


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Kynkaanniemi et al. 2019: precision = share of fakes inside the real k-NN manifold,
    recall = share of reals inside the fake k-NN manifold. Each set needs more than k
    samples (a k-th nearest other point)."""
    real = _checked_features(real, "precision/recall (real)", k + 1).astype(np.float32)
    fake = _checked_features(fake, "precision/recall (generated)", k + 1).astype(np.float32)
    precision = _inside_manifold(fake, real, _knn_radii(real, k)).mean()
    recall = _inside_manifold(real, fake, _knn_radii(fake, k)).mean()
    return float(precision), float(recall)


def accuracy(predicted: np.ndarray, wanted: np.ndarray) -> float:
    return float(np.mean(np.asarray(predicted) == np.asarray(wanted)))
