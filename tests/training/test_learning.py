"""A short run on the synthetic shapes learns what the label means.

The judge is independent of the GAN: a nearest-centroid classifier on the mean colour of
an image, fitted on the real synthetic images. Chance is 1 / classes.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from cgan.training.loop import train  # noqa: E402
from cgan.training.runtime import quiet_tensorflow  # noqa: E402
from cgan.training.shapes import make_shapes  # noqa: E402

from .helpers import tiny_config  # noqa: E402

quiet_tensorflow()

CLASSES = 4


def _mean_colours(images_uint8: np.ndarray) -> np.ndarray:
    return images_uint8.reshape(len(images_uint8), -1, 3).mean(axis=1)


@pytest.mark.slow
def test_short_run_learns_the_conditioning(tmp_path):
    import keras

    from cgan.common.images import to_uint8
    from cgan.common.run_dir import RunDir
    from cgan.training.config import load_config
    from cgan.training.models import build_generator
    from cgan.training.trainer import GANTrainer

    config = tiny_config(
        steps=150,
        batch_size=32,
        g_channels=32,
        d_channels=32,
        latent_dim=32,
        embed_dim=16,
        synthetic_classes=CLASSES,
        synthetic_per_class=64,
        log_every=50,
        checkpoint_every=150,
        samples_per_class=4,
    )
    result = train(config, tmp_path, resume=False, progress=False)
    assert result.step == 150

    real = make_shapes(CLASSES, 64, 32, seed=config.seed)
    centroids = np.stack(
        [_mean_colours(real.images[real.labels == k]).mean(axis=0) for k in range(CLASSES)]
    )

    def judge(images: np.ndarray) -> np.ndarray:
        colours = _mean_colours(images)
        return np.argmin(((colours[:, None, :] - centroids[None]) ** 2).sum(-1), axis=1)

    assert (judge(real.images) == real.labels).mean() > 0.95  # the judge itself works

    import tensorflow as tf

    trainer = GANTrainer(load_config(tmp_path), tf.distribute.get_strategy(), RunDir(tmp_path))
    assert trainer.restore_latest() is not None
    per_class = 25
    labels = np.repeat(np.arange(CLASSES, dtype=np.int32), per_class)
    noise = np.random.default_rng(7).standard_normal((len(labels), 32)).astype(np.float32)
    generated = to_uint8(trainer.generate(noise, labels))
    accuracy = (judge(generated) == labels).mean()
    print(f"mean-colour accuracy of generated images: {accuracy:.2f} (chance {1 / CLASSES:.2f})")
    assert accuracy >= 0.6

    # An untrained generator of the same shape is at chance level or near it.
    keras.utils.set_random_seed(123)
    untrained = build_generator(trainer.config.model_spec())
    baseline = (judge(to_uint8(np.asarray(untrained([noise, labels])))) == labels).mean()
    assert accuracy > baseline + 0.3
