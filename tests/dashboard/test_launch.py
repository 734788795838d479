"""`cgan-dashboard`: it serves the packaged app file, with no sys.path edits, and gives
Streamlit the repository's server options as defaults that any user setting overrides."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

import cgan.dashboard
from cgan.dashboard import launch

REPO = Path(__file__).resolve().parents[2]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


@pytest.fixture
def elsewhere(tmp_path, monkeypatch) -> Path:
    """A working folder and a home without any Streamlit config or variable."""
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    for name in [name for name in os.environ if name.startswith("STREAMLIT_")]:
        monkeypatch.delenv(name)
    return tmp_path


def test_the_launcher_serves_the_packaged_app():
    package = Path(cgan.dashboard.__file__).resolve().parent
    assert launch.APP.is_file()
    assert launch.APP.parent == package
    pages = re.findall(r'st\.Page\("([^"]+)"', launch.APP.read_text())
    assert len(pages) == 4 and all((package / page).is_file() for page in pages)


def test_no_module_edits_sys_path():
    package = Path(cgan.dashboard.__file__).resolve().parent
    for module in package.rglob("*.py"):
        assert "sys.path" not in module.read_text(), module


def test_main_runs_streamlit_on_the_app_with_the_extra_arguments(elsewhere, monkeypatch):
    from streamlit.web import cli

    calls = []
    monkeypatch.setattr(cli, "main", lambda args, prog_name: calls.append(args))
    launch.main(["--server.port", "8600", "--", "--app-arg"])
    (args,) = calls
    assert args[:2] == ["run", str(launch.APP)]
    assert args[-4:] == ["--server.port", "8600", "--", "--app-arg"]
    assert "--server.headless=true" in args and "--client.toolbarMode=viewer" in args


def test_defaults_apply_where_nothing_sets_them(elsewhere):
    assert launch.default_flags([]) == [
        "--server.headless=true",
        "--browser.gatherUsageStats=false",
        "--client.toolbarMode=viewer",
    ]


def test_user_settings_win_over_the_defaults(elsewhere, monkeypatch):
    (elsewhere / "home" / ".streamlit").mkdir()
    (elsewhere / "home" / ".streamlit" / "config.toml").write_text("[server]\nheadless = false\n")
    assert launch.default_flags([]) == [
        "--browser.gatherUsageStats=false",
        "--client.toolbarMode=viewer",
    ]
    (elsewhere / ".streamlit").mkdir()
    (elsewhere / ".streamlit" / "config.toml").write_text("[browser]\ngatherUsageStats = true\n")
    monkeypatch.setenv("STREAMLIT_CLIENT_TOOLBAR_MODE", "developer")
    assert launch.default_flags([]) == []


def test_arguments_for_the_app_are_not_streamlit_settings(elsewhere):
    flags = launch.default_flags(["--server.headless", "false", "--", "--client.toolbarMode=x"])
    assert flags == ["--browser.gatherUsageStats=false", "--client.toolbarMode=viewer"]


def test_in_the_repository_its_config_decides(monkeypatch):
    monkeypatch.chdir(REPO)
    assert launch.default_flags([], environ={}) == []


def test_the_repository_config_holds_the_same_options():
    data = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    options = {
        f"{section}.{key}": value for section, table in data.items() for key, value in table.items()
    }
    assert options == launch.SERVER_DEFAULTS
