"""The conversion measured on 200 CIFAR-10 test images (skips without the shared copy).

The full figures (benchmarks/imagenet_check.py, 10,000 test images): strict zero-shot 0.19,
restricted 0.37 (chance 0.11), linear probe 0.78, dogs kept 0.88 and trucks rejected 0.875
in a mixed folder. The bounds below leave room for 200-image noise and still fail for a
network that sees nothing (chance: 0.02 strict, 0.11 restricted, 0.10 probe, 0.5 mixed).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.cifar10
PER_CLASS = 20


def _split(folder: Path, start: int = 0) -> tuple[list[np.ndarray], np.ndarray, list[str]]:
    names = sorted(p.name for p in folder.iterdir() if p.is_dir())
    images, labels = [], []
    for k, name in enumerate(names):
        for path in sorted((folder / name).glob("*.jpg"))[start : start + PER_CLASS]:
            with Image.open(path) as image:
                images.append(np.asarray(image.convert("RGB")))
            labels.append(k)
    return images, np.array(labels), names


@pytest.fixture(scope="module")
def test_split(cifar10_dir, runner):
    images, labels, names = _split(cifar10_dir / "test")
    return runner.predict_all(images, 50), labels, names


@pytest.mark.slow
def test_zero_shot_through_wordnet(test_split, wordnet, imagenet_classes):
    from cgan.common.imagenet.labelmap import map_label
    from cgan.common.imagenet.zeroshot import membership, top1_agrees

    predictions, labels, names = test_split
    concepts = [map_label(name, wordnet, imagenet_classes) for name in names]
    assert [c.label for c in concepts if not c.checked] == ["deer"]
    strict = top1_agrees(predictions.probabilities, labels, concepts).mean()
    mapped = [j for j, c in enumerate(concepts) if c.checked]
    mass = predictions.probabilities @ membership(concepts)[:, mapped]
    on_mapped = np.isin(labels, mapped)
    restricted = (np.array(mapped)[mass.argmax(1)] == labels)[on_mapped].mean()
    assert strict >= 0.10, strict
    assert restricted >= 0.24, restricted


@pytest.mark.slow
def test_pooled_features_separate_the_classes(cifar10_dir, runner, test_split):
    """Nearest class mean (cosine) from 20 train images per class."""
    predictions, labels, _ = test_split
    train_images, train_labels, _ = _split(cifar10_dir / "train")
    train = runner.predict_all(train_images, 50).pooled

    def unit(x: np.ndarray) -> np.ndarray:
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    centres = unit(np.stack([train[train_labels == k].mean(0) for k in range(10)]))
    accuracy = ((unit(predictions.pooled) @ centres.T).argmax(1) == labels).mean()
    assert accuracy >= 0.45, accuracy


def test_content_check_tells_dogs_from_trucks(cifar10_dir, tmp_path, wordnet):
    from cgan.scraping.contentcheck import ContentCheck
    from cgan.scraping.verify import VerifyOptions, verify_folder

    (tmp_path / "dog").mkdir()
    for kind in ("dog", "truck"):
        for path in sorted((cifar10_dir / "test" / kind).glob("*.jpg"))[:PER_CLASS]:
            (tmp_path / "dog" / f"{kind}_{path.name}").write_bytes(path.read_bytes())
    counts, decisions, _ = verify_folder(
        VerifyOptions(src=tmp_path), ContentCheck([("dog", ())], {})
    )
    kept = {
        kind: sum(
            d.decision == "kept" for d in decisions if Path(d.path).name.startswith(kind + "_")
        )
        for kind in ("dog", "truck")
    }
    assert counts["dog"].counts["kept"] + counts["dog"].counts["off_topic"] == 2 * PER_CLASS
    assert kept["dog"] >= 0.65 * PER_CLASS and kept["truck"] <= 0.35 * PER_CLASS, kept
