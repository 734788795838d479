"""cgan-train as a user meets it: one-line errors, SIGTERM saves, --resume continues."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .helpers import write_image

TINY = [
    "--preset",
    "smoke",
    "--g-channels",
    "8",
    "--d-channels",
    "8",
    "--latent-dim",
    "8",
    "--batch-size",
    "8",
    "--quiet",
]


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cgan.training.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, fragment: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("cgan-train: error:") and fragment in lines[0], lines[0]


def test_help_shows_examples():
    result = run_cli("--help")
    assert result.returncode == 0
    assert "examples:" in result.stdout and "--resume" in result.stdout


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--preset", "nope"], "invalid choice: 'nope'"),
        (["--arch", "stylegan"], "invalid choice: 'stylegan'"),
        (["--steps", "0"], "must be between 1 and 1000000000, got 0"),
        (["--steps", "many"], "expected a whole number"),
        (["--ema-decay", "1.5"], "must be between 0 and 1"),
        (["--diffaugment", "flip"], "diffaugment = 'flip': unknown policy flip"),
    ],
)
def test_bad_options(tmp_path, args, fragment):
    assert_one_line_error(run_cli("--run-dir", str(tmp_path / "r"), *args), fragment)


@pytest.mark.slow
def test_missing_and_empty_data_folders(tmp_path):
    missing = run_cli("--run-dir", str(tmp_path / "r"), "--data", str(tmp_path / "nowhere"))
    assert_one_line_error(missing, "does not exist")
    (tmp_path / "empty").mkdir()
    empty = run_cli("--run-dir", str(tmp_path / "r"), "--data", str(tmp_path / "empty"))
    assert_one_line_error(empty, "has no class folders")
    write_image(tmp_path / "bad" / "cat" / "ok.png")
    (tmp_path / "bad" / "dog").mkdir()
    (tmp_path / "bad" / "dog" / "x.jpg").write_bytes(b"not a jpeg")
    unreadable = run_cli("--run-dir", str(tmp_path / "r"), "--data", str(tmp_path / "bad"))
    assert_one_line_error(unreadable, "no readable image in")


def test_resume_of_a_non_run(tmp_path):
    assert_one_line_error(run_cli("--run-dir", str(tmp_path), "--resume"), "is not a run directory")


@pytest.mark.slow
def test_sigterm_checkpoints_and_resume_continues(tmp_path):
    run_dir = tmp_path / "run"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cgan.training.cli",
            "--run-dir",
            str(run_dir),
            *TINY,
            "--steps",
            "100000",
            "--log-every",
            "1",
            "--checkpoint-every",
            "100000",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    metrics = run_dir / "metrics.jsonl"
    deadline = time.time() + 90
    while time.time() < deadline:
        if metrics.exists() and metrics.read_text().count("\n") >= 3:
            break
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert "Traceback" not in stderr
    assert "checkpoint saved at step" in stderr and "--resume" in stderr
    stopped_at = int(stderr.split("checkpoint saved at step ")[1].split(".")[0])
    assert stopped_at >= 3
    assert (run_dir / "checkpoints" / f"ckpt-{stopped_at}.index").is_file()
    assert (run_dir / "samples" / "latest.png").is_file()

    again = run_cli("--run-dir", str(run_dir), "--data", "synthetic")
    assert_one_line_error(again, "already holds a run")
    clash = run_cli("--run-dir", str(run_dir), "--resume", "--arch", "dcgan")
    assert_one_line_error(clash, "incompatible")

    resumed = run_cli(
        "--run-dir", str(run_dir), "--resume", "--steps", str(stopped_at + 2), "--quiet"
    )
    assert resumed.returncode == 0, resumed.stderr
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    steps = [r["step"] for r in records]
    assert steps == list(range(1, stopped_at + 3))
    assert Path(run_dir / "checkpoints" / f"ckpt-{stopped_at + 2}.index").is_file()
