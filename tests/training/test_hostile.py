"""Damaged or hand-edited run directories: one line naming the problem, never a traceback
or a TensorFlow log line; a damaged newest checkpoint costs one interval, not the run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("tensorflow")

from cgan.common.run_dir import (
    CONFIG_NAME,  # noqa: E402
    RunDir,  # noqa: E402
)
from cgan.training.config import load_config  # noqa: E402
from cgan.training.loop import train  # noqa: E402
from cgan.training.runtime import check_tf_config, quiet_tensorflow  # noqa: E402

from .helpers import tiny_config  # noqa: E402

quiet_tensorflow()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """Six steps with checkpoints at 3 and 6: copied by each test that damages it."""
    run_dir = tmp_path_factory.mktemp("hostile") / "run"
    train(tiny_config(steps=6, checkpoint_every=3), run_dir, resume=False, progress=False)
    assert [p.name for p in RunDir(run_dir).checkpoint_prefixes()] == ["ckpt-6", "ckpt-3"]
    return run_dir


@pytest.fixture
def run_copy(finished_run, tmp_path) -> Path:
    return Path(shutil.copytree(finished_run, tmp_path / "run"))


def edit_config(run_dir: Path, key: str, value: object) -> None:
    """Set `key` to `value` in the saved config, or remove it when value is REMOVED."""
    import tomli_w
    import tomllib

    path = run_dir / CONFIG_NAME
    values = tomllib.loads(path.read_text())
    if value is REMOVED:
        del values[key]
    else:
        values[key] = value
    path.write_text(tomli_w.dumps(values))


REMOVED = object()


def command(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=180
    )


def assert_one_line(result: subprocess.CompletedProcess, prog: str, fragment: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr  # no TensorFlow log line, no traceback
    assert lines[0].startswith(f"{prog}: error:") and fragment in lines[0], lines[0]


DAMAGED_CONFIGS = {
    "latent_dim text": ("latent_dim", "abc", "latent_dim = 'abc': must be a whole"),
    "latent_dim negative": ("latent_dim", -5, "latent_dim = '-5': must be between"),
    "unknown arch": ("arch", "vae", "arch = 'vae': choose one of sngan, dcgan"),
    "labels removed": ("labels", REMOVED, "labels is missing"),
    "labels empty": ("labels", [], "labels is empty"),
    "labels not names": ("labels", [1, 2], "labels = '[1, 2]': must be a list"),
    "learning rate nan": ("g_lr", float("nan"), "g_lr = 'nan': must be a finite number"),
    "huge width": ("g_channels", 10**12, "g_channels = '1000000000000'"),
    "boolean batch": ("batch_size", True, "batch_size = 'True': must be a whole"),
    "unknown augmentation": ("diffaugment", "flip", "unknown policy flip"),
    "resolution 48": ("resolution", 48, "resolution = '48': must be one of"),
    "negative decay": ("lr_decay_steps", -3, "lr_decay_steps = '-3': must not be negative"),
    "negative class pull": ("aux_g_scale", -1.0, "aux_g_scale = '-1.0': must not be negative"),
    "label with a path separator": (
        "labels",
        ["red-disc", "a/../b", "blue-triangle"],
        "labels: label 'a/../b' is not usable: it holds a path separator",
    ),
    "more synthetic classes than colours": (
        "synthetic_classes",
        500,
        "synthetic_classes = '500': must be between 1 and 10",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(DAMAGED_CONFIGS))
def test_damaged_config_is_one_line_naming_the_key(run_copy, case):
    from cgan.common.errors import TrainingError

    key, line, fragment = DAMAGED_CONFIGS[case]
    edit_config(run_copy, key, line)
    with pytest.raises(TrainingError) as caught:
        load_config(run_copy)
    assert fragment in str(caught.value) and "\n" not in str(caught.value)
    assert str(caught.value).startswith(str(run_copy / CONFIG_NAME))


@pytest.mark.slow
def test_damaged_config_through_export_and_resume(run_copy):
    """The same checks as a user meets them: one line from either command, nothing else."""
    edit_config(run_copy, "latent_dim", "abc")
    fragment = "latent_dim = 'abc': must be a whole number"
    assert_one_line(
        command("cgan.export.cli", str(run_copy), "-o", str(run_copy / "m.onnx")),
        "cgan-export",
        fragment,
    )
    assert_one_line(
        command("cgan.training.cli", "--run-dir", str(run_copy), "--resume"), "cgan-train", fragment
    )
    assert not (run_copy / "m.onnx").exists()


def test_run_dir_that_is_a_file(tmp_path, capsys):
    from cgan.training.cli import main

    target = tmp_path / "not-a-folder"
    target.write_text("x")
    for extra in ([], ["--resume"]):
        assert main(["--run-dir", str(target), "--preset", "smoke", "--quiet", *extra]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert lines == [f"cgan-train: error: --run-dir {target} is a file, not a folder"]
    assert target.read_text() == "x"


@pytest.mark.slow  # needs a trained run or judge (a fixture of 10-16 s)
def test_checkpoint_name_cannot_leave_the_run(run_copy):
    from cgan.common.errors import ExportError
    from cgan.export.exporter import restore_generator

    for name in ("../../etc/passwd", "/tmp/ckpt-3", "ckpt-3/../../x"):
        with pytest.raises(ExportError, match="give a checkpoint name such as ckpt-500"):
            restore_generator(run_copy, checkpoint=name)


@pytest.mark.slow
def test_resume_falls_back_from_a_damaged_newest_checkpoint(run_copy, capsys):
    data = next((run_copy / "checkpoints").glob("ckpt-6.data-*"))
    data.write_bytes(data.read_bytes()[:100])  # cut short, as by a full disk
    config = load_config(run_copy)
    config.steps = 8
    result = train(config, run_copy, resume=True, progress=False)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("checkpoint ckpt-6 is unreadable"), lines
    assert "trying the one before it" in lines[0]
    assert result.step == 8  # resumed at 3, trained 5 more
    damaged = run_copy / "checkpoints" / "damaged"
    assert (damaged / data.name).is_file()  # set aside, not deleted
    names = [p.name for p in RunDir(run_copy).checkpoint_prefixes()]
    assert names == ["ckpt-8", "ckpt-6", "ckpt-3"]  # ckpt-6 written afresh on the way
    steps = [r["step"] for r in RunDir(run_copy).read_metrics()]
    assert steps == sorted(set(steps))  # records past step 3 were replaced, not doubled


@pytest.mark.slow
def test_resume_through_damaged_metrics_and_sample_noise(run_copy, capsys):
    """A byte that is not UTF-8, a line without losses and noise that is not an array: the
    resume trains on, draws its curve, and says once that the grids' noise is new."""
    run = RunDir(run_copy)
    with run.metrics.open("ab") as stream:
        stream.write(b'{"step": 2, "d_loss": "\xff"}\n{"step": 1}\n')
    run.fixed_noise.write_bytes(b"\x80\x04 not an array")
    run.loss_curve.unlink()
    config = load_config(run_copy)
    config.steps = 8
    result = train(config, run_copy, resume=True, progress=False)
    assert result.step == 8
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "is not this run's sample noise" in lines[0], lines
    assert run.loss_curve.is_file() and (run_copy / "fixed_noise.damaged.npy").is_file()


