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


def test_a_resume_reads_the_same_classes_from_another_copy(tmp_path):
    """The data may move between sessions (the long run's state travels in the repository,
    the data does not); only a copy with the run's classes is taken."""
    from cgan.common.errors import TrainingError
    from cgan.training.cli import build_parser, resolve_config
    from cgan.training.config import save_config
    from cgan.training.loop import load_training_data

    from .helpers import write_image

    folders = {"first": ("cat", "dog"), "moved": ("cat", "dog"), "other": ("cat", "fox")}
    for folder, classes in folders.items():
        for name in classes:
            for k in range(4):
                write_image(tmp_path / folder / name / f"{k}.png", colour=(40 * k, 90, 160))
    run = tmp_path / "run"
    run.mkdir()
    config = tiny_config(data=str(tmp_path / "first"))
    config.labels = ["cat", "dog"]
    save_config(config, run)
    (tmp_path / "first").rename(tmp_path / "gone")

    def resumed(*options: str):
        args = build_parser().parse_args(["--run-dir", str(run), "--resume", *options])
        return load_training_data(resolve_config(args)[0])

    with pytest.raises(TrainingError, match="resume with --data PATH to a copy of its 2 classes"):
        resumed()
    data = resumed("--data", str(tmp_path / "moved"))
    assert data.names == ["cat", "dog"] and len(data) == 8
    with pytest.raises(TrainingError, match=r"labels \['cat', 'fox'\] differ from the run's"):
        resumed("--data", str(tmp_path / "other"))
