"""Small configurations that train in seconds on a CPU."""

from __future__ import annotations

import numpy as np
from PIL import Image

from cgan.common.run_dir import RunDir
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


def checkpoint_state(run_dir) -> dict[str, np.ndarray]:
    """Every variable of the run's newest checkpoint, by name (but the CPU time it took)."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(RunDir(run_dir).checkpoints))
    return {
        name: reader.get_tensor(name)
        for name in reader.get_variable_to_shape_map()
        if "save_counter" not in name and "OBJECT_GRAPH" not in name and "cpu_seconds" not in name
    }


def assert_same_training_state(expected_run, actual_run) -> dict[str, np.ndarray]:
    """Two runs' newest checkpoints hold the same variables with the same values; returns
    the expected state for further checks."""
    expected, actual = checkpoint_state(expected_run), checkpoint_state(actual_run)
    assert expected.keys() == actual.keys()
    for name in expected:
        np.testing.assert_allclose(actual[name], expected[name], rtol=1e-5, atol=1e-6, err_msg=name)
    return expected
