"""How a training process runs: TensorFlow started without its log noise, the
tf.distribute strategy chosen from the devices really there, and Ctrl-C / SIGTERM turned
into a request to checkpoint and stop between two steps."""

from __future__ import annotations

import logging
import os
import signal
import warnings
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tensorflow as tf


def quiet_tensorflow() -> None:
    """Call before anything imports TensorFlow."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    warnings.filterwarnings("ignore", module="tensorflow")
    warnings.filterwarnings("ignore", module="keras")
    import absl.logging

    absl.logging.set_verbosity(absl.logging.ERROR)
    import tensorflow as tf

    tf.get_logger().setLevel(logging.ERROR)
    tf.autograph.set_verbosity(0)


def choose_strategy(multi_worker: bool = False) -> tf.distribute.Strategy:
    """MultiWorkerMirrored when asked (TF_CONFIG names the cluster), Mirrored over several
    GPUs, otherwise the default strategy (one GPU or the CPU)."""
    import tensorflow as tf

    if multi_worker:
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def describe(strategy: tf.distribute.Strategy) -> str:
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    device = f"{len(gpus)} GPU(s)" if gpus else "CPU"
    return f"{type(strategy).__name__} with {strategy.num_replicas_in_sync} replica(s) on {device}"


class GracefulStop:
    """Context manager; `requested` becomes the signal number when one arrives."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.requested is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: the user really wants out now
        self.requested = signum

    def __enter__(self) -> GracefulStop:
        for signum in self.SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
