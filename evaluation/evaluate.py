"""Measure generated images (or a folder of real ones, for the ceiling) against a reference
split with the judge: class accuracy, Frechet distance and precision/recall, overall and
per class, under a pinned protocol that is written into every result."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from cgan.common.errors import EvaluationError, InferenceError
from cgan.common.images import fit_to_resolution
from cgan.common.progress import Progress
from cgan.evaluation import MAX_SAMPLES_PER_CLASS, MIN_SAMPLES_PER_CLASS
from cgan.evaluation.imagenet_view import DISCRIMINATOR_NETWORK, checked_weights
from cgan.evaluation.judge import JUDGE_RESOLUTION, Judge
from cgan.evaluation.metrics import accuracy, frechet_distance, precision_recall
from cgan.inference.generator import ImageGenerator
from cgan.inference.requests import MAX_SEED, check_request
from cgan.training.data import load_folder


@dataclass(frozen=True)
class Protocol:
    """Everything that decides the numbers; two results compare only under equal protocols."""

    samples_per_class: int = 1000
    first_seed: int = 0  # sample i of every class uses seed first_seed + i
    truncation: float | None = None
    reference: str = "../shared/datasets/cifar10/test"
    data_copy: str = "CIFAR-10 as JPEG class folders (lossy re-encoding of the original PNGs)"
    feature_network: str = ""
    knn_k: int = 3
    imagenet_network: str = ""  # the independent view's network and input, when measured
    imagenet_weights_sha256: str = ""


@dataclass(frozen=True)
class ImageNetView:
    """Whether and how to add the pretrained ImageNet network's figures (imagenet_view)."""

    enabled: bool = True
    weights: Path | None = None  # default: the network's pip package (efficientnet-lite0-...)
    network: str = DISCRIMINATOR_NETWORK  # or lite2: a network a projected D never read
    cache_dir: Path | None = None  # where the reference's features are kept (None: not kept)
    synsets: dict[str, str] = field(default_factory=dict)  # label -> WordNet synset

    def check(self) -> None:
        """Read and check the network's weights now, so a bad file or a missing package
        stops cgan-eval before minutes of sampling (the figures reuse what is read)."""
        from cgan.common.errors import ImageNetError

        if not self.enabled:
            return
        try:
            checked_weights(self.weights, self.network)
        except ImageNetError as exc:
            raise EvaluationError(str(exc)) from None


def at_judge_resolution(images: np.ndarray) -> np.ndarray:
    if images.shape[1] == JUDGE_RESOLUTION:
        return images
    return np.stack([fit_to_resolution(image, JUDGE_RESOLUTION) for image in images])


def to_judge_indices(names: list[str], judge_labels: list[str], what: str) -> np.ndarray:
    """Index k of `names` -> the judge's index of the same class name (any case)."""
    wanted = {name.lower(): i for i, name in enumerate(judge_labels)}
    if sorted(name.lower() for name in names) != sorted(wanted):
        raise EvaluationError(f"the {what}'s labels {names} are not the judge's {judge_labels}")
    return np.array([wanted[name.lower()] for name in names])


def check_samples_per_class(samples_per_class: int) -> None:
    if not MIN_SAMPLES_PER_CLASS <= samples_per_class <= MAX_SAMPLES_PER_CLASS:
        raise EvaluationError(
            f"--samples-per-class {samples_per_class}: must be {MIN_SAMPLES_PER_CLASS} to "
            f"{MAX_SAMPLES_PER_CLASS} (a class's covariance needs {MIN_SAMPLES_PER_CLASS})"
        )


def check_sampling(generator: ImageGenerator, samples_per_class: int, first_seed: int) -> None:
    """Refuse, before any seed list or image exists, a sample count outside
    MIN..MAX_SAMPLES_PER_CLASS, seeds beyond MAX_SEED, or more pixels than one request may
    hold (a hostile --samples-per-class must not fill the memory first)."""
    check_samples_per_class(samples_per_class)
    last = first_seed + samples_per_class - 1
    if first_seed < 0 or last > MAX_SEED:
        raise EvaluationError(
            f"--first-seed {first_seed}: seeds {first_seed}..{last} leave 0..{MAX_SEED}"
        )
    try:
        check_request(
            samples_per_class * len(generator.labels),
            generator.info.image_size,
            latent_dim=generator.info.latent_dim,
        )
    except InferenceError as exc:
        raise EvaluationError(f"--samples-per-class {samples_per_class}: {exc}") from None


def generated_samples(
    generator: ImageGenerator, judge_labels: list[str], protocol: Protocol
) -> tuple[np.ndarray, np.ndarray]:
    """samples_per_class images of every class; classes as the judge's indices."""
    mapping = to_judge_indices(generator.labels, judge_labels, "model")
    check_sampling(generator, protocol.samples_per_class, protocol.first_seed)
    seeds = list(range(protocol.first_seed, protocol.first_seed + protocol.samples_per_class))
    classes = np.repeat(np.arange(len(generator.labels)), len(seeds))
    images = generator.generate(
        classes.tolist(), seeds * len(generator.labels), protocol.truncation
    )
    return at_judge_resolution(images), mapping[classes]


def real_samples(
    folder: Path, judge_labels: list[str], per_class: int
) -> tuple[np.ndarray, np.ndarray]:
    """The first `per_class` images of each class folder, in sorted file order."""
    data = load_folder(folder, JUDGE_RESOLUTION)
    mapping = to_judge_indices(data.names, judge_labels, "folder")
    keep = np.concatenate(
        [np.flatnonzero(data.labels == k)[:per_class] for k in range(len(data.names))]
    )
    return data.images[keep], mapping[data.labels[keep]]


