"""The recipe study's options: the AC-GAN class head trains, exports and resumes exactly;
the CPU-time budget stops a run and carries over resumes."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from cgan.common.run_dir import RunDir  # noqa: E402
from cgan.training.config import load_config  # noqa: E402
from cgan.training.loop import train  # noqa: E402
from cgan.training.runtime import quiet_tensorflow  # noqa: E402

from .helpers import assert_same_training_state, checkpoint_state, tiny_config  # noqa: E402

quiet_tensorflow()


@pytest.mark.slow
def test_class_head_trains_exports_and_resumes(tmp_path):
    from cgan.export.exporter import export_run
    from cgan.inference.generator import ImageGenerator

    overrides = dict(aux_weight=1.0, steps=6)
    straight = tmp_path / "straight"
    train(tiny_config(**overrides), straight, resume=False, progress=False)
    records = RunDir(straight).read_metrics()
    assert all(np.isfinite(r["d_class"]) and np.isfinite(r["g_class"]) for r in records)
    assert records[0]["d_class"] > 0

    split = tmp_path / "split"
    train(tiny_config(**{**overrides, "steps": 4}), split, resume=False, progress=False)
    config = load_config(split)
    assert config.aux_weight == 1.0
    config.steps = 6
    train(config, split, resume=True, progress=False)
    expected = assert_same_training_state(straight, split)
    plain = tmp_path / "plain"  # the same run without the head has fewer variables
    train(tiny_config(steps=1), plain, resume=False, progress=False)
    assert len(expected) > len(checkpoint_state(plain))

    result = export_run(straight, tmp_path / "aux.onnx", card=False)
    assert max(result.parity.values()) < 1e-4
    images = ImageGenerator(result.path).generate([0, 1, 2], [0, 0, 0])
    assert images.shape == (3, 32, 32, 3)


@pytest.mark.slow
def test_class_head_is_structural_on_resume(tmp_path):
    from cgan.training.cli import main

    run_dir = tmp_path / "run"
    train(tiny_config(steps=2, checkpoint_every=2), run_dir, resume=False, progress=False)
    assert main(["--run-dir", str(run_dir), "--resume", "--aux-weight", "1.0", "--quiet"]) == 2


@pytest.mark.slow
def test_class_head_weight_may_change_on_resume_but_not_to_zero(tmp_path, capsys):
    from cgan.training.cli import main

    run_dir = tmp_path / "run"
    train(
        tiny_config(aux_weight=1.0, steps=2, checkpoint_every=2),
        run_dir,
        resume=False,
        progress=False,
    )
    assert main(["--run-dir", str(run_dir), "--resume", "--aux-weight", "0", "--quiet"]) == 2
    assert "class head cannot be added or removed" in capsys.readouterr().err
    assert load_config(run_dir).aux_weight == 1.0
    args = ["--run-dir", str(run_dir), "--resume", "--aux-weight", "2.5", "--steps", "3"]
    assert main([*args, "--quiet"]) == 0
    assert load_config(run_dir).aux_weight == 2.5
    assert json.loads((run_dir / "progress.json").read_text())["step"] == 3


@pytest.mark.slow
def test_class_pull_on_the_generator_alone_can_be_scaled(tmp_path):
    """--aux-g-scale changes G's update only: after one step from the same start, D's
    weights are those of the unscaled run and G's are not."""
    states = {}
    for scale in (1.0, 0.0):
        run_dir = tmp_path / f"scale-{scale}"
        config = tiny_config(aux_weight=2.0, aux_g_scale=scale, steps=1, checkpoint_every=1)
        train(config, run_dir, resume=False, progress=False)
        assert load_config(run_dir).aux_g_scale == scale
        states[scale] = checkpoint_state(run_dir)
    full, none = states[1.0], states[0.0]
    # Trainable weights are saved under their optimiser, so compare the optimisers' state too.
    d_names = [n for n in full if n.startswith(("discriminator/", "d_optimizer/"))]
    g_names = [n for n in full if n.startswith(("ema_generator/", "g_optimizer/"))]
    assert d_names and g_names
    for name in d_names:
        np.testing.assert_array_equal(none[name], full[name], err_msg=name)
    assert any(not np.allclose(none[name], full[name]) for name in g_names)


