"""Multi-worker training for real: two `cgan-train` processes on 127.0.0.1, joined by
MultiWorkerMirroredStrategy over gRPC (TF_CONFIG, CPU), against one process.

Tolerance: the two-worker run splits each global batch of 32 in halves and all-reduces the
gradients and the batch-norm statistics, so it computes the one-process run's numbers up
to the order of float additions. The first logged losses agree to 1e-3 (relative); the
rounding differences then grow as GAN training amplifies them, and after 24 steps every
weight tensor group (G, D, EMA G) is within 5% (relative L2) of the one-process run's
(measured: 1.3%, 0.9%, 0.3%). A different batch, noise or shard would already differ at
the first step.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

STEPS = 24
ARGS = ["--preset", "smoke", "--log-every", "4", "--checkpoint-every", "12"]
TIMEOUT = 900  # seconds for one run of the cluster; a hang fails the test, never blocks it
TRAIN = [sys.executable, "-m", "cgan.training.cli"]


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


class Cluster:
    """Two worker processes; worker 1 runs with umask 077, so anything it leaves in the
    run directory is visibly its own (mode 0600 files, 0700 folders)."""

    def __init__(self, run_dir: Path, logs: Path, extra: list[str]) -> None:
        addresses = [f"127.0.0.1:{port}" for port in _free_ports(2)]
        logs.mkdir(parents=True, exist_ok=True)
        self.logs = [logs / f"worker{index}.log" for index in range(2)]
        self.processes = []
        for index in range(2):
            env = {
                **os.environ,
                "TF_CONFIG": json.dumps(
                    {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}
                ),
            }
            umask = 0o022 if index == 0 else 0o077
            with self.logs[index].open("w") as log:
                self.processes.append(
                    subprocess.Popen(
                        [*TRAIN, *ARGS, "--multi-worker", "--run-dir", str(run_dir), *extra],
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        preexec_fn=lambda umask=umask: os.umask(umask),
                    )
                )

    def wait(self) -> list[int]:
        deadline = time.monotonic() + TIMEOUT
        try:
            return [p.wait(timeout=max(1.0, deadline - time.monotonic())) for p in self.processes]
        finally:
            self.kill()

    def kill(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()

    def output(self, index: int) -> str:
        return self.logs[index].read_text()


def _single_run(run_dir: Path) -> str:
    done = subprocess.run(
        [*TRAIN, *ARGS, "--steps", str(STEPS), "--run-dir", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stderr


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("multi_worker")
    started = time.monotonic()
    single_output = _single_run(root / "single")
    single_seconds = time.monotonic() - started
    started = time.monotonic()
    cluster = Cluster(root / "multi", root / "logs-first", ["--steps", str(STEPS)])
    codes = cluster.wait()
    multi_seconds = time.monotonic() - started
    print(f"one process: {single_seconds:.0f} s, two workers: {multi_seconds:.0f} s")
    return {
        "root": root,
        "single": root / "single",
        "multi": root / "multi",
        "codes": codes,
        "outputs": [cluster.output(0), cluster.output(1)],
        "single_output": single_output,
    }


def _files(run_dir: Path) -> dict[str, int]:
    """Relative path -> permission bits, of everything in the run directory."""
    return {
        str(path.relative_to(run_dir)): path.stat().st_mode & 0o777
        for path in sorted(run_dir.rglob("*"))
    }


def test_both_workers_finish_and_only_the_chief_reports(runs: dict) -> None:
    assert runs["codes"] == [0, 0], runs["outputs"]
    chief, other = runs["outputs"]
    assert "2 replica(s)" in chief
    assert f"done: step {STEPS}" in chief
    assert other.strip().splitlines()[-1] == f"worker 1: stopped at step {STEPS}"
    assert "Traceback" not in chief + other


def test_the_chief_alone_writes_the_run_directory(runs: dict) -> None:
    files = _files(runs["multi"])
    # The same files as a one-process run: no second checkpoint folder, no leftovers of
    # worker 1's scratch checkpoints, no temporary files.
    assert set(files) == set(_files(runs["single"]))
    assert not [name for name in files if ".worker-" in name or name.endswith(".tmp")]
    # Nothing with worker 1's umask: it wrote nothing that stayed.
    mine = {name: mode for name, mode in files.items() if mode & 0o077 == 0}
    assert not mine, f"written by worker 1: {mine}"
    steps = [record["step"] for record in _metrics(runs["multi"])]
    assert steps == list(range(4, STEPS + 1, 4))  # one writer: no record twice


def _metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _weights(run_dir: Path, step: int) -> dict[str, np.ndarray]:
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(run_dir / "checkpoints" / f"ckpt-{step}"))
    parts = ("generator/", "discriminator/", "ema_generator/")
    return {
        name: reader.get_tensor(name)
        for name in reader.get_variable_to_shape_map()
        if name.startswith(parts) and "OPTIMIZER_SLOT" not in name
    }


def test_two_workers_train_like_one_process(runs: dict) -> None:
    first_multi, first_single = _metrics(runs["multi"])[0], _metrics(runs["single"])[0]
    for name in ("d_loss", "g_loss", "d_real", "d_fake"):
        assert first_multi[name] == pytest.approx(first_single[name], rel=1e-3), name
    multi, single = _weights(runs["multi"], STEPS), _weights(runs["single"], STEPS)
    assert set(multi) == set(single) and multi
    for part in ("generator/", "discriminator/", "ema_generator/"):
        names = [name for name in single if name.startswith(part)]
        difference = sum(float(np.sum((multi[n] - single[n]) ** 2)) for n in names)
        size = sum(float(np.sum(single[n] ** 2)) for n in names)
        assert (difference / size) ** 0.5 < 0.05, part


def _progress_step(run_dir: Path) -> int:
    try:
        return json.loads((run_dir / "progress.json").read_text())["step"]
    except (OSError, ValueError, KeyError):
        return -1


def test_a_killed_worker_and_a_restart_resume_from_the_last_checkpoint(runs: dict) -> None:
    multi, final = runs["multi"], 2 * STEPS
    cluster = Cluster(multi, runs["root"] / "logs-killed", ["--resume", "--steps", str(final)])
    deadline = time.monotonic() + TIMEOUT
    while _progress_step(multi) < STEPS + 12:  # one checkpoint past the restored one
        assert time.monotonic() < deadline, "no checkpoint from the resumed cluster"
        assert all(p.poll() is None for p in cluster.processes), cluster.output(0)
        time.sleep(0.5)
    cluster.processes[1].send_signal(signal.SIGKILL)
    codes = cluster.wait()
    assert codes[0] not in (0, None) and codes[1] == -signal.SIGKILL
    chief = cluster.output(0)
    assert "Traceback" not in chief
    assert "lost another worker of the cluster" in chief.strip().splitlines()[-1]
    saved = _progress_step(multi)
    assert STEPS + 12 <= saved < final

    again = Cluster(multi, runs["root"] / "logs-restarted", ["--resume", "--steps", str(final)])
    assert again.wait() == [0, 0], again.output(0)
    assert f"resuming at step {saved}" in again.output(0)
    assert f"done: step {final}" in again.output(0)
    steps = [record["step"] for record in _metrics(multi)]
    assert steps == list(range(4, final + 1, 4))  # the killed session's records past the
    # checkpoint were dropped on resume, and nothing was written twice
