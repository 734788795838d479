"""Evaluation of a model trained on any class-folder dataset, where no judge knows the classes.

Every figure is measured in the ImageNet network's pooled features at the model's resolution
(images read and centre-cropped as training reads them, then upscaled whole to 224x224):
Fréchet distance, precision and recall against the reference (validation) split, zero-shot
agreement where the labels have an ImageNet meaning, and the probe judge's accuracy (probe.py)
with its accuracy on the real reference images as the ceiling. The dataset's side (the
network, both splits' features, the fitted probe) is built once in a `FolderJudge`, so a
training run or a study can measure checkpoint after checkpoint against it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cgan.common.errors import EvaluationError, ImageNetError
from cgan.common.imagenet.runner import Predictions
from cgan.evaluation.evaluate import check_samples_per_class, check_sampling, to_judge_indices
from cgan.evaluation.feature_cache import BATCH, FolderFeatures, folder_features
from cgan.evaluation.imagenet_view import figures_from_predictions, imagenet_runner
from cgan.evaluation.metrics import accuracy
from cgan.evaluation.probe import ProbeJudge
from cgan.inference.generator import ImageGenerator
from cgan.training.labelled import LabelledImages

FEATURE_SPACE = (
    "EfficientNet-Lite0 (ImageNet) pooled 1280-d features; images at the model's resolution, "
    "upscaled whole to 224x224 (bicubic)"
)


@dataclass(frozen=True)
class FolderProtocol:
    """Everything that decides the numbers of a class-folder evaluation."""

    samples_per_class: int = 1000
    first_seed: int = 0  # sample i of every class uses seed first_seed + i
    truncation: float | None = None
    resolution: int = 64
    reference: str = ""  # the validation split the samples are compared with
    reference_images: int = 0
    probe_train: str = ""  # the real images the probe judge was fitted on
    probe_train_images: int = 0
    probe: str = ""
    knn_k: int = 3
    feature_space: str = FEATURE_SPACE
    imagenet_network: str = ""
    imagenet_weights_sha256: str = ""


# A class folder on disk (its features cached), or images already in memory: a training
# run's own data, at the model's resolution.
ImageSource = Path | LabelledImages


def describe_source(source: ImageSource) -> str:
    if isinstance(source, LabelledImages):
        return "the training data, in memory"
    return str(source)


@dataclass
class FolderJudge:
    """A dataset's fixed side of every evaluation: the network, the reference split's
    features and the probe fitted on the training split's."""

    reference_source: ImageSource
    probe_train_source: ImageSource
    resolution: int
    weights: Path | None = None
    synsets: dict[str, str] = field(default_factory=dict)
    cache_dir: Path | None = None
    knn_k: int = 3
    network: str = "lite0"  # the ImageNet network (lite2: one a projected D never read)

    def __post_init__(self) -> None:
        for what, folder in (
            ("--reference", self.reference_source),
            ("--probe-train", self.probe_train_source),
        ):
            if not isinstance(folder, LabelledImages) and not Path(folder).is_dir():
                raise EvaluationError(f"{what} {folder} does not exist or is not a folder")
        try:
            self.runner = imagenet_runner(self.weights, self.network)
        except ImportError as exc:
            raise EvaluationError(
                f"class-folder evaluation needs the ImageNet network: {exc.name or exc} is not "
                "installed (pip install -e '.[export]')"
            ) from None
        except ImageNetError as exc:
            raise EvaluationError(str(exc)) from None
        self.reference = self.features(self.reference_source)
        train = self.features(self.probe_train_source)
        if [n.lower() for n in train.names] != [n.lower() for n in self.reference.names]:
            raise EvaluationError(
                f"--probe-train {describe_source(self.probe_train_source)} has classes "
                f"{train.names}, --reference {describe_source(self.reference_source)} has "
                f"{self.reference.names}"
            )
        self.labels = self.reference.names
        self.probe = ProbeJudge(train.predictions.pooled, train.classes, len(self.labels))
        self.probe_train_images = len(train)
        self.reference_predicted = self.probe.predict(self.reference.predictions.pooled)

    def features(self, source: ImageSource) -> FolderFeatures:
        """A class folder's features at this judge's resolution (cached), or those of
        images in memory (computed)."""
        if isinstance(source, LabelledImages):
            self._check_size(source.images)
            predictions = self.runner.predict_all(source.images, BATCH)
            return FolderFeatures(list(source.names), source.labels.astype(np.int64), predictions)
        return folder_features(Path(source), self.resolution, self.runner, self.cache_dir)

    def _check_size(self, images: np.ndarray) -> None:
        if images.shape[1:3] != (self.resolution, self.resolution):
            raise EvaluationError(
                f"images are {images.shape[1]}x{images.shape[2]}, the judge measures "
                f"{self.resolution}x{self.resolution}"
            )

    def protocol(
        self, samples_per_class: int, first_seed: int, truncation: float | None
    ) -> FolderProtocol:
        return FolderProtocol(
            samples_per_class=samples_per_class,
            first_seed=first_seed,
            truncation=truncation,
            resolution=self.resolution,
            reference=describe_source(self.reference_source),
            reference_images=len(self.reference),
            probe_train=describe_source(self.probe_train_source),
            probe_train_images=self.probe_train_images,
            probe=self.probe.describe(),
            knn_k=self.knn_k,
            imagenet_network=self.runner.describe(),
            imagenet_weights_sha256=self.runner.weights.sha256,
        )

    def measure_images(
        self, images: np.ndarray, classes: np.ndarray, not_independent: str | None = None
    ) -> dict[str, Any]:
        """uint8 images at this judge's resolution, `classes` indexing `labels`."""
        self._check_size(images)
        return self.measure(self.runner.predict_all(images, BATCH), classes, not_independent)

    def measure(
        self,
        predictions: Predictions,
        classes: np.ndarray,
        not_independent: str | None = None,
        note: str | None = None,
    ) -> dict[str, Any]:
        """Every figure for images already through the network."""
        classes = np.asarray(classes)
        reference = self.reference
        figures, zero_shot = figures_from_predictions(
            predictions,
            classes,
            reference.predictions,
            reference.classes,
            self.labels,
            self.knn_k,
            self.runner,
            self.synsets,
            not_independent,
            note,
        )
        if not_independent:
            figures["imagenet_note"] += " (the probe judge reads the same features)"
        predicted = self.probe.predict(predictions.pooled)
        per_class = {}
        for k, name in enumerate(self.labels):
            mine, theirs = classes == k, reference.classes == k
            per_class[name] = {
                "probe_accuracy": round(accuracy(predicted[mine], classes[mine]), 4),
                "probe_accuracy_reference": round(
                    accuracy(self.reference_predicted[theirs], reference.classes[theirs]), 4
                ),
                **zero_shot.get(name, {}),
            }
        probe = accuracy(predicted, classes)
        ceiling = accuracy(self.reference_predicted, reference.classes)
        return {
            "probe_accuracy": round(probe, 4),
            "probe_accuracy_reference": round(ceiling, 4),
            "probe_accuracy_share": round(probe / ceiling, 4) if ceiling else None,
            **{
                k: v
                for k, v in figures.items()
                if k not in ("imagenet_network", "imagenet_weights_sha256")
            },
            "per_class": per_class,
        }


