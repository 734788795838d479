"""Training view under AppTest, and the runs-folder rules behind it."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from cgan.common.errors import DashboardError
from cgan.dashboard.runs import (
    checkpoint_names,
    config_of,
    evaluation_frame,
    list_runs,
    metrics_frame,
    open_run,
    sample_epochs,
)
from tests.dashboard.helpers import assert_clean, show, widget


def test_runs_folder_lists_runs_only(dashboard_files):
    # not notes/; a study's variants one folder down
    assert list_runs(dashboard_files.runs) == ["dcgan", "sngan", "study/fast", "study/slow"]
    assert list_runs(dashboard_files.empty / "missing") == []


@pytest.mark.parametrize(
    "name",
    [
        "..",
        ".",
        "../runs/sngan",
        "/etc",
        "sngan/../dcgan",
        "notes",
        "",
        "study",
        "study/..",
        "study/../sngan",
        "study/fast/samples",
        "study//fast",
    ],  # fmt: skip
)
def test_only_listed_runs_can_be_opened(dashboard_files, name):
    with pytest.raises(DashboardError):
        open_run(dashboard_files.runs, name)


def test_run_files_are_read(dashboard_files):
    run = open_run(dashboard_files.runs, "sngan")
    frame = metrics_frame(run)
    assert list(frame["step"]) == [2, 4]
    assert {"d_loss", "g_loss", "d_real", "d_fake", "images_per_sec"} <= set(frame)
    assert sample_epochs(run) == [1, 2]
    text, config = config_of(run)
    assert 'arch = "sngan"' in text and config["labels"][0] == "red-disc"


@pytest.mark.slow
def test_training_view_shows_curves_samples_and_config(app):
    show(app.run(), "Training")
    assert_clean(app)
    run = widget(app, "training.run")
    assert run.options == ["dcgan", "sngan", "study/fast", "study/slow"]
    run.select("sngan").run()
    assert_clean(app)
    assert len(app.get("vega_lite_chart")) == 3  # losses, D outputs, throughput
    assert any("No quality figures yet" in i.value for i in app.info)
    epoch = widget(app, "training.epoch")
    assert list(epoch.options) == ["1", "2"] and epoch.value == 2  # the latest by default
    epoch.set_value(1).run()
    assert "epoch 1 (of 2 grids)" in app.get("image")[0].captions[0]
    assert 'arch = "sngan"' in app.code[0].value
    assert any(m.label == "g_loss" for m in app.metric)
    widget(app, "training.live").set_value(True).run()  # the same body, as a timed fragment
    assert_clean(app)
    assert len(app.get("vega_lite_chart")) == 3


def test_measured_runs_give_quality_frames_and_the_best_checkpoint(dashboard_files):
    run = open_run(dashboard_files.runs, "study/fast")
    quality = evaluation_frame(run)
    assert list(quality["step"]) == [4, 8]  # eval_every 4
    assert {"probe_accuracy", "imagenet_frechet_distance", "cpu_hours", "epoch"} <= set(quality)
    assert list(metrics_frame(run)["step"]) == [2, 4, 6, 8]  # the losses, apart
    best = run.read_best()
    assert best["step"] == quality.loc[quality["imagenet_frechet_distance"].idxmin(), "step"]
    names = checkpoint_names(run)
    assert names[0] == "best" and names[1] == "ckpt-8"


@pytest.mark.slow
def test_training_view_overlays_quality_curves_and_marks_the_best(app, dashboard_files):
    show(app.run(), "Training")
    widget(app, "training.run").select("study/slow").run()
    assert_clean(app)
    charts = app.get("vega_lite_chart")
    assert len(charts) == 4 + 3  # FD, accuracy, precision, recall; the three loss charts
    captions = " ".join(c.value for c in app.caption)
    best = open_run(dashboard_files.runs, "study/slow").read_best()
    assert f"Best snapshot of study/slow: step {best['step']}" in captions
    assert "4 per class" in captions  # the protocol the figures were measured under
    widget(app, "training.compare").set_value(["study/fast"]).run()
    widget(app, "training.axis").set_value("CPU-hours").run()
    assert_clean(app)
    chart = app.get("vega_lite_chart")[0].proto
    assert "CPU-hours" in chart.spec and "diamond" in chart.spec  # the best snapshot's mark
    lines, marks = (_arrow_frame(d.data.data) for d in chart.datasets)
    assert set(lines["run"]) == {"study/fast", "study/slow"}
    assert set(lines["figure"]) == {"imagenet_frechet_distance"}
    assert lines["x"].max() < 0.1  # CPU-hours of a few steps
    assert set(marks["run"]) == {"study/fast", "study/slow"} and len(marks) == 2
    assert "--checkpoint best" in app.code[0].value
    widget(app, "training.checkpoint").set_value("ckpt-6").run()
    assert "cgan-export" in app.code[0].value and "--checkpoint ckpt-6" in app.code[0].value


def _arrow_frame(data: bytes):
    import pyarrow as pa

    return pa.ipc.open_stream(data).read_all().to_pandas()


def test_training_view_with_no_runs(app, dashboard_files, monkeypatch):
    monkeypatch.setenv("CGAN_RUNS_DIR", str(dashboard_files.empty))
    show(app.run(), "Training")
    assert_clean(app)
    assert any("No training runs" in i.value for i in app.info)


def test_broken_run_files_do_not_break_the_view(app, dashboard_files, tmp_path, monkeypatch):
    broken = tmp_path / "runs" / "broken"
    (broken / "samples").mkdir(parents=True)
    (broken / "config.toml").write_text("arch = \n")
    (broken / "metrics.jsonl").write_text('{"step": 1, "d_loss": 0.5}\n{"step": 2, "d_lo')
    (broken / "samples" / "epoch_0003.png").write_bytes(b"not a png")
    monkeypatch.setenv("CGAN_RUNS_DIR", str(tmp_path / "runs"))
    show(app.run(), "Training")
    assert not app.exception
    assert any("does not parse" in w.value for w in app.warning)
    assert any("cannot be read" in w.value for w in app.warning)


def test_wrong_types_in_run_files_break_only_their_part(app, tmp_path, monkeypatch):
    """Lines that parse but carry wrong types: each part of the page fails on its own."""
    odd = tmp_path / "runs" / "odd"
    (odd / "samples").mkdir(parents=True)
    (odd / "config.toml").write_text('labels = ["a"]\nsteps = "many"\n')
    records = [
        {"step": "two", "d_loss": [1]},
        {"step": 2, "d_loss": {"x": 1}, "g_loss": None},
        {"kind": "evaluation", "step": 2, "imagenet_frechet_distance": "far", "protocol": 7},
        {"kind": "evaluation", "step": [4], "probe_accuracy": 0.5},
        ["not", "a", "record"],
    ]
    (odd / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (odd / "progress.json").write_text('{"step": "x", "epoch": [1]}')
    (odd / "best").mkdir()
    (odd / "best" / "best.json").write_text('{"checkpoint": "ckpt-2", "figure": 5}')
    Image.new("RGB", (8, 8)).save(odd / "samples" / "epoch_0001.png")
    monkeypatch.setenv("CGAN_RUNS_DIR", str(tmp_path / "runs"))
    show(app.run(), "Training")
    assert not app.exception
    assert len(app.get("image")) == 1  # the samples still show
    assert all("\n" not in e.value for e in app.error)
