"""A run directory holds everything a person or a later stage needs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
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


def test_metrics_lines_that_are_not_utf8_or_json_are_skipped(tmp_path: Path) -> None:
    """A damaged byte or a hostile line costs that line, not the resume that reads them."""
    run = RunDir(tmp_path)
    run.append_metrics({"step": 1})
    with run.metrics.open("ab") as stream:
        stream.write(b'{"step": 2, "d_loss": "\xff"}\n' + b"[" * 100_000 + b"\n")
    run.append_metrics({"step": 3})
    assert run.read_metrics() == [{"step": 1}, {"step": 3}]


@pytest.mark.parametrize("content", [b"[]", b"\xff\xff", b'"step"', b"[" * 100_000, b"{"])
def test_a_damaged_progress_file_reads_as_no_record(tmp_path: Path, content: bytes) -> None:
    """The exporter and a resume fall back to the metrics line or an estimate, never a
    traceback (a list, bytes that are not UTF-8, nesting deeper than Python's stack)."""
    run = RunDir(tmp_path)
    run.progress.write_bytes(content)
    assert run.read_progress() == {}


def test_a_loss_curve_leaves_out_records_without_the_losses(tmp_path: Path) -> None:
    """A hand-edited metrics line such as {"step": 1} must not fail the run at its end."""
    from cgan.training.plots import save_loss_curve

    whole = {"d_loss": 1.0, "g_loss": 2.0, "d_real": 0.6, "d_fake": 0.4}
    records = [{"step": 1}, {"step": 2, **whole, "d_fake": "x"}, {"step": 3, **whole}]
    save_loss_curve(records, tmp_path / "curve.png")
    assert Image.open(tmp_path / "curve.png").size[0] > 500
    save_loss_curve([{"step": 1}, {"step": True, **whole}], tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()


def test_labels_that_cannot_name_files_are_refused_when_a_config_is_loaded(
    tmp_path: Path,
) -> None:
    """A hand-edited label such as 'a/../b' would be exported into a model that cgan-infer
    refuses: training and export both load configs here, so both stop with one line."""
    from cgan.common.errors import TrainingError
    from cgan.training.config import save_config

    from .helpers import tiny_config

    save_config(tiny_config(labels=["blue", "a/../b"]), tmp_path)
    with pytest.raises(TrainingError) as refused:
        load_config(tmp_path)
    assert "'a/../b' is not usable: it holds a path separator" in str(refused.value)
    assert str(refused.value).startswith(str(tmp_path / "config.toml"))