def test_dcgan_baseline_on_the_default_preset_drops_only_the_implied_class_head():
    from cgan.common.errors import TrainingError
    from cgan.training.config import make_config, validate_config

    baseline = make_config("cifar10", {"arch": "dcgan"})
    validate_config(baseline)
    assert (baseline.arch, baseline.aux_weight) == ("dcgan", 0.0)
    assert make_config("cifar10", {}).aux_weight == 1.0
    with pytest.raises(TrainingError, match="sngan arch only"):
        validate_config(make_config("cifar10", {"arch": "dcgan", "aux_weight": 1.0}))


@pytest.mark.slow
def test_cpu_budget_stops_the_run_and_adds_up_over_resumes(tmp_path):
    run_dir = tmp_path / "run"
    first = train(
        tiny_config(steps=10_000, cpu_minutes=0.05), run_dir, resume=False, progress=False
    )
    progress = json.loads((run_dir / "progress.json").read_text())
    assert 0 < first.step < 10_000 and first.stopped_by is None
    assert progress["cpu_hours"] * 60 >= 0.05
    config = load_config(run_dir)
    config.cpu_minutes = progress["cpu_hours"] * 60 + 0.2
    second = train(config, run_dir, resume=True, progress=False)
    after = json.loads((run_dir / "progress.json").read_text())
    assert second.step > first.step
    # the last checkpoint may fall a step before the budget ran out, never far after it
    used = after["cpu_hours"] * 60
    assert progress["cpu_hours"] * 60 + 0.1 < used < config.cpu_minutes + 1.0
    minutes = [r["cpu_minutes"] for r in RunDir(run_dir).read_metrics()]
    assert minutes == sorted(minutes)  # one clock across both sessions


def _learning_rates(run_dir) -> tuple[float, float]:
    state = checkpoint_state(run_dir)
    g_rate = next(v for k, v in state.items() if k.startswith("g_optimizer/_learning_rate/"))
    d_rate = next(v for k, v in state.items() if k.startswith("d_optimizer/_learning_rate/"))
    return float(g_rate), float(d_rate)


def test_learning_rate_decay_is_linear_to_zero_and_ends_the_run():
    config = tiny_config(steps=100, lr_decay_start=10, lr_decay_steps=40)
    scales = [config.learning_rate_scale(step) for step in (0, 10, 20, 30, 49, 50, 60)]
    assert scales == pytest.approx([1.0, 1.0, 0.75, 0.5, 0.025, 0.0, 0.0])
    assert config.final_step == 50
    assert tiny_config(steps=30, lr_decay_start=10, lr_decay_steps=40).final_step == 30
    assert tiny_config(steps=30).learning_rate_scale(29) == 1.0


@pytest.mark.slow
def test_learning_rate_decay_trains_and_resumes_exactly(tmp_path):
    overrides = dict(steps=100, g_lr=2e-4, d_lr=4e-4, lr_decay_start=2, lr_decay_steps=4)
    straight = tmp_path / "straight"
    result = train(tiny_config(**overrides), straight, resume=False, progress=False)
    assert result.step == 6  # the rates reach zero at step 2 + 4
    # the last update (after step 5) ran at a quarter of the rates
    assert _learning_rates(straight) == pytest.approx((0.5e-4, 1e-4))

    split = tmp_path / "split"
    train(tiny_config(**{**overrides, "steps": 4}), split, resume=False, progress=False)
    config = load_config(split)
    config.steps = 100
    train(config, split, resume=True, progress=False)
    assert_same_training_state(straight, split)


@pytest.mark.slow
def test_a_resume_trains_at_the_learning_rates_it_is_given(tmp_path):
    from cgan.training.cli import main

    run_dir = tmp_path / "run"
    train(tiny_config(steps=2, g_lr=2e-4, d_lr=4e-4), run_dir, resume=False, progress=False)
    assert _learning_rates(run_dir) == pytest.approx((2e-4, 4e-4))
    rates = ["--g-lr", "1e-4", "--d-lr", "3e-4", "--steps", "3", "--quiet"]
    assert main(["--run-dir", str(run_dir), "--resume", *rates]) == 0
    assert _learning_rates(run_dir) == pytest.approx((1e-4, 3e-4))
    with pytest.raises(SystemExit) as refused:
        main(["--run-dir", str(run_dir), "--resume", "--lr-decay-steps", "-1"])
    assert refused.value.code == 2
