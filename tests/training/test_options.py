"""Training options that change the loop: D warm-up, several D steps, CIFAR-10 download."""

from __future__ import annotations

import pytest

pytest.importorskip("tensorflow")

from cgan.common.errors import TrainingError  # noqa: E402
from cgan.common.run_dir import RunDir  # noqa: E402
from cgan.training.loop import train  # noqa: E402

from .helpers import tiny_config  # noqa: E402


@pytest.mark.slow
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


@pytest.mark.slow
def test_data_position_is_counted_across_resumes_that_change_d_steps_and_batch(tmp_path):
    from cgan.training.config import load_config

    train(tiny_config(steps=2, checkpoint_every=2), tmp_path, resume=False, progress=False)
    config = load_config(tmp_path)
    config.d_steps, config.batch_size, config.steps = 2, 4, 5
    train(config, tmp_path, resume=True, progress=False)
    progress = RunDir(tmp_path).read_progress()
    # 2 steps of one 8-image D batch, then 3 steps of two 4-image D batches.
    assert progress["examples_seen"] == 2 * 8 + 3 * 2 * 4
    assert abs(progress["epoch"] - progress["examples_seen"] / progress["dataset_size"]) < 1e-3


@pytest.mark.slow
def test_a_checkpoint_from_before_the_data_counter_still_resumes(tmp_path):
    import tensorflow as tf

    from cgan.training.config import load_config
    from cgan.training.trainer import GANTrainer

    train(
        tiny_config(d_steps=2, steps=3, checkpoint_every=3), tmp_path, resume=False, progress=False
    )
    config = load_config(tmp_path)
    trainer = GANTrainer(config, tf.distribute.get_strategy(), RunDir(tmp_path))
    trainer.restore_latest()
    old_way = tf.train.CheckpointManager(
        trainer.checkpoints.checkpoint_without_count,
        str(tmp_path / "checkpoints"),
        1,
        checkpoint_name="ckpt",
    )
    prefix = old_way.save(checkpoint_number=3)  # the same ckpt-3, rewritten the old way
    assert not tf.train.load_checkpoint(str(prefix)).has_tensor(
        "real_examples/.ATTRIBUTES/VARIABLE_VALUE"
    )
    config.steps, config.d_steps = 4, 1
    progress = RunDir(tmp_path).progress
    recorded = progress.read_text()
    train(config, tmp_path, resume=True, progress=False)
    assert not (tmp_path / "checkpoints" / "damaged").exists()
    # progress.json's count for ckpt-3 (two 8-image D batches a step), then one batch.
    assert RunDir(tmp_path).read_progress()["examples_seen"] == 3 * 2 * 8 + 8

    for part in (tmp_path / "checkpoints").glob("ckpt-4.*"):
        part.unlink()
    old_way.save(checkpoint_number=3)  # again, with a hand-edited count in progress.json
    huge = f'"examples_seen": {10**30}'  # more than the counter holds: not used
    progress.write_text(recorded.replace('"examples_seen": 48', huge))
    train(config, tmp_path, resume=True, progress=False)
    assert not (tmp_path / "checkpoints" / "damaged").exists()  # the checkpoint is fine
    # The step alone, counted with the run's d_steps now: 3 steps of one batch, then one.
    assert RunDir(tmp_path).read_progress()["examples_seen"] == 3 * 8 + 8


@pytest.mark.slow
def test_a_checkpoint_that_fails_half_way_leaves_nothing_behind(tmp_path, capsys):
    """Restoring a checkpoint can set some variables before it fails: the fresh start after
    it must not keep them (here the step, the data position, the CPU time)."""
    import tensorflow as tf

    from cgan.training.config import load_config
    from cgan.training.trainer import GANTrainer

    train(tiny_config(steps=3, checkpoint_every=3), tmp_path, resume=False, progress=False)
    config = load_config(tmp_path)
    trainer = GANTrainer(config, tf.distribute.get_strategy(), RunDir(tmp_path))
    trainer.restore_latest()
    parts = {"step": trainer.step, "generator": trainer.generator}  # a part of the state
    partial = tf.train.CheckpointManager(
        tf.train.Checkpoint(**parts), str(tmp_path / "checkpoints"), 1, checkpoint_name="ckpt"
    )
    partial.save(checkpoint_number=3)
    config.steps = 5
    train(config, tmp_path, resume=True, progress=False)
    assert "starting from step 0" in capsys.readouterr().err
    progress = RunDir(tmp_path).read_progress()
    assert progress["step"] == 5 and progress["examples_seen"] == 5 * 8
