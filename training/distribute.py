"""Pick a tf.distribute strategy from the devices that are really there."""

from __future__ import annotations

import tensorflow as tf


def choose_strategy(multi_worker: bool = False) -> tf.distribute.Strategy:
    """MultiWorkerMirrored when asked (TF_CONFIG names the cluster), Mirrored over several
    GPUs, otherwise the default strategy (one GPU or the CPU)."""
    if multi_worker:
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def describe(strategy: tf.distribute.Strategy) -> str:
    gpus = tf.config.list_logical_devices("GPU")
    device = f"{len(gpus)} GPU(s)" if gpus else "CPU"
    return f"{type(strategy).__name__} with {strategy.num_replicas_in_sync} replica(s) on {device}"
