"""Every command in README.md's shell blocks is one that works: `make` targets exist and
expand (`make -n`), and each `cgan-*` command line parses with that command's own parser, so
an option renamed or removed in the code fails here, not in a newcomer's terminal. The
commands themselves run elsewhere: `make demo`/`make test` in CI, the CLIs in their stages'
tests."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    """Each command of README.md's ```bash blocks, comments dropped, one per line (a line
    of several commands spaced apart, like `cgan-infer --list-labels   cgan-infer --info`,
    gives each)."""
    commands, inside = [], False
    for line in (ROOT / "README.md").read_text().splitlines():
        if line.startswith("```"):
            inside = line.strip() == "```bash"
            continue
        text = line.split("  #", 1)[0].split("# ", 1)[0] if "#" in line else line
        if inside and text.strip():
            parts = [p for p in text.strip().split("   ") if p.strip()]
            commands += [p.strip() for p in parts]
    return commands


def _parsers() -> dict[str, Callable[[list[str]], object]]:
    from cgan.evaluation.cli import build_parser as eval_parser
    from cgan.export.cli import build_parser as export_parser
    from cgan.inference.cli import build_parser as infer_parser
    from cgan.scraping.cli import build_parser, crawl_parser, verify_parser
    from cgan.training.cli import build_parser as train_parser

    def scrape(args: list[str]) -> object:
        sub = {"build": build_parser, "verify": verify_parser}
        if args and args[0] in sub:
            return sub[args[0]]().parse_args(args[1:])
        return crawl_parser().parse_args(args[1:] if args[:1] == ["crawl"] else args)

    return {
        "cgan-train": lambda a: train_parser().parse_args(a),
        "cgan-export": lambda a: export_parser().parse_args(a),
        "cgan-infer": lambda a: infer_parser().parse_args(a),
        "cgan-eval": lambda a: eval_parser().parse_args(a),
        "cgan-scrape": scrape,
    }


COMMANDS = readme_commands()


def test_the_readme_has_its_two_commands_near_the_top():
    assert COMMANDS[:2] == ["make demo", "make test"]
    assert len(COMMANDS) > 20


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.startswith("make ")])
def test_make_commands_exist(command):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    result = subprocess.run(
        ["make", "-n", *shlex.split(command)[1:]], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "command", [c for c in COMMANDS if Path(shlex.split(c)[0]).name.startswith("cgan-")]
)
def test_cli_commands_parse(command, capsys):
    pytest.importorskip("tensorflow")
    pytest.importorskip("scrapy")
    words = shlex.split(command)
    program = Path(words[0]).name
    parsers = _parsers()
    assert program in parsers, f"{program}: no parser known to this test"
    if words[1:] == ["--help"]:
        with pytest.raises(SystemExit) as done:
            parsers[program](words[1:])
        assert done.value.code == 0
        return
    try:
        parsers[program](words[1:])
    except SystemExit:
        pytest.fail(f"{command!r} does not parse: {capsys.readouterr().err.strip()}")
