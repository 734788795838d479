"""The standard FID and Inception Score, for users who have the InceptionV3 ImageNet weights
as a file (they cannot be downloaded on machines without internet, so none is fetched)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cgan.common.errors import EvaluationError
from cgan.evaluation.metrics import frechet_distance

INCEPTION_SIZE = 299


def _network(weights: Path):
    if not weights.is_file():
        raise EvaluationError(
            f"no Inception weights file at {weights}: FID and IS need the "
            "InceptionV3 ImageNet weights (include_top) as a .weights.h5 file"
        )
    import keras

    try:
        model = keras.applications.InceptionV3(weights=str(weights), include_top=True)
    except Exception as exc:  # a wrong or damaged file
        raise EvaluationError(
            f"cannot load Inception weights {weights}: {str(exc)[:150]}"
        ) from None
    return keras.Model(model.input, [model.get_layer("avg_pool").output, model.output])


def _pool_and_probabilities(
    network, images: np.ndarray, batch: int
) -> tuple[np.ndarray, np.ndarray]:
    from keras import ops

    pools, probabilities = [], []
    for start in range(0, len(images), batch):
        chunk = ops.convert_to_tensor(images[start : start + batch].astype(np.float32))
        chunk = (
            ops.image.resize(chunk, (INCEPTION_SIZE, INCEPTION_SIZE), interpolation="bilinear")
            / 127.5
            - 1.0
        )
        pool, probability = network(chunk, training=False)
        pools.append(np.asarray(pool))
        probabilities.append(np.asarray(probability))
    return np.concatenate(pools), np.concatenate(probabilities)


def inception_score(probabilities: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """exp(E KL(p(y|x) || p(y))), mean and standard deviation over splits."""
    scores = []
    for part in np.array_split(probabilities.astype(np.float64), min(splits, len(probabilities))):
        marginal = part.mean(axis=0, keepdims=True)
        kl = (part * (np.log(part + 1e-12) - np.log(marginal + 1e-12))).sum(axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def fid_and_is(
    generated: np.ndarray, reference: np.ndarray, weights: Path, batch: int = 50
) -> dict:
    network = _network(weights)
    gen_pool, gen_probabilities = _pool_and_probabilities(network, generated, batch)
    ref_pool, _ = _pool_and_probabilities(network, reference, batch)
    mean, std = inception_score(gen_probabilities)
    return {
        "fid_inception": round(frechet_distance(gen_pool, ref_pool), 3),
        "inception_score": round(mean, 3),
        "inception_score_std": round(std, 3),
        "inception_weights": str(weights),
    }
