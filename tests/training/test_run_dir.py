"""A run directory holds everything a person or a later stage needs."""

from __future__ import annotations

import json

from PIL import Image

from cgan.common.run_dir import RunDir
from cgan.training.config import load_config


def test_run_directory_is_complete(tiny_runs):
    run = RunDir(tiny_runs["sngan"])
    config = load_config(run.root)
    assert config.labels == ["red-disc", "green-square", "blue-triangle"]
    assert config.arch == "sngan" and config.steps == 4

    records = run.read_metrics()
    assert [r["step"] for r in records] == [2, 4]
    for record in records:
        assert {
            "step",
            "epoch",
            "d_loss",
            "g_loss",
            "d_real",
            "d_fake",
            "images_per_sec",
            "loop_overhead",
            "time",
        } <= set(record)
        assert 0 <= record["d_real"] <= 1 and 0 <= record["d_fake"] <= 1
        assert record["images_per_sec"] > 0 and 0 <= record["loop_overhead"] < 1

    assert run.has_checkpoint()
    progress = json.loads(run.progress.read_text())
    assert progress["step"] == 4 and progress["dataset_size"] == 24
    assert abs(progress["epoch"] - progress["examples_seen"] / 24) < 1e-3

    assert Image.open(run.loss_curve).size[0] > 500
    grids = sorted(p.name for p in run.samples.glob("epoch_*.png"))
    assert grids == ["epoch_0001.png"]  # 4 steps x 8 images = 32 of 24: one epoch done
    latest = Image.open(run.samples / "latest.png")
    assert latest.height == 3 * (64 + 2) + 2  # one row per class, 32 px tiles scaled to 64


def test_metrics_reader_ignores_a_line_cut_by_a_kill(tmp_path):
    run = RunDir(tmp_path)
    run.append_metrics({"step": 1})
    with run.metrics.open("a") as stream:
        stream.write('{"step": 2, "d_lo')
    assert run.read_metrics() == [{"step": 1}]
    run.truncate_metrics(0)
    assert run.read_metrics() == []
