"""How a training process runs: TensorFlow started without its log noise, the
tf.distribute strategy chosen from the devices really there, and Ctrl-C / SIGTERM turned
into a request to checkpoint and stop between two steps."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import sys
import tempfile
import warnings
from collections.abc import Iterator
from types import FrameType
from typing import TYPE_CHECKING

from cgan.common.cli import first_line
from cgan.common.errors import TrainingError

if TYPE_CHECKING:
    import tensorflow as tf


# A native log line in absl's format: severity letter, date, time, thread, file:line].
_NATIVE_LOG_LINE = re.compile(r"([IWEF])\d{4} [\d:.]+ +\d+ [^\]\s]+:\d+\] ")
_ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called"
_SEVERITIES = "IWEF"


def _min_log_level() -> int:
    level = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0").strip()
    return int(level) if level in {"0", "1", "2", "3"} else 0


@contextlib.contextmanager
def _native_logs_filtered(min_level: int) -> Iterator[None]:
    """TensorFlow's shared libraries log through absl while they load, and absl ignores
    TF_CPP_MIN_LOG_LEVEL there (oneDNN's notice on AVX-512 CPUs, twice): without this a
    one-line error would arrive under four lines of notices. Lines below the level are
    dropped; anything else written meanwhile is passed on unchanged."""
    if min_level == 0:
        yield
        return
    sys.stderr.flush()
    with tempfile.TemporaryFile() as captured:
        saved = os.dup(2)
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode(errors="replace").splitlines(keepends=True):
                native = _NATIVE_LOG_LINE.match(line)
                if line.startswith(_ABSL_PREAMBLE) or (
                    native and _SEVERITIES.index(native.group(1)) < min_level
                ):
                    continue
                sys.stderr.write(line)
            sys.stderr.flush()


def quiet_tensorflow() -> None:
    """Call before anything imports TensorFlow."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    warnings.filterwarnings("ignore", module="tensorflow")
    warnings.filterwarnings("ignore", module="keras")
    import absl.logging

    absl.logging.set_verbosity(absl.logging.ERROR)
    with _native_logs_filtered(_min_log_level()):
        import tensorflow as tf

    tf.get_logger().setLevel(logging.ERROR)
    tf.autograph.set_verbosity(0)


def check_tf_config(text: str | None) -> dict:
    """TF_CONFIG, the cluster of a multi-worker run, checked before TensorFlow reads it:
    a typo there is one line, not a traceback from deep inside tf.distribute."""
    if not text:
        raise TrainingError(
            "--multi-worker needs TF_CONFIG, e.g. "
            '{"cluster": {"worker": ["host1:2222", "host2:2222"]}, '
            '"task": {"type": "worker", "index": 0}}'
        )
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TrainingError(f"TF_CONFIG is not JSON: {exc}") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise TrainingError('TF_CONFIG needs a "cluster" and a "task" object')
    for role, addresses in cluster.items():
        if role not in ("chief", "worker") or not isinstance(addresses, list):
            raise TrainingError(
                f'TF_CONFIG cluster: {role!r} must be "chief" or "worker" with a list of host:port'
            )
        for address in addresses:
            host, _, port = str(address).rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise TrainingError(f"TF_CONFIG cluster: {address!r} is not host:port")
    role, index = task.get("type"), task.get("index")
    if role not in cluster:
        raise TrainingError(f"TF_CONFIG task type {role!r} is not in the cluster")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(cluster[role]):
        raise TrainingError(
            f"TF_CONFIG task index {index!r} is not one of the {len(cluster[role])} {role}(s)"
        )
    return config


def choose_strategy(multi_worker: bool = False) -> tf.distribute.Strategy:
    """MultiWorkerMirrored when asked (TF_CONFIG names the cluster), Mirrored over several
    GPUs, otherwise the default strategy (one GPU or the CPU)."""
    import tensorflow as tf

    if multi_worker:
        check_tf_config(os.environ.get("TF_CONFIG"))
        try:
            return tf.distribute.MultiWorkerMirroredStrategy()
        except (ValueError, RuntimeError) as exc:
            raise TrainingError(f"TF_CONFIG: {first_line(exc)}") from None
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