def measure(
    images: np.ndarray,
    classes: np.ndarray,
    reference: tuple[np.ndarray, np.ndarray],
    judge: Judge,
    protocol: Protocol,
) -> dict:
    features, predicted = judge.features_and_predictions(images)
    ref_features, ref_classes = reference
    precision, recall = precision_recall(ref_features, features, protocol.knn_k)
    per_class = {}
    for k, name in enumerate(judge.labels):
        mine, theirs = classes == k, ref_classes == k
        try:
            distance = frechet_distance(features[mine], ref_features[theirs])
        except EvaluationError as exc:
            raise EvaluationError(f"class {name}: {exc}") from None
        per_class[name] = {
            "accuracy": round(accuracy(predicted[mine], classes[mine]), 4),
            "frechet_distance": round(distance, 3),
        }
    return {
        "accuracy": round(accuracy(predicted, classes), 4),
        "frechet_distance": round(frechet_distance(features, ref_features), 3),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "per_class": per_class,
    }


def add_imagenet_view(
    result: dict,
    protocol: Protocol,
    view: ImageNetView,
    samples: tuple[np.ndarray, np.ndarray],
    reference: tuple[np.ndarray, np.ndarray],
    labels: list[str],
    extra: dict | None,
) -> Protocol:
    """Put the ImageNet network's figures into `result`; returns the protocol naming it."""
    from cgan.common.errors import ImageNetError
    from cgan.evaluation.imagenet_view import family_note, imagenet_figures, imagenet_in_training

    if not view.enabled:
        result["imagenet_note"] = "not measured: --no-imagenet"
        return protocol
    try:
        figures, per_class = imagenet_figures(
            *samples,
            *reference,
            labels,
            protocol.knn_k,
            view.weights,
            view.synsets,
            imagenet_in_training(extra, view.network),
            view.network,
            family_note(extra, view.network),
            view.cache_dir,
        )
    except ImportError as exc:
        result["imagenet_note"] = (
            f"not measured: {exc.name or exc} is not installed (pip install -e '.[export]')"
        )
        return protocol
    except ImageNetError as exc:
        raise EvaluationError(str(exc)) from None
    for name, values in per_class.items():
        result["per_class"][name].update(values)
    network, sha = figures.pop("imagenet_network"), figures.pop("imagenet_weights_sha256")
    result.update(figures)
    return replace(protocol, imagenet_network=network, imagenet_weights_sha256=sha)


def evaluate(
    source: Path,
    judge: Judge,
    protocol: Protocol,
    real: bool = False,
    inception_weights: Path | None = None,
    imagenet: ImageNetView | None = None,
    progress: bool = False,
) -> dict:
    """`source` is an exported .onnx, or with real=True a class folder of real images.
    With `inception_weights`, the standard FID and Inception Score are added; unless
    `imagenet` disables it, the independent ImageNet-feature figures too. `progress`
    shows each stage as it starts (the whole takes minutes on a CPU)."""
    view = imagenet or ImageNetView()
    # Bad input fails here, before minutes of work and before any progress line.
    generator = None if real else ImageGenerator(source, provider="auto")
    if real and not Path(source).is_dir():
        raise EvaluationError(f"--real {source} does not exist or is not a folder")
    if generator is None:
        check_samples_per_class(protocol.samples_per_class)
    else:
        check_sampling(generator, protocol.samples_per_class, protocol.first_seed)
    stages = 4 + view.enabled + (inception_weights is not None)
    with Progress("cgan-eval", stages, "stages", enabled=progress, log_every_tenth=False) as shown:
        stage = shown.stage
        stage(f"reading the reference images ({protocol.reference})")
        ref_images, ref_classes = real_samples(Path(protocol.reference), judge.labels, 10**9)
        shown.advance()
        stage(f"judge features of {len(ref_images)} reference images")
        ref_features, _ = judge.features_and_predictions(ref_images)
        shown.advance()
        stage("reading the real images" if real else "generating the samples")
        if real:
            images, classes = real_samples(source, judge.labels, protocol.samples_per_class)
        else:
            images, classes = generated_samples(generator, judge.labels, protocol)
        shown.advance()
        stage(f"judge features of {len(images)} samples")
        result = measure(images, classes, (ref_features, ref_classes), judge, protocol)
        shown.advance()
        extra = None if generator is None else generator.info.extra
        if view.enabled:
            kept = " (the reference's from the cache when kept)" if view.cache_dir else ""
            stage(f"ImageNet features of {len(images)} + {len(ref_images)} images{kept}")
        protocol = add_imagenet_view(
            result,
            protocol,
            view,
            (images, classes),
            (ref_images, ref_classes),
            judge.labels,
            extra,
        )
        shown.advance(view.enabled)
        if inception_weights is not None:
            from cgan.evaluation.inception import fid_and_is

            stage("Inception features (FID, IS)")
            result.update(fid_and_is(images, ref_images, inception_weights))
            shown.advance()
        else:
            result["fid_inception"] = None
            result["inception_note"] = "not measured: no Inception weights file given"
    result["source"] = str(source)
    result["kind"] = "real images" if real else "generated"
    result["samples"] = int(len(images))
    result["reference_samples"] = int(len(ref_images))
    result["protocol"] = asdict(protocol)
    result["measured_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    return result
