"""Label decisions from ImageNet probabilities, through the labels' WordNet closures.

Shared by the gather stage's content check and the evaluation's zero-shot agreement, so
both read the network's answer the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cgan.common.imagenet.architecture import NUM_CLASSES
from cgan.common.imagenet.labelmap import LabelConcept


def membership(concepts: Sequence[LabelConcept]) -> np.ndarray:
    """bool [1000, labels]: ImageNet class i counts as label j."""
    table = np.zeros((NUM_CLASSES, len(concepts)), bool)
    for j, concept in enumerate(concepts):
        table[list(concept.classes), j] = True
    return table


def top1_agrees(
    probabilities: np.ndarray, wanted: np.ndarray, concepts: Sequence[LabelConcept]
) -> np.ndarray:
    """Per image: the most likely ImageNet class lies in the closure of its label
    ``concepts[wanted[i]]`` (the strict zero-shot reading)."""
    return membership(concepts)[probabilities.argmax(axis=1), np.asarray(wanted)]


def on_topic(
    probabilities: np.ndarray, concept: LabelConcept, k: int, min_prob: float
) -> np.ndarray:
    """Per image: one of its ``k`` most likely classes is in the label's closure with a
    probability of at least ``min_prob`` (the content check's rule)."""
    allowed = np.zeros(NUM_CLASSES, bool)
    allowed[list(concept.classes)] = True
    k = max(1, min(k, NUM_CLASSES))
    top = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    likely = np.take_along_axis(probabilities, top, axis=1) >= min_prob
    return (allowed[top] & likely).any(axis=1)
