"""An independent view of samples: features of a pretrained ImageNet network nobody here trained.

Beside the judge's figures, cgan-eval measures the Fréchet distance and precision/recall in
EfficientNet-Lite0's 1280-d pooled features, and the zero-shot class agreement: the share of
images whose most likely ImageNet class lies in their label's WordNet closure (labels with
no ImageNet class, like CIFAR-10's deer, are named and left out). Images are upscaled whole
(no crop) to the network's size (224x224) with bicubic resampling, on onnxruntime. The
figures are flagged ``imagenet_independent: false`` when the model's training used this
network (see :func:`imagenet_in_training`), because a model trained against a feature space
is no longer measured independently in it. A projected discriminator reads Lite0, so
``--imagenet-network lite2`` (EfficientNet-Lite2, 260x260, trained apart) measures such a
model in a network it never read; the note says that the two share a family and their data.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cgan.common.imagenet.architecture import LITE0
from cgan.evaluation.metrics import frechet_distance, precision_recall

if TYPE_CHECKING:
    from cgan.common.imagenet.runner import ImageNetRunner, Predictions
    from cgan.common.imagenet.weights import ImageNetWeights

BATCH = 100
_NO = (None, False, 0, "", "none", "false", "no")
INDEPENDENT = "imagenet_independent"  # an exported model's extra: did D see the network?
# The network a projected discriminator reads, and so the view's default.
DISCRIMINATOR_NETWORK = LITE0.name


def imagenet_in_training(
    extra: dict[str, Any] | None, network: str = DISCRIMINATOR_NETWORK
) -> str | None:
    """Why the model is not independent of the ImageNet network ``network``, or None.

    The exporter records ``imagenet_independent`` in the model's ``extra`` (false when its
    discriminator read the network's features). Models exported before that key, and
    training configs measured during training, are judged by ``imagenet_projected``. A
    projected discriminator reads Lite0, so another network stays independent of it."""
    return read_by_discriminator(extra) if network == DISCRIMINATOR_NETWORK else None


def family_note(extra: dict[str, Any] | None, network: str) -> str | None:
    """What a reader must know when the view is Lite2 and D read Lite0's features."""
    if network == DISCRIMINATOR_NETWORK or read_by_discriminator(extra) is None:
        return None
    return (
        f"the discriminator read EfficientNet-Lite0's features; this view's network "
        f"({network}) was trained apart, but on the same ImageNet images, in the same family"
    )


def read_by_discriminator(extra: dict[str, Any] | None) -> str | None:
    """Why the model's discriminator read EfficientNet-Lite0's features, or None."""
    extra = extra or {}
    if INDEPENDENT in extra:
        if extra[INDEPENDENT] is False:
            return "the model's metadata says imagenet_independent: false"
        return None
    if (extra.get("training_config") or {}).get("imagenet_projected") not in _NO:
        return "its training config sets imagenet_projected = true"
    return None


def _concepts(labels: Sequence[str], synsets: dict[str, str]) -> tuple[list, str | None]:
    """Label concepts, or the reason zero-shot agreement cannot be measured."""
    from cgan.common.errors import ImageNetError
    from cgan.common.imagenet.classes import load_classes
    from cgan.common.imagenet.labelmap import map_label
    from cgan.common.imagenet.wordnet import load_wordnet

    try:
        wordnet, classes = load_wordnet(), load_classes()
        return [map_label(label, wordnet, classes, synsets.get(label)) for label in labels], None
    except ImageNetError as exc:
        return [], f"not measured: {exc}"


@functools.lru_cache(maxsize=2)
def checked_weights(weights: Path | None, network: str) -> ImageNetWeights:
    """The network's weights, read and checked once per process: cgan-eval checks them
    before minutes of sampling, and the figures reuse them. Raises ImageNetError."""
    from cgan.common.imagenet.weights import find_network, load_weights

    return load_weights(weights, find_network(network))


