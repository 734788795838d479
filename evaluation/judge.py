"""The judge: a small CIFAR-10 classifier whose penultimate layer is the feature space,
and how a trained one is loaded (weights plus the JSON sidecar that names its labels).

The standard Inception weights cannot be downloaded on machines without internet, so the
project trains its own judge (`make judge`); it both checks that an image shows the
requested class and supplies features for Frechet distance and precision/recall.
keras.layers only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from keras import layers

from cgan.common.cli import first_line
from cgan.common.errors import EvaluationError
from cgan.evaluation import sidecar_path

FEATURES_LAYER = "features"
JUDGE_RESOLUTION = 32
MAX_SIDECAR_BYTES = 1 << 20  # the shipped one is under 1 kB
MAX_JUDGE_CLASSES = 1000
MAX_WIDTH = 512  # the shipped judge is 32 wide (the widest conv has 4 x width channels)


def build_judge(num_classes: int = 10, resolution: int = 32, width: int = 64) -> keras.Model:
    """images in [-1, 1] [B, H, W, 3] -> class logits; `features` is 256-d, after ReLU."""
    image = keras.Input(shape=(resolution, resolution, 3), name="image")
    x = image
    for multiplier in (1, 2, 4):
        for _ in range(2):
            x = layers.Conv2D(width * multiplier, 3, padding="same", use_bias=False)(x)
            x = layers.ReLU()(layers.BatchNormalization()(x))
        x = layers.MaxPooling2D(2)(x)
    x = layers.GlobalAveragePooling2D()(x)
    features = layers.Dense(256, activation="relu", name=FEATURES_LAYER)(x)
    logits = layers.Dense(num_classes, name="logits")(layers.Dropout(0.3)(features))
    return keras.Model(image, logits, name="judge")


def feature_and_logit_model(judge: keras.Model) -> keras.Model:
    """One forward pass giving both the features and the class logits."""
    return keras.Model(judge.input, [judge.get_layer(FEATURES_LAYER).output, judge.output])


@dataclass
class Judge:
    """Features and class predictions for uint8 images, plus what identifies the network."""

    model: keras.Model
    labels: list[str]
    report: dict
    path: Path

    def describe(self) -> str:
        accuracy = self.report.get("test_accuracy")
        score = f", test accuracy {accuracy:.4f}" if isinstance(accuracy, float) else ""
        return f"cgan judge {self.path.name} (sha256 {self.report.get('sha256', '?')[:12]}{score})"

    def features_and_predictions(
        self, images: np.ndarray, batch: int = 500
    ) -> tuple[np.ndarray, np.ndarray]:
        """uint8 [N, 32, 32, 3] -> features [N, 256] float32, predicted class [N]."""
        features, predictions = [], []
        for start in range(0, len(images), batch):
            chunk = images[start : start + batch].astype(np.float32) / 127.5 - 1.0
            f, logits = self.model(chunk, training=False)
            features.append(np.asarray(f))
            predictions.append(np.argmax(np.asarray(logits), axis=1))
        return np.concatenate(features), np.concatenate(predictions)


def read_sidecar(sidecar: Path) -> dict:
    """The sidecar's report, checked: a JSON object whose `labels` are distinct non-empty
    names and whose `width` builds a judge of sane size; anything else is one line naming
    the file (never a traceback, never a network of a billion channels)."""
    try:
        if sidecar.stat().st_size > MAX_SIDECAR_BYTES:
            raise EvaluationError(f"judge sidecar {sidecar}: larger than {MAX_SIDECAR_BYTES} bytes")
        report = json.loads(sidecar.read_text(encoding="utf-8"))
    except OSError as exc:
        raise EvaluationError(
            f"cannot read the judge sidecar {sidecar}: {exc.strerror or exc}"
        ) from None
    except (ValueError, RecursionError) as exc:  # bad JSON, bad UTF-8, nesting too deep
        reason = first_line(exc, 100)
        raise EvaluationError(f"judge sidecar {sidecar} is not JSON: {reason}") from None
    if not isinstance(report, dict):
        raise EvaluationError(f"judge sidecar {sidecar}: expected a JSON object")
    labels, width = report.get("labels"), report.get("width")
    if (
        not isinstance(labels, list)
        or not 1 <= len(labels) <= MAX_JUDGE_CLASSES
        or not all(isinstance(label, str) and label.strip() for label in labels)
        or len({label.lower() for label in labels}) != len(labels)
    ):
        raise EvaluationError(
            f"judge sidecar {sidecar}: labels must be 1 to {MAX_JUDGE_CLASSES} distinct names"
        )
    if isinstance(width, bool) or not isinstance(width, int) or not 1 <= width <= MAX_WIDTH:
        raise EvaluationError(
            f"judge sidecar {sidecar}: width must be a whole number 1 to {MAX_WIDTH}"
        )
    if not isinstance(report.get("sha256", ""), str):
        raise EvaluationError(f"judge sidecar {sidecar}: sha256 must be text")
    return report


def load_judge(weights: Path) -> Judge:
    sidecar = sidecar_path(weights)
    if not weights.is_file() or not sidecar.is_file():
        raise EvaluationError(
            f"no judge at {weights} (and {sidecar.name}); train one with make judge"
        )
    report = read_sidecar(sidecar)
    judge = build_judge(len(report["labels"]), JUDGE_RESOLUTION, report["width"])
    try:
        judge.load_weights(weights)
    except Exception as exc:  # h5py and Keras raise several types for bad files
        raise EvaluationError(f"cannot load the judge {weights}: {str(exc)[:150]}") from None
    return Judge(feature_and_logit_model(judge), list(report["labels"]), report, weights)
