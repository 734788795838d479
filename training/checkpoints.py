"""Where a run's training state is saved and how a resume finds it (TensorFlow-specific).

The rules live here, apart from the step maths, so they can be tested with a few variables
instead of two networks: a damaged checkpoint is set aside and the one before it used;
checkpoints from before the real-example counter existed still restore; only the chief
writes the run folder.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import tensorflow as tf

from cgan.common.cli import first_line
from cgan.common.run_dir import RunDir

# The counter of real examples D has taken, as TensorFlow names it inside a checkpoint.
COUNTER_NAME = "real_examples"
_COUNTER_KEY = f"{COUNTER_NAME}/.ATTRIBUTES/VARIABLE_VALUE"


class CheckpointStore:
    """Saves and restores `parts` (anything tf.train.Checkpoint tracks) plus the counter.

    `estimate_examples` gives the counter's value for an old checkpoint that lacks it when
    progress.json has no record for that checkpoint; it is called after the restore, so it
    may read the restored step counters."""

    def __init__(
        self,
        run: RunDir,
        parts: dict[str, object],
        counter: tf.Variable,
        estimate_examples: Callable[[], int],
        *,
        keep: int,
        is_chief: bool = True,
        worker_index: int = 0,
    ) -> None:
        self.run = run
        self.counter = counter
        self.estimate_examples = estimate_examples
        self.keep = keep
        self.is_chief = is_chief
        self.worker_index = worker_index
        self.checkpoint = tf.train.Checkpoint(**parts, **{COUNTER_NAME: counter})
        # Checkpoints written before the counter existed restore through this one.
        self.checkpoint_without_count = tf.train.Checkpoint(**parts)
        self.manager = self._manager()
        self.restore_attempted = False  # set by restore_latest, even when every one fails

    def _manager(self) -> tf.train.CheckpointManager:
        return tf.train.CheckpointManager(
            self.checkpoint,
            str(self.run.checkpoints),
            max_to_keep=self.keep,
            checkpoint_name="ckpt",
        )

    def restore_latest(self) -> str | None:
        """Restore the newest readable checkpoint, if any; returns its path.

        A checkpoint that cannot be read (a crash mid-write, a damaged disk) is moved to
        checkpoints/damaged/ with one line on stderr, and the one before it is used: at most
        one checkpoint interval of training is lost, never the run."""
        skipped = False
        for prefix in self.run.checkpoint_prefixes():
            self.restore_attempted = True
            try:
                self._restore(prefix)
            except Exception as exc:  # TF raises OpError, IndexError, ValueError... here
                skipped = True
                if not self.is_chief:  # the chief alone moves files; the others skip it too
                    continue
                folder = self.run.set_aside(prefix)
                print(
                    f"checkpoint {prefix.name} is unreadable ({first_line(exc)}); moved to "
                    f"{folder}, trying the one before it",
                    file=sys.stderr,
                )
                continue
            if skipped and self.is_chief:
                self._rewrite_state(prefix)
            return str(prefix)
        if skipped and self.is_chief:
            self._rewrite_state(None)
        return None

    def _restore(self, prefix: Path) -> None:
        if tf.train.load_checkpoint(str(prefix)).has_tensor(_COUNTER_KEY):
            self.checkpoint.restore(str(prefix)).assert_existing_objects_matched()
            return
        self.checkpoint_without_count.restore(str(prefix)).assert_existing_objects_matched()
        self.counter.assign(self._examples_before_the_count(prefix))

    def _examples_before_the_count(self, prefix: Path) -> int:
        """The count progress.json recorded beside that checkpoint; failing that, the
        estimate (exact for a run that never changed --d-steps or --batch-size)."""
        progress = self.run.read_progress()
        if isinstance(progress, dict) and progress.get("checkpoint") == prefix.name:
            recorded = progress.get("examples_seen")
            # A whole number that fits the counter (not a bool, a float or a string).
            if type(recorded) is int and 0 <= recorded < 2**62:
                return recorded
        return self.estimate_examples()

    def _rewrite_state(self, latest: Path | None) -> None:
        """Point TensorFlow's `checkpoint` file at the checkpoints that remain."""
        remaining = [str(p) for p in reversed(self.run.checkpoint_prefixes())]
        if latest is None:
            (self.run.checkpoints / "checkpoint").unlink(missing_ok=True)
        else:
            tf.compat.v1.train.update_checkpoint_state(
                str(self.run.checkpoints), str(latest), all_model_checkpoint_paths=remaining
            )
        self.manager = self._manager()

    def save(self, number: int) -> str | None:
        """The chief's checkpoint path; None on the other workers. Every worker takes part
        in a save (TensorFlow needs them to); the others write a scratch copy and delete it."""
        if self.is_chief:
            return self.manager.save(checkpoint_number=number)
        scratch = self.run.checkpoints / f".worker-{self.worker_index}"
        tf.train.CheckpointManager(self.checkpoint, str(scratch), max_to_keep=1).save(number)
        shutil.rmtree(scratch, ignore_errors=True)
        return None
