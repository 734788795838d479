"""Choose and load the dataset named by the config: CIFAR-10, synthetic, or a folder."""

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


def load_dataset(
    data: str,
    resolution: int,
    *,
    seed: int = 0,
    synthetic_classes: int = 10,
    synthetic_per_class: int = 200,
    workers: int = 8,
) -> LabelledImages:
    """`data` is "cifar10", "synthetic" or the path of a class-folder dataset."""
    if data == "synthetic":
        from cgan.training.data.synthetic import make_shapes

        return make_shapes(synthetic_classes, synthetic_per_class, resolution, seed=seed)
    if data == "cifar10":
        from cgan.training.data.cifar10 import load_cifar10

        return load_cifar10(resolution)
    from cgan.training.data.folder import load_folder

    return load_folder(data, resolution, workers=workers)
