"""Training view under AppTest, and the runs-folder rules behind it."""

from __future__ import annotations

import pytest

from cgan.common.errors import DashboardError
from cgan.dashboard.runs import config_of, list_runs, metrics_frame, open_run, sample_epochs
from tests.dashboard.helpers import assert_clean, show, widget


def test_runs_folder_lists_runs_only(dashboard_files):
    assert list_runs(dashboard_files.runs) == ["dcgan", "sngan"]  # not notes/
    assert list_runs(dashboard_files.empty / "missing") == []


@pytest.mark.parametrize(
    "name", ["..", ".", "../runs/sngan", "/etc", "sngan/../dcgan", "notes", ""]
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


def test_training_view_shows_curves_samples_and_config(app):
    show(app.run(), "Training")
    assert_clean(app)
    run = widget(app, "training.run")
    assert run.options == ["dcgan", "sngan"]
    run.select("sngan").run()
    assert_clean(app)
    assert len(app.get("vega_lite_chart")) == 3  # losses, D outputs, throughput
    epoch = widget(app, "training.epoch")
    assert list(epoch.options) == ["1", "2"] and epoch.value == 2  # the latest by default
    epoch.set_value(1).run()
    assert "epoch 1 (of 2 grids)" in app.get("image")[0].captions[0]
    assert 'arch = "sngan"' in app.code[0].value
    assert any(m.label == "g_loss" for m in app.metric)
    widget(app, "training.live").set_value(True).run()  # the same body, as a timed fragment
    assert_clean(app)
    assert len(app.get("vega_lite_chart")) == 3


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
