"""A dataset held in memory: the type every in-memory source returns (class folders, CIFAR-10,
the synthetic shapes), in a module of its own so that they all import it at module level."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class LabelledImages:
    """uint8 images [N, H, W, 3], int32 labels [N], and the label names in index order."""

    images: np.ndarray
    labels: np.ndarray
    names: list[str]
    skipped: list[str] = field(default_factory=list)  # unreadable files, for the report

    def __len__(self) -> int:
        return len(self.labels)

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(self.names))
        return dict(zip(self.names, counts.tolist(), strict=True))
