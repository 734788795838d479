"""Small configurations that train in seconds on a CPU."""

from __future__ import annotations

import numpy as np
from PIL import Image

from cgan.training.config import TrainConfig, make_config


def tiny_config(**overrides) -> TrainConfig:
    values = dict(
        steps=6,
        batch_size=8,
        g_channels=8,
        d_channels=8,
        latent_dim=8,
        embed_dim=4,
        synthetic_classes=3,
        synthetic_per_class=8,
        log_every=2,
        checkpoint_every=3,
        samples_per_class=2,
    )
    values.update(overrides)
    return make_config("smoke", values)


def write_image(path, colour=(200, 30, 30), size=(40, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), colour, np.uint8)).save(path)
