"""CIFAR-10 through keras.datasets, the path users with internet access take."""

from __future__ import annotations

import numpy as np

from cgan.common.errors import TrainingError
from cgan.training.data.images import fit_to_resolution
from cgan.training.data.source import LabelledImages

CIFAR10_LABELS = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]


def load_cifar10(resolution: int) -> LabelledImages:
    import keras

    try:
        (images, labels), _ = keras.datasets.cifar10.load_data()
    except Exception as exc:  # noqa: BLE001 - any download failure means the same to the user
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise TrainingError(
            f"could not download CIFAR-10 ({reason[:120]}); without internet, pass "
            "--data PATH to a class-folder copy such as ../shared/datasets/cifar10/train"
        ) from None
    if resolution != images.shape[1]:
        images = np.stack([fit_to_resolution(image, resolution) for image in images])
    return LabelledImages(images, labels.reshape(-1).astype(np.int32), list(CIFAR10_LABELS))