def imagenet_runner(
    weights: Path | None = None, network: str = DISCRIMINATOR_NETWORK
) -> ImageNetRunner:
    """The network on onnxruntime, fed whole images (no crop), as every figure here uses it.
    Raises ImageNetError or ImportError when it is not available."""
    from cgan.common.imagenet.preprocess import WHOLE_IMAGE
    from cgan.common.imagenet.runner import ImageNetRunner

    return ImageNetRunner(checked_weights(weights, network), crop=WHOLE_IMAGE)


def imagenet_figures(
    images: np.ndarray,
    classes: np.ndarray,
    reference: np.ndarray,
    reference_classes: np.ndarray,
    labels: Sequence[str],
    knn_k: int,
    weights: Path | None = None,
    synsets: dict[str, str] | None = None,
    not_independent: str | None = None,
    network: str = DISCRIMINATOR_NETWORK,
    note: str | None = None,
    cache_dir: Path | None = None,
) -> tuple[dict[str, Any], dict]:
    """(top-level figures, per-class zero-shot agreement) in the network's features; ``classes``
    index ``labels``. The reference's features are kept in ``cache_dir`` (none: computed).
    Raises ImageNetError or ImportError when the network is not available."""
    from cgan.evaluation.feature_cache import image_features

    runner = imagenet_runner(weights, network)
    return figures_from_predictions(
        runner.predict_all(images, BATCH),
        classes,
        image_features(reference, reference_classes, list(labels), runner, cache_dir),
        reference_classes,
        labels,
        knn_k,
        runner,
        synsets,
        not_independent,
        note,
    )


def figures_from_predictions(
    mine: Predictions,
    classes: np.ndarray,
    theirs: Predictions,
    reference_classes: np.ndarray,
    labels: Sequence[str],
    knn_k: int,
    runner: ImageNetRunner,
    synsets: dict[str, str] | None = None,
    not_independent: str | None = None,
    note: str | None = None,
) -> tuple[dict[str, Any], dict]:
    """The figures of :func:`imagenet_figures` from the network's outputs, computed once by
    the caller (a cached reference split). No per-class Fréchet distance: 1,000 samples
    cannot pin a 1280-d covariance."""
    from cgan.common.imagenet.zeroshot import top1_agrees

    precision, recall = precision_recall(theirs.pooled, mine.pooled, knn_k)
    concepts, zero_shot_note = _concepts(labels, synsets or {})
    figures: dict[str, Any] = {
        "imagenet_frechet_distance": round(frechet_distance(mine.pooled, theirs.pooled), 3),
        "imagenet_precision": round(precision, 4),
        "imagenet_recall": round(recall, 4),
        "imagenet_independent": not_independent is None,
        "imagenet_network": runner.describe(),
        "imagenet_weights_sha256": runner.weights.sha256,
    }
    if not_independent:
        figures["imagenet_note"] = f"not independent: {not_independent}"
    elif note:
        figures["imagenet_note"] = note
    if zero_shot_note:
        figures["zero_shot_agreement"] = None
        figures["zero_shot_note"] = zero_shot_note
        return figures, {}
    agrees = top1_agrees(mine.probabilities, classes, concepts)
    reference_agrees = top1_agrees(theirs.probabilities, reference_classes, concepts)
    mapped = np.array([concept.checked for concept in concepts])
    figures["zero_shot_agreement"] = (
        round(float(agrees[mapped[classes]].mean()), 4) if mapped[classes].any() else None
    )
    figures["zero_shot_reference"] = (
        round(float(reference_agrees[mapped[reference_classes]].mean()), 4)
        if mapped[reference_classes].any()
        else None
    )
    figures["zero_shot_unmapped_labels"] = [c.label for c in concepts if not c.checked]
    per_class = {
        name: {
            "zero_shot_agreement": round(float(agrees[classes == k].mean()), 4)
            if concepts[k].checked and (classes == k).any()
            else None
        }
        for k, name in enumerate(labels)
    }
    return figures, per_class
