"""Training options that change the loop: D warm-up, several D steps, CIFAR-10 download."""

from __future__ import annotations

import pytest

pytest.importorskip("tensorflow")

from cgan.common.errors import TrainingError  # noqa: E402
from cgan.common.run_dir import RunDir  # noqa: E402
from cgan.training.loop import train  # noqa: E402

from .helpers import tiny_config  # noqa: E402


def test_discriminator_warm_up_and_several_d_steps_consume_the_data_in_order(tmp_path):
    config = tiny_config(d_pretrain_steps=3, d_steps=2, steps=2, checkpoint_every=2)
    result = train(config, tmp_path, resume=False, progress=False)
    assert result.step == 2
    progress = RunDir(tmp_path).read_progress()
    # 3 warm-up batches, then 2 generator steps of 2 D batches each, 8 images a batch.
    assert progress["examples_seen"] == (3 + 2 * 2) * 8

    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(tmp_path / "checkpoints"))
    pretrain = [name for name in reader.get_variable_to_shape_map() if "pretrain_step" in name]
    assert [int(reader.get_tensor(name)) for name in pretrain] == [3]


def test_cifar10_download_failure_is_explained(tmp_path, monkeypatch):
    import keras

    def offline():
        raise OSError("URL fetch failure on https://www.cs.toronto.edu/: no network")

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", offline)
    with pytest.raises(TrainingError, match=r"could not download CIFAR-10 .*--data PATH"):
        train(tiny_config(data="cifar10"), tmp_path, resume=False, progress=False)
