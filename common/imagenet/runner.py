"""The ImageNet network on onnxruntime: images in, class probabilities and pooled features out.

Imports numpy, pillow, onnx and onnxruntime only, so the gather stage and the evaluation
use it without TensorFlow. The graph is built in memory from the checked weights.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort
from PIL import Image

from cgan.common.imagenet.onnx_model import INPUT_NAME, build_onnx
from cgan.common.imagenet.preprocess import PHOTO_CROP, prepare_batch
from cgan.common.imagenet.weights import ImageNetWeights, load_weights


@dataclass(frozen=True)
class Predictions:
    """Per image: the 1,000 class probabilities and the 1280-d pooled features."""

    probabilities: np.ndarray  # float32 [N, 1000]
    pooled: np.ndarray  # float32 [N, 1280]


def top_k(probabilities: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and probabilities of the k most likely classes per row, most likely first."""
    k = max(1, min(k, probabilities.shape[1]))
    index = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return index, np.take_along_axis(probabilities, index, axis=1)


class ImageNetRunner:
    """One onnxruntime session of the network (EfficientNet-Lite0 unless the weights are
    another's); thread-safe, like the session."""

    def __init__(
        self,
        weights: ImageNetWeights | None = None,
        threads: int = 0,
        input_size: int | None = None,
        crop: float = PHOTO_CROP,
    ) -> None:
        self.weights = weights or load_weights()
        self.input_size = input_size or self.weights.network.input_size
        self.crop = crop
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        model = build_onnx(self.weights.arrays, ("probabilities", "pooled"), self.weights.network)
        self.session = ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )

    def describe(self) -> str:
        """The network, its weights' hash and the input protocol, for reports."""
        return (
            f"{self.weights.describe()}; input {self.input_size}x{self.input_size} "
            f"bicubic, centre crop {self.crop:g}"
        )

    def run(self, pixels: np.ndarray) -> Predictions:
        """Prepared float32 [N, S, S, 3] pixels in [0, 255] -> predictions."""
        if len(pixels) == 0:
            return Predictions(np.zeros((0, 1000), np.float32), np.zeros((0, 1280), np.float32))
        probabilities, pooled = self.session.run(
            ["probabilities", "pooled"], {INPUT_NAME: np.ascontiguousarray(pixels, np.float32)}
        )
        return Predictions(probabilities, pooled)

    def predict(self, images: Sequence[Image.Image | np.ndarray]) -> Predictions:
        """Images of any size (PIL, or uint8 HxWx3 arrays) -> predictions, one batch."""
        return self.run(prepare_batch(images, self.input_size, self.crop))

    def predict_all(
        self, images: Sequence[Image.Image | np.ndarray] | np.ndarray, batch_size: int = 64
    ) -> Predictions:
        """Any number of images, ``batch_size`` at a time."""
        parts = [self.predict(chunk) for chunk in batches(images, batch_size)]
        if not parts:
            return self.run(np.zeros((0, self.input_size, self.input_size, 3), np.float32))
        return Predictions(
            np.concatenate([p.probabilities for p in parts]),
            np.concatenate([p.pooled for p in parts]),
        )


def batches(items: Sequence, size: int) -> Iterator[Sequence]:
    """Consecutive slices of at most ``size`` items."""
    for start in range(0, len(items), max(1, size)):
        yield items[start : start + size]
