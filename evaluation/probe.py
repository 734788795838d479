"""The probe judge: a linear classifier on the ImageNet network's pooled features, fitted on
a dataset's real training images.

CIFAR-10 has a judge trained by the project; a person's own classes have none, and training
one per dataset on a few hundred images would judge poorly. A linear probe on features of a
network trained on a million photographs is the standard cheap substitute (as in
representation-learning papers): its accuracy on generated images says whether each shows
the class it was asked for, and its accuracy on the real validation images is the ceiling.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

# L2 strength of the logistic regression (scikit-learn's C: smaller is stronger). Pinned: it
# is part of the protocol, so it is not tuned per dataset.
PROBE_C = 0.1
PROBE_MAX_ITER = 2000


class ProbeJudge:
    """Standardised 1280-d pooled features -> multinomial logistic regression (lbfgs,
    deterministic for the same inputs)."""

    def __init__(self, features: np.ndarray, classes: np.ndarray, num_classes: int) -> None:
        self.num_classes = num_classes
        self.train_images = len(classes)
        self.model: Pipeline | None = None  # one class: every image is that class
        if len(np.unique(classes)) > 1:
            self.model = make_pipeline(
                StandardScaler(), LogisticRegression(C=PROBE_C, max_iter=PROBE_MAX_ITER)
            )
            self.model.fit(np.asarray(features, np.float64), np.asarray(classes))
        self.train_accuracy = float(np.mean(self.predict(features) == classes))

    def predict(self, features: np.ndarray) -> np.ndarray:
        """The most likely class index per row."""
        if self.model is None:
            return np.zeros(len(features), np.int64)
        return self.model.predict(np.asarray(features, np.float64))

    def describe(self) -> str:
        return (
            f"linear probe: standardised pooled ImageNet features, multinomial logistic "
            f"regression (C={PROBE_C}), fitted on {self.train_images} real training images"
        )
