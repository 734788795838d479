"""The checkpoint store's rules with three variables instead of two networks: fallback past
damaged checkpoints, the counter of old checkpoints, and what a non-chief worker writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

tf = pytest.importorskip("tensorflow")

from cgan.common.run_dir import RunDir  # noqa: E402
from cgan.training.checkpoints import CheckpointStore  # noqa: E402


class State:
    """A run's worth of state: a step, a weight vector and the real-example counter."""

    def __init__(self, root: Path, keep: int = 3, **options) -> None:
        self.step = tf.Variable(0, dtype=tf.int64)
        self.weights = tf.Variable([0.0, 0.0])
        self.counter = tf.Variable(0, dtype=tf.int64)
        self.estimates = 0
        self.run = RunDir(root)
        self.run.create()
        self.store = CheckpointStore(
            self.run,
            {"step": self.step, "weights": self.weights},
            self.counter,
            self._estimate,
            keep=keep,
            **options,
        )

    def _estimate(self) -> int:
        self.estimates += 1
        return int(self.step.numpy()) * 10

    def save_at(self, step: int) -> str | None:
        self.step.assign(step)
        self.weights.assign([float(step), -float(step)])
        self.counter.assign(step * 32)
        return self.store.save(step)


def _damage(prefix: Path) -> None:
    data = next(prefix.parent.glob(prefix.name + ".data-*"))
    data.write_bytes(data.read_bytes()[:7])


def test_the_newest_readable_checkpoint_is_restored_and_damaged_ones_set_aside(tmp_path, capsys):
    written = State(tmp_path)
    for step in (1, 2, 3):
        written.save_at(step)
    _damage(tmp_path / "checkpoints" / "ckpt-3")

    state = State(tmp_path)
    assert state.store.restore_latest() == str(tmp_path / "checkpoints" / "ckpt-2")
    assert int(state.step.numpy()) == 2 and state.weights.numpy().tolist() == [2.0, -2.0]
    assert int(state.counter.numpy()) == 64 and state.estimates == 0
    assert sorted(p.name for p in (tmp_path / "checkpoints" / "damaged").iterdir()) == [
        "ckpt-3.data-00000-of-00001",
        "ckpt-3.index",
    ]
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("checkpoint ckpt-3 is unreadable (")
    # TensorFlow's own state file now names what remains, and saving goes on from there.
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-2")
    state.save_at(4)
    assert [p.name for p in state.run.checkpoint_prefixes()] == ["ckpt-4", "ckpt-2", "ckpt-1"]


def test_nothing_readable_is_a_fresh_start_without_a_stale_state_file(tmp_path, capsys):
    written = State(tmp_path)
    for step in (1, 2):
        written.save_at(step)
        _damage(tmp_path / "checkpoints" / f"ckpt-{step}")
    state = State(tmp_path)
    assert state.store.restore_latest() is None
    assert state.store.restore_attempted and int(state.step.numpy()) == 0
    assert not (tmp_path / "checkpoints" / "checkpoint").exists()
    assert len(capsys.readouterr().err.strip().splitlines()) == 2


def test_an_empty_run_restores_nothing_and_says_it_tried_nothing(tmp_path):
    state = State(tmp_path)
    assert state.store.restore_latest() is None and not state.store.restore_attempted


def _old_checkpoint(root: Path, step: int) -> Path:
    """A checkpoint written before the counter existed: step and weights only."""
    state = State(root)
    state.step.assign(step)
    old = tf.train.Checkpoint(step=state.step, weights=state.weights)
    return Path(tf.train.CheckpointManager(old, str(root / "checkpoints"), 3, "ckpt").save(step))


@pytest.mark.parametrize(
    ("recorded", "counted"),
    [
        (96, 96),  # progress.json's count for this very checkpoint
        (True, 50),  # not a whole number: the estimate
        (1.5, 50),
        ("96", 50),
        (-1, 50),
        (2**62, 50),  # more than the counter holds
    ],
)
def test_an_old_checkpoint_takes_its_count_from_progress_or_the_estimate(
    tmp_path, recorded, counted
):
    prefix = _old_checkpoint(tmp_path, 5)
    progress = {"checkpoint": prefix.name, "examples_seen": recorded}
    RunDir(tmp_path).progress.write_text(json.dumps(progress))
    state = State(tmp_path)
    assert state.store.restore_latest() == str(prefix)
    assert int(state.step.numpy()) == 5 and int(state.counter.numpy()) == counted


def test_a_record_of_another_checkpoint_is_not_used(tmp_path):
    prefix = _old_checkpoint(tmp_path, 5)
    progress = {"checkpoint": "ckpt-4", "examples_seen": 96}
    RunDir(tmp_path).progress.write_text(json.dumps(progress))
    state = State(tmp_path)
    state.store.restore_latest()
    assert int(state.counter.numpy()) == 50 and state.estimates == 1
    assert prefix.with_suffix(".index").exists()


def test_a_worker_that_is_not_the_chief_moves_and_keeps_nothing(tmp_path, capsys):
    chief = State(tmp_path)
    for step in (1, 2):
        chief.save_at(step)
    _damage(tmp_path / "checkpoints" / "ckpt-2")
    listing = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())

    worker = State(tmp_path, is_chief=False, worker_index=1)
    assert worker.store.restore_latest().endswith("ckpt-1")  # it skips the damaged one too
    assert worker.save_at(7) is None  # it takes part in the save, then deletes its copy
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == listing
    assert capsys.readouterr().err == ""
