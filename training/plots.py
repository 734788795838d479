"""Loss-curve and sample-grid pictures of a run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cgan.common.cli import is_finite_number
from cgan.common.files import atomic_path
from cgan.common.images import make_grid, to_uint8

CURVE_FIELDS = ("step", "d_loss", "g_loss", "d_real", "d_fake")


def save_loss_curve(records: list[dict[str, Any]], path: Path) -> None:
    """Losses on the left, D's mean outputs on real and fake on the right. Records that
    lack a figure or hold no finite number there (a hand-edited metrics.jsonl) are left out."""
    records = [r for r in records if all(is_finite_number(r.get(name)) for name in CURVE_FIELDS)]
    if not records:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in records]
    figure, (losses, outputs) = plt.subplots(1, 2, figsize=(11, 4))
    for name in ("d_loss", "g_loss"):
        losses.plot(steps, [r[name] for r in records], label=name)
    for name, label in (("d_real", "D(real)"), ("d_fake", "D(fake)")):
        outputs.plot(steps, [r[name] for r in records], label=label)
    losses.set_title("losses")
    outputs.set_title("mean sigmoid(D) output")
    outputs.set_ylim(0, 1)
    for axis in (losses, outputs):
        axis.set_xlabel("generator step")
        axis.legend()
        axis.grid(alpha=0.3)
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=90, format="png")
    plt.close(figure)


def save_sample_grid(
    generate: Callable[[np.ndarray, np.ndarray], np.ndarray],
    fixed_noise: np.ndarray,
    labels: list[str],
    path: Path,
) -> None:
    """One row per class, the same noise in each column: what the label controls."""
    per_class = fixed_noise.shape[0]
    noise = np.tile(fixed_noise, (len(labels), 1))
    classes = np.repeat(np.arange(len(labels), dtype=np.int32), per_class)
    images = to_uint8(generate(noise, classes))
    scale = max(1, 64 // images.shape[1])
    grid = make_grid(images, rows=len(labels), scale=scale, row_labels=labels)
    with atomic_path(path) as temporary:
        grid.save(temporary, format="PNG")
