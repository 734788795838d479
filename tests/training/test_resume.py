"""A run stopped and resumed continues exactly where an uninterrupted run would be."""

from __future__ import annotations

import pytest

pytest.importorskip("tensorflow")

from cgan.common.run_dir import RunDir  # noqa: E402
from cgan.training.config import load_config  # noqa: E402
from cgan.training.loop import train  # noqa: E402
from cgan.training.runtime import quiet_tensorflow  # noqa: E402

from .helpers import assert_same_training_state, tiny_config  # noqa: E402

quiet_tensorflow()


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["sngan", "dcgan"])
def test_stop_and_resume_matches_uninterrupted_run(tmp_path, arch):
    overrides = dict(arch=arch, diffaugment="translation,color,cutout", steps=8)
    straight = tmp_path / "straight"
    train(tiny_config(**overrides), straight, resume=False, progress=False)

    split = tmp_path / "split"
    first = train(tiny_config(**{**overrides, "steps": 5}), split, resume=False, progress=False)
    assert first.step == 5
    config = load_config(split)
    config.steps = 8
    second = train(config, split, resume=True, progress=False)
    assert second.step == 8

    expected = assert_same_training_state(straight, split)
    assert any("ema_generator" in name for name in expected)
    assert any("optimizer" in name for name in expected)
    steps = [r["step"] for r in RunDir(split).read_metrics()]
    assert steps == sorted(set(steps)) and steps[-1] == 8
