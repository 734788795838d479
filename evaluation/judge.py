"""The judge: a small CIFAR-10 classifier whose penultimate layer is the feature space.

The standard Inception weights cannot be downloaded on machines without internet, so the
project trains its own judge; it both checks that an image shows the requested class and
supplies features for Frechet distance and precision/recall. keras.layers only.
"""

from __future__ import annotations

import keras
from keras import layers

FEATURES_LAYER = "features"


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
