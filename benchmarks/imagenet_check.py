"""Is the project's ImageNet network converted right, and what does it see in CIFAR-10?

Prints (and with --json saves) the closing-note figures of docs/imagenet.md:

1. zero-shot CIFAR-10 on the test split: an image counts when its top ImageNet class is in
   its label's WordNet closure ("strict"), per class, the classes without an ImageNet
   counterpart named; and "restricted": the mapped label whose closure holds the most
   probability, among the labels that have one;
2. a linear probe: multinomial logistic regression on the 1280-d pooled features, trained
   on the first --probe-train images per class of the train split, tested on the test split;
3. the content check on a mixed folder (--mixed real dogs plus as many real trucks from the
   test split, all under dog/): share of trucks rejected, of dogs kept, images/s;
4. with --variants N: the strict zero-shot figure, on N test images per class, of
   deliberately wrong conversions (BGR input, PyTorch's symmetric padding, BN epsilon 1e-5,
   mean 127.5) beside the right one.

CIFAR-10 images are upscaled whole (no crop) to --size px with bicubic resampling; run it
under `nice -n 19`, it takes minutes:

    nice -n 19 python benchmarks/imagenet_check.py --json imagenet_check.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.optimize import minimize

import cgan.common.imagenet.onnx_model as onnx_model
from cgan.common.imagenet.classes import load_classes
from cgan.common.imagenet.labelmap import LabelConcept, map_label
from cgan.common.imagenet.preprocess import WHOLE_IMAGE
from cgan.common.imagenet.runner import ImageNetRunner
from cgan.common.imagenet.weights import load_weights
from cgan.common.imagenet.wordnet import load_wordnet
from cgan.common.imagenet.zeroshot import membership, top1_agrees

CIFAR10 = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "cifar10"


def load_split(folder: Path, per_class: int | None) -> tuple[list[np.ndarray], np.ndarray, list]:
    """uint8 images, label indices and sorted label names of a class-folder split."""
    names = sorted(p.name for p in folder.iterdir() if p.is_dir())
    paths, labels = [], []
    for k, name in enumerate(names):
        files = sorted((folder / name).glob("*.jpg"))[:per_class]
        paths += files
        labels += [k] * len(files)

    def read(path: Path) -> np.ndarray:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))

    with ThreadPoolExecutor(4) as pool:
        images = list(pool.map(read, paths))
    return images, np.array(labels), names


def zero_shot(probabilities: np.ndarray, labels: np.ndarray, concepts: list[LabelConcept]) -> dict:
    """Strict and restricted zero-shot accuracy, overall and per class."""
    strict = top1_agrees(probabilities, labels, concepts)
    mapped = [j for j, c in enumerate(concepts) if c.checked]
    mass = probabilities @ membership(concepts)[:, mapped].astype(np.float32)
    restricted = np.array(mapped)[mass.argmax(axis=1)] == labels
    on_mapped = np.isin(labels, mapped)
    ambiguous = int((membership(concepts)[probabilities.argmax(axis=1)].sum(axis=1) > 1).sum())
    return {
        "strict_all": float(strict.mean()),
        "strict_mapped": float(strict[on_mapped].mean()),
        "restricted_mapped": float(restricted[on_mapped].mean()),
        "top1_in_two_closures": ambiguous,
        "unmapped": [c.label for c in concepts if not c.checked],
        "per_class": {
            c.label: {
                "imagenet_classes": len(c.classes),
                "strict": float(strict[labels == k].mean()),
                "restricted": float(restricted[labels == k].mean()) if c.checked else None,
            }
            for k, c in enumerate(concepts)
        },
        "chance_restricted": 1 / len(mapped),
    }


def probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray) -> dict:
    """L2 multinomial logistic regression (L-BFGS); the penalty chosen on 10 % of train."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    classes = int(train_y.max()) + 1

    def fit(x: np.ndarray, y: np.ndarray, penalty: float) -> np.ndarray:
        onehot = np.eye(classes)[y]
        design = np.hstack([x, np.ones((len(x), 1))])

        def loss(flat: np.ndarray) -> tuple[float, np.ndarray]:
            w = flat.reshape(design.shape[1], classes)
            logits = design @ w
            logits -= logits.max(1, keepdims=True)
            p = np.exp(logits)
            p /= p.sum(1, keepdims=True)
            value = -np.mean(np.log(p[np.arange(len(y)), y] + 1e-12))
            grad = design.T @ (p - onehot) / len(y)
            value += 0.5 * penalty * np.sum(w[:-1] ** 2)
            grad[:-1] += penalty * w[:-1]
            return value, grad.ravel()

        start = np.zeros(design.shape[1] * classes)
        solved = minimize(loss, start, jac=True, method="L-BFGS-B", options={"maxiter": 500})
        return solved.x.reshape(design.shape[1], classes)

    def accuracy(w: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
        return float(np.mean((np.hstack([x, np.ones((len(x), 1))]) @ w).argmax(1) == y))

    order = np.random.default_rng(0).permutation(len(train_y))
    held, fit_part = order[: len(order) // 10], order[len(order) // 10 :]
    scores = {
        penalty: accuracy(
            fit(train_x[fit_part], train_y[fit_part], penalty), train_x[held], train_y[held]
        )
        for penalty in (1e-4, 1e-3, 1e-2, 1e-1)
    }
    best = max(scores, key=scores.get)
    w = fit(train_x, train_y, best)
    return {
        "test_accuracy": accuracy(w, test_x, test_y),
        "penalty": best,
        "validation": scores,
        "train_images": int(len(train_y)),
    }


def mixed_folder(per_side: int) -> dict:
    """Real dogs and real trucks under dog/, through ``cgan-scrape verify``'s own code."""
    from cgan.scraping.contentcheck import ContentCheck
    from cgan.scraping.verify import VerifyOptions, verify_folder

    with tempfile.TemporaryDirectory() as tmp:
        dog = Path(tmp) / "dog"
        dog.mkdir()
        for side in ("dog", "truck"):
            for path in sorted((CIFAR10 / "test" / side).glob("*.jpg"))[:per_side]:
                shutil.copy(path, dog / f"{side}_{path.name}")
        check = ContentCheck([("dog", ())], {})
        _, decisions, rate = verify_folder(VerifyOptions(src=Path(tmp)), check)
    kept = {d.path for d in decisions if d.decision == "kept"}
    dogs = [d.path for d in decisions if Path(d.path).name.startswith("dog_")]
    trucks = [d.path for d in decisions if Path(d.path).name.startswith("truck_")]
    return {
        "dogs": len(dogs),
        "trucks": len(trucks),
        "dogs_kept": sum(p in kept for p in dogs) / len(dogs),
        "trucks_rejected": sum(p not in kept for p in trucks) / len(trucks),
        "images_per_second": rate,
        "rule": check.describe(),
    }


def variants(
    images: list[np.ndarray], labels: np.ndarray, concepts: list[LabelConcept], size: int
) -> dict:
    """Strict zero-shot accuracy of the right conversion and of four wrong ones."""
    weights = load_weights()

    def accuracy(flip: bool = False) -> float:
        runner = ImageNetRunner(weights, input_size=size, crop=WHOLE_IMAGE)
        chosen = [np.ascontiguousarray(image[..., ::-1]) for image in images] if flip else images
        probabilities = runner.predict_all(chosen, 100).probabilities
        return float(top1_agrees(probabilities, labels, concepts).mean())

    results = {"right": accuracy(), "bgr_input": accuracy(flip=True)}
    original_conv, original_eps = onnx_model._conv, onnx_model.BN_EPSILON

    def symmetric(graph, arrays, conv, x):  # PyTorch Conv2d(padding=k // 2)
        kernel, bias = onnx_model.fold_batch_norm(arrays, conv)
        y = graph.node(
            "Conv",
            [x, graph.constant(f"{conv.name}_w", kernel), graph.constant(f"{conv.name}_b", bias)],
            f"{conv.name}_conv",
            strides=[conv.stride] * 2,
            pads=[conv.kernel // 2] * 4,
            group=conv.out_channels if conv.depthwise else 1,
        )
        return (
            graph.node("Clip", [y, "relu_min", "relu_max"], f"{conv.name}_relu6")
            if conv.activation
            else y
        )

    try:
        onnx_model._conv = symmetric
        results["symmetric_padding"] = accuracy()
        onnx_model._conv = original_conv
        onnx_model.BN_EPSILON = 1e-5
        results["bn_epsilon_1e-5"] = accuracy()
        onnx_model.BN_EPSILON = original_eps
        onnx_model.PIXEL_MEAN = 127.5
        results["mean_127.5"] = accuracy()
    finally:
        onnx_model._conv, onnx_model.BN_EPSILON, onnx_model.PIXEL_MEAN = (
            original_conv,
            original_eps,
            127.0,
        )
    results["images"] = len(images)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224, help="upscale CIFAR-10 to this")
    parser.add_argument("--test-per-class", type=int, default=1000)
    parser.add_argument(
        "--probe-train", type=int, default=1000, help="train images per class for the linear probe"
    )
    parser.add_argument("--mixed", type=int, default=200, help="dogs and trucks in the folder")
    parser.add_argument(
        "--variants",
        type=int,
        default=0,
        help="test images per class for the wrong-conversion figures",
    )
    parser.add_argument("--json", type=Path, help="also save the figures here")
    args = parser.parse_args()
    if not (CIFAR10 / "test").is_dir():
        print(f"no CIFAR-10 copy at {CIFAR10}", file=sys.stderr)
        return 2

    started = time.perf_counter()
    runner = ImageNetRunner(input_size=args.size, crop=WHOLE_IMAGE)
    wordnet, classes = load_wordnet(), load_classes()
    test_images, test_labels, names = load_split(CIFAR10 / "test", args.test_per_class)
    concepts = [map_label(name, wordnet, classes) for name in names]
    t0 = time.perf_counter()
    test = runner.predict_all(test_images, 100)
    rate = len(test_images) / (time.perf_counter() - t0)
    figures: dict = {
        "network": runner.describe(),
        "images_per_second": rate,
        "mapping": {c.label: c.describe() for c in concepts},
        "zero_shot": zero_shot(test.probabilities, test_labels, concepts),
    }
    report(figures)
    train_images, train_labels, _ = load_split(CIFAR10 / "train", args.probe_train)
    train = runner.predict_all(train_images, 100)
    figures["linear_probe"] = probe(train.pooled, train_labels, test.pooled, test_labels)
    print(
        f"linear probe: test accuracy {figures['linear_probe']['test_accuracy']:.4f} "
        f"({figures['linear_probe']['train_images']} train images, "
        f"L2 {figures['linear_probe']['penalty']:g})"
    )
    figures["mixed_folder"] = mixed_folder(args.mixed)
    mixed = figures["mixed_folder"]
    print(
        f"content check, {mixed['dogs']} dogs + {mixed['trucks']} trucks under dog/: "
        f"trucks rejected {mixed['trucks_rejected']:.3f}, dogs kept {mixed['dogs_kept']:.3f}, "
        f"{mixed['images_per_second']:.1f} images/s ({mixed['rule']})"
    )
    if args.variants:
        images, labels, _ = load_split(CIFAR10 / "test", args.variants)
        figures["variants"] = variants(images, labels, concepts, args.size)
        print("strict zero-shot by conversion:", json.dumps(figures["variants"]))
    figures["seconds"] = time.perf_counter() - started
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


def report(figures: dict) -> None:
    """The zero-shot table."""
    zs = figures["zero_shot"]
    print(figures["network"])
    print(f"{'class':12} {'ImageNet classes':>16} {'strict':>8} {'restricted':>10}")
    for name, row in zs["per_class"].items():
        restricted = "-" if row["restricted"] is None else f"{row['restricted']:.3f}"
        print(f"{name:12} {row['imagenet_classes']:>16} {row['strict']:>8.3f} {restricted:>10}")
    print(
        f"zero-shot strict: {zs['strict_all']:.4f} over all classes, {zs['strict_mapped']:.4f} "
        f"over mapped classes; restricted: {zs['restricted_mapped']:.4f} (chance "
        f"{zs['chance_restricted']:.3f}); no ImageNet counterpart: {', '.join(zs['unmapped'])}"
        f"; {figures['images_per_second']:.1f} images/s"
    )


if __name__ == "__main__":
    raise SystemExit(main())