def evaluate_generator(
    generator: ImageGenerator,
    judge: FolderJudge,
    samples_per_class: int = 1000,
    first_seed: int = 0,
    truncation: float | None = None,
) -> dict[str, Any]:
    """An exported model at the judge's resolution: samples_per_class images per class."""
    from cgan.evaluation.imagenet_view import family_note, imagenet_in_training

    size = generator.info.image_size
    if size != judge.resolution:
        raise EvaluationError(
            f"the model draws {size}x{size}, the judge was built for "
            f"{judge.resolution}x{judge.resolution}"
        )
    mapping = to_judge_indices(generator.labels, judge.labels, "model")
    check_sampling(generator, samples_per_class, first_seed)
    seeds = list(range(first_seed, first_seed + samples_per_class))
    model_classes = np.repeat(np.arange(len(generator.labels)), len(seeds))
    images = generator.generate(model_classes.tolist(), seeds * len(generator.labels), truncation)
    extra = generator.info.extra
    result = judge.measure(
        judge.runner.predict_all(images, BATCH),
        mapping[model_classes],
        imagenet_in_training(extra, judge.network),
        family_note(extra, judge.network),
    )
    protocol = judge.protocol(samples_per_class, first_seed, truncation)
    return _stamped(result, generator.source, "generated", len(images), protocol)


def evaluate_real_folder(
    folder: Path, judge: FolderJudge, samples_per_class: int = 1000
) -> dict[str, Any]:
    """Real images under the same protocol (its first samples_per_class per class): the
    ceiling a model can reach."""
    if not Path(folder).is_dir():
        raise EvaluationError(f"--real {folder} does not exist or is not a folder")
    check_samples_per_class(samples_per_class)
    found = judge.features(Path(folder)).first_per_class(samples_per_class)
    mapping = to_judge_indices(found.names, judge.labels, "folder")
    result = judge.measure(found.predictions, mapping[found.classes])
    protocol = judge.protocol(samples_per_class, 0, None)
    return _stamped(result, folder, "real images", len(found), protocol)


def _stamped(
    result: dict[str, Any], source: str | Path, kind: str, samples: int, protocol: FolderProtocol
) -> dict[str, Any]:
    result["source"] = str(source)
    result["kind"] = kind
    result["samples"] = int(samples)
    result["reference_samples"] = protocol.reference_images
    result["protocol"] = asdict(protocol)
    result["measured_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    return result
