"""Quality figures of a generator while it trains, with the evaluation stage's own code.

A training run measures its EMA generator at every snapshot (`cgan-train --eval-every`) under
a reduced, fixed protocol: the same seeds every time (seed i is sample i of every class, as
in `cgan-eval`), against the same real reference. A dataset with CIFAR-10's classes is
measured by the judge (accuracy, Fréchet distance, precision, recall in its features, as
`cgan-eval` does); any other class folder by the probe judge and the ImageNet network's
features (class_folder.py). The real side is measured once, when the meter is built; a
class folder's ImageNet features come from the feature cache.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cgan.common.errors import EvaluationError
from cgan.common.images import to_uint8
from cgan.evaluation import MIN_SAMPLES_PER_CLASS, SHIPPED_JUDGE
from cgan.evaluation.class_folder import FolderJudge, ImageSource, describe_source
from cgan.evaluation.evaluate import (
    Protocol,
    at_judge_resolution,
    measure,
    real_samples,
    to_judge_indices,
)
from cgan.evaluation.feature_cache import default_cache_dir
from cgan.evaluation.imagenet_view import imagenet_in_training
from cgan.evaluation.judge import Judge, load_judge, read_sidecar, sidecar_path
from cgan.inference.generator import noise_for_seed
from cgan.training.labelled import LabelledImages

# noise [B, latent] float32, class indices [B] int32 -> images [B, H, W, 3] in [-1, 1]
Generate = Callable[[np.ndarray, np.ndarray], np.ndarray]

REFERENCE_PER_CLASS = 1000  # real images per class the samples are compared with, at most
BATCH = 250  # images per generator call

# The short names --keep-best takes -> (figure in the judge's results, in the probe's
# results, whether higher is better).
FIGURES = {
    "fd": ("frechet_distance", "imagenet_frechet_distance", False),
    "accuracy": ("accuracy", "probe_accuracy", True),
    "precision": ("precision", "imagenet_precision", True),
    "recall": ("recall", "imagenet_recall", True),
}


@dataclass(frozen=True)
class Figure:
    """One figure a run can be ranked by: its key in the records and its direction."""

    key: str
    higher_is_better: bool

    def better(self, new: float, old: float) -> bool:
        return new > old if self.higher_is_better else new < old


def uses_judge(labels: list[str], judge_weights: Path = SHIPPED_JUDGE) -> bool:
    """Whether the labels are the judge's classes (any case and order) and the judge is here."""
    if not judge_weights.is_file() or not sidecar_path(judge_weights).is_file():
        return False
    judge_labels = read_sidecar(sidecar_path(judge_weights))["labels"]
    return sorted(n.lower() for n in labels) == sorted(n.lower() for n in judge_labels)


class SnapshotMeter:
    """Built once per training session; `measure(generate)` at each snapshot."""

    def __init__(
        self,
        labels: list[str],
        resolution: int,
        latent_dim: int,
        samples_per_class: int,
        reference: ImageSource,
        probe_train: ImageSource,
        training_config: dict[str, Any] | None = None,
        cache_dir: Path | None = None,
        judge_weights: Path = SHIPPED_JUDGE,
    ) -> None:
        """`training_config` says whether the ImageNet figures are independent of training;
        `cache_dir` (default: the user's feature cache) keeps a class folder's features."""
        if samples_per_class < MIN_SAMPLES_PER_CLASS:  # refused now, not at the first snapshot
            raise EvaluationError(
                f"{samples_per_class} image per class cannot be measured: a class's "
                f"covariance needs at least {MIN_SAMPLES_PER_CLASS} (--eval-samples)"
            )
        self.labels = list(labels)
        self.resolution = resolution
        self.samples_per_class = samples_per_class
        self.not_independent = imagenet_in_training({"training_config": training_config or {}})
        self.noise = np.stack(
            [noise_for_seed(seed, latent_dim) for seed in range(samples_per_class)]
        )
        self.judge: Judge | None = None
        self.folder_judge: FolderJudge | None = None
        if uses_judge(self.labels, judge_weights):
            self.judge = load_judge(judge_weights)
            self._mapping = to_judge_indices(self.labels, self.judge.labels, "run")
            images, classes = _judge_reference(reference, self.judge.labels)
            self._reference = (self.judge.features_and_predictions(images)[0], classes)
            self._protocol = Protocol(
                samples_per_class=samples_per_class,
                reference=describe_source(reference),
                feature_network=self.judge.describe(),
            )
            self.kind = "judge"
        else:
            self.folder_judge = FolderJudge(
                reference, probe_train, resolution, cache_dir=cache_dir or default_cache_dir()
            )
            self._mapping = to_judge_indices(self.labels, self.folder_judge.labels, "run")
            self.kind = "probe"
        self.reference_images = (
            len(self._reference[1]) if self.judge else len(self.folder_judge.reference)
        )
        self.reference_name = describe_source(reference)

    def figure(self, name: str) -> Figure:
        judge_key, probe_key, higher = FIGURES[name]
        return Figure(judge_key if self.judge else probe_key, higher)

    def describe(self) -> str:
        """The protocol in one line: what a record's figures mean."""
        what = (
            "the CIFAR-10 judge's features and accuracy"
            if self.judge
            else "ImageNet features and the probe judge"
        )
        return (
            f"{self.samples_per_class} per class (seeds 0-{self.samples_per_class - 1}) against "
            f"{self.reference_images} real images ({self.reference_name}), in {what}"
        )

    def samples(self, generate: Generate) -> tuple[np.ndarray, np.ndarray]:
        """uint8 images of every class for the fixed seeds, and their class indices."""
        images, classes = [], []
        for k in range(len(self.labels)):
            for start in range(0, len(self.noise), BATCH):
                noise = self.noise[start : start + BATCH]
                out = generate(noise, np.full(len(noise), k, np.int32))
                images.append(to_uint8(out))
                classes.append(np.full(len(noise), k))
        return np.concatenate(images), np.concatenate(classes)

    def measure(self, generate: Generate) -> dict[str, Any]:
        """The figures of one snapshot (overall; no per-class breakdown)."""
        images, classes = self.samples(generate)
        if self.judge is not None:
            result = measure(
                at_judge_resolution(images),
                self._mapping[classes],
                self._reference,
                self.judge,
                self._protocol,
            )
            result.pop("per_class")
            return result
        result = self.folder_judge.measure_images(
            images, self._mapping[classes], self.not_independent
        )
        keep = (
            "probe_accuracy",
            "probe_accuracy_share",
            "imagenet_frechet_distance",
            "imagenet_precision",
            "imagenet_recall",
            "imagenet_independent",
        )
        return {key: result[key] for key in keep if key in result}


def _judge_reference(
    reference: ImageSource, judge_labels: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """The judge's reference images (at its resolution) and classes as its indices: the
    first REFERENCE_PER_CLASS of each class, in the order cgan-eval reads a folder."""
    if isinstance(reference, LabelledImages):
        mapping = to_judge_indices(reference.names, judge_labels, "training data")
        keep = np.concatenate(
            [
                np.flatnonzero(reference.labels == k)[:REFERENCE_PER_CLASS]
                for k in range(len(reference.names))
            ]
        )
        return at_judge_resolution(reference.images[keep]), mapping[reference.labels[keep]]
    if not Path(reference).is_dir():
        raise EvaluationError(f"the reference {reference} does not exist or is not a folder")
    return real_samples(Path(reference), judge_labels, REFERENCE_PER_CLASS)
