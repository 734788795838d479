"""The installed product: one import name (`cgan`), from a wheel, away from the checkout.

The wheel is built offline from the files git tracks (no build isolation, no registry),
installed without its dependencies into a fresh venv whose only other path is the dev
venv's site-packages (for numpy, onnxruntime, streamlit...), and used from a folder
outside the repository, so nothing can be imported from the checkout by accident.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

STAGES = ("common", "scraping", "training", "evaluation", "export", "inference", "dashboard")


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_package_folder_is_listed_under_the_cgan_name():
    setuptools = _pyproject()["tool"]["setuptools"]
    on_disk = {
        "cgan." + ".".join(init.parent.relative_to(ROOT).parts)
        for stage in STAGES
        for init in (ROOT / stage).rglob("__init__.py")
    }
    assert set(setuptools["packages"]) == on_disk
    assert setuptools["package-dir"] == {f"cgan.{stage}": stage for stage in STAGES}
    for script, target in _pyproject()["project"]["scripts"].items():
        assert target.startswith("cgan."), script


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv with the wheel installed; returns its python."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout to know the tracked files")
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (entry.decode() for entry in listed)):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    build = [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", "dist"]
    subprocess.run([*build, str(source)], cwd=work, check=True, timeout=300)
    (wheel,) = (work / "dist").glob("cgan_label2image-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = [*pip, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)]
    subprocess.run(install, check=True, timeout=300)
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # Third-party packages from the dev venv: a plain path, so its editable hook stays off.
    (Path(site) / "dev_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def _run(installed: Path, *command: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CGAN_MODEL")}
    return subprocess.run(
        list(command), cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_cgan_infer_from_the_wheel_outside_the_repo(installed, tmp_path):
    cgan_infer = installed.parent / "cgan-infer"
    result = _run(installed, str(cgan_infer), "--label", "dog", "--seeds", "0-1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    written = [Path(line) for line in result.stdout.split()]
    assert len(written) == 2
    assert all((tmp_path / path).is_file() for path in written)


def test_the_installed_packages_come_from_the_wheel_not_the_checkout(installed, tmp_path):
    code = (
        "import sys, cgan.inference, cgan.dashboard.sidebar, cgan.dashboard.launch as launch;"
        "from cgan.inference.default_model import shipped_model_path;"
        "print(cgan.inference.__file__); print(launch.APP); print(shipped_model_path());"
        "print('tensorflow' in sys.modules)"
    )
    result = _run(installed, str(installed), "-c", code, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    package, app, model, tensorflow = result.stdout.split("\n")[:4]
    venv = installed.parent.parent
    for path in (package, app, model):
        assert Path(path).is_relative_to(venv), path
        assert Path(path).is_file(), path
    assert tensorflow == "False"
