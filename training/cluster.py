"""This process's place among the worker processes of a multi-worker run, and the one
collective the loop needs between steps (TensorFlow-specific)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf


class Cluster:
    """The worker processes of `strategy`: how many, which one this is, whether it is the
    chief (the one that writes the run folder), and `gather` to share a few numbers."""

    def __init__(self, strategy: tf.distribute.Strategy) -> None:
        self.strategy = strategy
        self.is_chief = bool(strategy.extended.should_checkpoint)
        resolver = getattr(strategy, "cluster_resolver", None)
        spec = resolver.cluster_spec().as_dict() if resolver is not None else {}
        chiefs = len(spec.get("chief", []))
        self.workers = max(1, chiefs + len(spec.get("worker", [])))
        if not spec or resolver.task_type == "chief":
            self.index = 0
        else:  # TF_CONFIG numbers workers from 0 beside the chief, which is 0 here
            self.index = int(resolver.task_id) + chiefs

    def gather(self, values: list[float]) -> np.ndarray:
        """[workers, len(values)]: every worker's values, on every worker.

        Between two steps, every worker must call it: a worker that stopped alone would
        leave the others waiting in the next step's all-reduce."""
        return self._gather(tf.constant(values, tf.float64)).numpy()

    @tf.function
    def _gather(self, values: tf.Tensor) -> tf.Tensor:
        def place() -> tf.Tensor:  # this worker's row, zeros elsewhere; summed below
            row = tf.one_hot(self.index, self.workers, dtype=tf.float64)
            return row[:, None] * values[None, :]

        strategy = self.strategy
        summed = strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(place), axis=None)
        local_replicas = strategy.num_replicas_in_sync // self.workers
        return summed / local_replicas  # each local replica added one copy
