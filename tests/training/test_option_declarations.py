"""Training options are declared once, as Option metadata on TrainConfig's fields: the
parser, validation and the resume rule come from there."""

from __future__ import annotations

import dataclasses

import pytest

from cgan.common.errors import TrainingError
from cgan.training.cli import build_parser
from cgan.training.config import (
    OPTION,
    STRUCTURAL_FIELDS,
    TrainConfig,
    check_resumable,
    options,
    validate_config,
)

PARSER_OWN = {"help", "run_dir", "resume", "preset", "quiet"}


def test_every_field_is_declared_with_an_option():
    undeclared = [f.name for f in dataclasses.fields(TrainConfig) if OPTION not in f.metadata]
    assert not undeclared, f"declare these with option(...): {undeclared}"


def test_the_parser_has_exactly_the_fields_with_help():
    dests = {action.dest for action in build_parser()._actions}
    with_help = {name for name, rule in options().items() if rule.help is not None}
    assert dests - PARSER_OWN == with_help - {"preset"}
    internal = {name for name, rule in options().items() if rule.help is None}
    assert internal.isdisjoint(dests - {"preset"})


def _outside(rule) -> list:
    """Values just outside an Option's bounds."""
    values = []
    for bound, step in ((rule.low, -1), (rule.above, 0), (rule.high, 1), (rule.below, 0)):
        if bound is not None:
            values.append(bound + step)
    return values


BOUNDED = [
    name
    for name, rule in options().items()
    if rule.help and any(b is not None for b in (rule.low, rule.high, rule.above, rule.below))
]


@pytest.mark.parametrize("name", BOUNDED)
def test_bounds_hold_in_the_parser_and_in_a_config_file_alike(name, capsys):
    rule = options()[name]
    default = getattr(TrainConfig(), name)
    flag = "--" + name.replace("_", "-")
    for value in _outside(rule):
        value = type(default)(value)
        with pytest.raises(SystemExit):
            build_parser().parse_args(["--run-dir", "r", flag, str(value)])
        parser_line = capsys.readouterr().err.strip()
        assert len(parser_line.splitlines()) == 1
        with pytest.raises(TrainingError) as refused:
            validate_config(dataclasses.replace(TrainConfig(), **{name: value}))
        problem = str(refused.value).split(": ", 1)[1]
        assert problem in parser_line, (parser_line, problem)
    accepted = build_parser().parse_args(["--run-dir", "r", flag, str(default)])
    assert getattr(accepted, name) == default


def test_structural_fields_come_from_the_declarations():
    assert {"arch", "resolution", "labels", "precision"} <= set(STRUCTURAL_FIELDS)
    assert "steps" not in STRUCTURAL_FIELDS and "g_lr" not in STRUCTURAL_FIELDS
    # The data may move; its classes are checked against the run's labels on load
    # (test_resume.py: test_a_resume_reads_the_same_classes_from_another_copy).
    assert "data" not in STRUCTURAL_FIELDS
    saved = TrainConfig(labels=["a", "b"])
    check_resumable(saved, {"steps": 10, "g_lr": 1e-3})
    for name in STRUCTURAL_FIELDS:
        if name == "labels":
            continue
        with pytest.raises(TrainingError, match=f"{name}="):
            check_resumable(saved, {name: "something else"})


def test_an_empty_choice_is_spelled_none_so_a_resume_can_turn_it_off(tmp_path, capsys):
    from cgan.training.cli import resolve_config
    from cgan.training.config import save_config

    saved = TrainConfig(labels=["a", "b"], keep_best="fd", eval_every=10)
    save_config(saved, tmp_path)
    args = build_parser().parse_args(
        ["--run-dir", str(tmp_path), "--resume", "--keep-best", "none"]
    )
    assert resolve_config(args)[0].keep_best == ""
    kept = build_parser().parse_args(["--run-dir", str(tmp_path), "--resume"])
    assert resolve_config(kept)[0].keep_best == "fd"
    assert build_parser().parse_args(["--run-dir", "r", "--keep-best", ""]).keep_best == ""
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--run-dir", "r", "--keep-best", "best"])
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "choose one of none,fd,accuracy,precision,recall" in err


def test_synthetic_sizes_a_config_file_may_ask_for_are_what_the_shapes_can_make() -> None:
    """A hand-edited config.toml must not ask for more classes than there are colours (one
    line naming the key), nor for 11 GiB of shapes: refused where the set would be made,
    before anything is allocated, so an old run's export never depends on it."""
    import tracemalloc

    from cgan.training.data import load_dataset
    from cgan.training.shapes import MAX_CLASSES

    too_many = TrainConfig(data="synthetic", synthetic_classes=MAX_CLASSES + 1)
    with pytest.raises(TrainingError, match=f"synthetic_classes = '{MAX_CLASSES + 1}'"):
        validate_config(too_many)
    validate_config(TrainConfig(data="synthetic", synthetic_classes=MAX_CLASSES))
    validate_config(TrainConfig(data="synthetic", resolution=64, synthetic_per_class=100_000))
    tracemalloc.start()
    try:
        with pytest.raises(TrainingError, match=r"11\.4 GiB in memory, more than 512 MiB"):
            load_dataset("synthetic", 64, synthetic_classes=10, synthetic_per_class=100_000)
        assert tracemalloc.get_traced_memory()[1] < 50 * 2**20
    finally:
        tracemalloc.stop()
    assert len(load_dataset("synthetic", 32, synthetic_classes=2, synthetic_per_class=3)) == 6