@pytest.mark.slow
def test_state_file_naming_a_missing_checkpoint(run_copy):
    """TensorFlow's `checkpoint` file says ckpt-6, whose files are gone: resume from ckpt-3
    with no TensorFlow ERROR line and no misleading message."""
    for part in (run_copy / "checkpoints").glob("ckpt-6.*"):
        part.unlink()
    assert "ckpt-6" in (run_copy / "checkpoints" / "checkpoint").read_text()
    result = command(
        "cgan.training.cli", "--run-dir", str(run_copy), "--resume", "--steps", "4", "--quiet"
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("done: step 4"), result.stderr


@pytest.mark.slow
def test_all_checkpoints_damaged_starts_again_and_says_so(run_copy, capsys):
    for data in (run_copy / "checkpoints").glob("ckpt-*.data-*"):
        data.write_bytes(b"")
    config = load_config(run_copy)
    result = train(config, run_copy, resume=True, progress=False)
    err = capsys.readouterr().err
    assert err.count("is unreadable") == 2 and "starting from step 0" in err
    assert result.step == config.steps


GOOD_CLUSTER = '{"cluster": {"worker": ["127.0.0.1:2222", "127.0.0.1:2223"]}, '


@pytest.mark.parametrize(
    ("tf_config", "expected"),
    [
        (None, "--multi-worker needs TF_CONFIG"),
        ("{bad", "TF_CONFIG is not JSON"),
        ("[1, 2]", 'needs a "cluster" and a "task"'),
        ('{"cluster": {"ps": ["h:1"]}, "task": {}}', 'must be "chief" or "worker"'),
        ('{"cluster": {"worker": ["nohost"]}, "task": {}}', "is not host:port"),
        ('{"cluster": {"worker": ["h:99999"]}, "task": {}}', "is not host:port"),
        (GOOD_CLUSTER + '"task": {"type": "chief", "index": 0}}', "task type 'chief'"),
        (GOOD_CLUSTER + '"task": {"type": "worker", "index": 2}}', "task index 2 is not one"),
        (GOOD_CLUSTER + '"task": {"type": "worker", "index": true}}', "task index True"),
    ],
)
def test_a_bad_tf_config_is_one_line_before_tensorflow_reads_it(
    tf_config: str | None, expected: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    if tf_config is not None:
        env["TF_CONFIG"] = tf_config
    done = subprocess.run(
        [sys.executable, "-m", "cgan.training.cli", "--preset", "smoke", "--multi-worker"]
        + ["--run-dir", str(tmp_path / "run"), "--steps", "1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cgan-train: error:"), done.stderr
    assert expected in lines[0]
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_a_good_tf_config_passes_the_check() -> None:
    config = check_tf_config(GOOD_CLUSTER + '"task": {"type": "worker", "index": 1}}')
    assert config["task"]["index"] == 1


def test_native_log_notices_below_the_level_are_dropped_and_the_rest_kept(capfd) -> None:
    # What TensorFlow's libraries print through absl while loading on an AVX-512 CPU,
    # whatever TF_CPP_MIN_LOG_LEVEL says: it must not bury a one-line error.
    from cgan.training.runtime import _native_logs_filtered

    written = [
        b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
        b"I0000 00:00:1796484378.921073    3819 port.cc:153] oneDNN custom operations are on.\n",
        b"W1205 15:16:07.123456    3819 port.cc:148] TF_ENABLE_ONEDNN_OPTS is not set\n",
        b"E1205 15:16:07.123456    3819 cuda.cc:12] a real error\n",
        b"a line of anything else\n",
    ]
    with _native_logs_filtered(2):
        for line in written:
            os.write(2, line)
    assert capfd.readouterr().err == (
        "E1205 15:16:07.123456    3819 cuda.cc:12] a real error\na line of anything else\n"
    )
    with _native_logs_filtered(0):
        os.write(2, written[1])
    assert capfd.readouterr().err == written[1].decode()


@pytest.mark.slow
def test_class_folders_the_exporter_would_refuse_fail_before_training(tmp_path):
    from .helpers import write_image

    for label in ("Dog", "dog", "cat"):
        for i in range(4):
            write_image(tmp_path / "data" / label / f"{i}.png", (40 * i, 90, 90))
    run_dir = tmp_path / "run"
    result = command(
        "cgan.training.cli", "--run-dir", str(run_dir), "--preset", "smoke",
        "--data", str(tmp_path / "data"), "--batch-size", "4", "--quiet",
    )  # fmt: skip
    assert_one_line(result, "cgan-train", "label 'dog' appears twice")
    assert not RunDir(run_dir).has_checkpoint()
