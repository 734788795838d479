"""Dashboard fixtures: a runs folder and a models folder built from the shared tiny runs,
the environment that points the app at them, and a recorder of what the app serves."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pytest

from cgan.dashboard.launch import APP
from cgan.dashboard.loading import MODELS_ENV
from cgan.dashboard.runs import RUNS_ENV
from cgan.inference.default_model import ENV_VAR as MODEL_ENV


@dataclass(frozen=True)
class DashboardFiles:
    model: Path  # what CGAN_MODEL points at
    models: Path  # CGAN_MODELS_DIR
    runs: Path  # CGAN_RUNS_DIR
    empty: Path  # an empty folder, for "nothing there yet"

    def env(self) -> dict[str, str]:
        return {MODEL_ENV: str(self.model), MODELS_ENV: str(self.models), RUNS_ENV: str(self.runs)}


class Served(NamedTuple):
    data: bytes
    mimetype: str
    filename: str | None


def _measured_study(folder: Path) -> None:
    """Two real tiny runs that measured themselves (--eval-every, --keep-best fd), one folder
    down as a study's variants are, to overlay and compare."""
    from cgan.training.loop import train
    from tests.training.helpers import tiny_config

    for name, lr in (("slow", 1e-4), ("fast", 1e-3)):
        config = tiny_config(
            steps=8, eval_every=4, eval_samples=4, keep_best="fd", g_lr=lr, d_lr=lr
        )
        train(config, folder / name, resume=False, progress=False)


@pytest.fixture(scope="session")
def dashboard_files(tiny_runs, exported_model, tmp_path_factory) -> DashboardFiles:
    root = tmp_path_factory.mktemp("dashboard")
    runs = root / "runs"
    for arch, run in tiny_runs.items():
        shutil.copytree(run, runs / arch, ignore=shutil.ignore_patterns("checkpoints"))
    samples = runs / "sngan" / "samples"
    shutil.copy(samples / "epoch_0001.png", samples / "epoch_0002.png")  # two epochs to slide
    (runs / "notes").mkdir()  # a folder that is not a run
    (runs / "notes" / "readme.txt").write_text("not a run\n")
    _measured_study(runs / "study")
    models = root / "models"
    (models / "more").mkdir(parents=True)
    shutil.copy(exported_model, models / "tiny.onnx")
    shutil.copy(exported_model, models / "more" / "tiny-copy.onnx")
    (models / ".tiny.onnx.123.tmp.onnx").write_bytes(b"half-written")  # hidden: never listed
    empty = root / "empty"
    empty.mkdir()
    return DashboardFiles(models / "tiny.onnx", models, runs, empty)


@pytest.fixture
def dashboard_env(dashboard_files, monkeypatch) -> DashboardFiles:
    for name, value in dashboard_files.env().items():
        monkeypatch.setenv(name, value)
    return dashboard_files


@pytest.fixture
def app(dashboard_env):
    """The app under AppTest (in this process, so monkeypatches reach it); not yet run."""
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(str(APP), default_timeout=60)


@pytest.fixture
def media(monkeypatch) -> dict[str, Served]:
    """file id -> what the app handed Streamlit for every image and download it shows."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    served: dict[str, Served] = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def record(self, path_or_data, mimetype, kind, filename=None):
        file_id = original(self, path_or_data, mimetype, kind, filename)
        data = path_or_data if isinstance(path_or_data, bytes) else Path(path_or_data).read_bytes()
        served[file_id] = Served(data, mimetype, filename)
        return file_id

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", record)
    return served
