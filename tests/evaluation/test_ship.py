"""The shipped model is replaced only by a candidate that measures better, same protocol."""

from __future__ import annotations

import json

import pytest

import cgan.evaluation.ship as ship
from tests.hostile_models import hostile_model, save

PROTOCOL = {
    "samples_per_class": 1000,
    "first_seed": 0,
    "truncation": None,
    "reference": "../shared/datasets/cifar10/test",
    "feature_network": "judge",
    "knn_k": 3,
}


def evaluated(accuracy: float, frechet: float, recall: float = 0.5, **protocol) -> dict:
    return {
        "accuracy": accuracy,
        "frechet_distance": frechet,
        "precision": 0.9,
        "recall": recall,
        "protocol": {**PROTOCOL, **protocol},
    }


@pytest.mark.parametrize(
    "candidate, replace",
    [
        (evaluated(0.50, 9.0), True),
        (evaluated(0.47, 9.7), False),  # equal is not better
        (evaluated(0.47, 9.0), True),
        (evaluated(0.55, 9.8), False),  # better accuracy, worse distance
        (evaluated(0.40, 5.0), False),
        (evaluated(0.60, 5.0, samples_per_class=250), False),  # another protocol
    ],
)
def test_decide(candidate, replace):
    decided, why = ship.decide(candidate, evaluated(0.47, 9.7))
    assert decided is replace
    assert ("protocols differ" in why) is (candidate["protocol"] != PROTOCOL)


SHIPPED_MISSING_THE_DISTANCE = evaluated(0.703, 4.45, recall=0.63)  # 3 targets of 4


@pytest.mark.parametrize(
    "candidate, replace",
    [
        (evaluated(0.69, 3.90, recall=0.61), True),  # all four met, at less accuracy
        (evaluated(0.75, 3.65, recall=0.59), True),  # as many met, better on both
        (evaluated(0.70, 3.65, recall=0.59), False),  # as many met, less accuracy
        (evaluated(0.71, 4.40, recall=0.62), True),  # as many met, better on both
        (evaluated(0.71, 4.40, recall=0.58), False),  # better on both, one target fewer
        (evaluated(0.69, 3.90, recall=0.61, samples_per_class=250), False),
    ],
)
def test_decide_counts_the_targets_first(candidate, replace):
    decided, why = ship.decide(candidate, SHIPPED_MISSING_THE_DISTANCE)
    assert decided is replace
    if "protocols differ" not in why:
        assert why.startswith(f"targets met 3 -> {ship.targets_met(candidate)} of 4")


def test_targets_met_ignores_figures_that_are_not_numbers():
    assert ship.targets_met(evaluated(0.60, 4.0, recall=0.60)) == 4  # the bounds are met
    assert ship.targets_met({"accuracy": True, "frechet_distance": "3", "recall": None}) == 0


def _model(path, metrics):
    meta = {} if metrics is None else {"metrics": json.dumps(metrics)}
    return save(hostile_model(metadata=meta), path)


def test_main_replaces_only_when_better(tmp_path, monkeypatch, capsys):
    (tmp_path / "shipped").mkdir()
    shipped = _model(tmp_path / "shipped" / "cifar10.onnx", evaluated(0.47, 9.7))
    monkeypatch.setattr(ship, "shipped_model_path", lambda: shipped)
    worse = _model(tmp_path / "worse.onnx", evaluated(0.40, 12.0))
    assert ship.main([str(worse)]) == 0
    assert "kept the shipped model" in capsys.readouterr().out
    assert shipped.read_bytes() != worse.read_bytes()

    better = _model(tmp_path / "better.onnx", evaluated(0.55, 8.0))
    (tmp_path / "better.md").write_text("the candidate's card")
    assert ship.main([str(better), "--dry-run"]) == 0
    assert shipped.read_bytes() != better.read_bytes()
    assert ship.main([str(better)]) == 0
    assert "shipped" in capsys.readouterr().out
    assert shipped.read_bytes() == better.read_bytes()
    card = shipped.with_suffix(".md").read_text()  # written anew for the shipped file
    assert card.startswith("# cifar10\n") and "better" not in card and "| accuracy | 0.55 |" in card
    assert shipped.with_suffix(".png").is_file()


def test_candidate_without_figures_is_one_line(tmp_path, capsys):
    bare = _model(tmp_path / "bare.onnx", None)
    assert ship.main([str(bare)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "carries no evaluation" in err[0]


@pytest.mark.parametrize(
    "field, value",
    [
        ("accuracy", "0.9"),
        ("accuracy", [0.9]),
        ("accuracy", None),
        ("accuracy", True),
        ("frechet_distance", float("nan")),
        ("frechet_distance", 10**400),
        ("precision", "high"),
        ("recall", {"value": 0.7}),
        ("protocol", "pinned"),
    ],
)
def test_candidate_figures_of_the_wrong_type_are_one_line(
    field: str, value: object, tmp_path, monkeypatch, capsys
):
    """A model's embedded evaluation is input like any other: a figure that is no number
    (or a protocol that is no object) names its field, not a TypeError from decide()."""
    (tmp_path / "shipped").mkdir()
    shipped = _model(tmp_path / "shipped" / "cifar10.onnx", evaluated(0.47, 9.7))
    monkeypatch.setattr(ship, "shipped_model_path", lambda: shipped)
    before = shipped.read_bytes()
    hostile = {**evaluated(0.55, 8.0), field: value}
    candidate = _model(tmp_path / "candidate.onnx", hostile)
    assert ship.main([str(candidate), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"evaluation's {field} is" in err[0], err
    assert shipped.read_bytes() == before


def test_a_null_precision_still_decides(tmp_path, monkeypatch, capsys):
    """precision and recall are optional: null reads as missing (it meets no target) and
    prints as nan, not a TypeError in the summary."""
    (tmp_path / "shipped").mkdir()
    shipped = _model(tmp_path / "shipped" / "cifar10.onnx", evaluated(0.47, 9.7))
    monkeypatch.setattr(ship, "shipped_model_path", lambda: shipped)
    candidate = _model(tmp_path / "candidate.onnx", {**evaluated(0.55, 8.0), "precision": None})
    assert ship.main([str(candidate), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("kept the shipped model: targets met 1 -> 0 of 4")
    assert "precision 0.9000 -> nan" in out


def test_the_shipped_model_is_no_candidate_of_itself(tmp_path, monkeypatch, capsys):
    """A candidate that is the shipped file (here through a link) would be copied onto
    itself and its card rewritten: refused in one line, the file left as it was."""
    (tmp_path / "shipped").mkdir()
    shipped = _model(tmp_path / "shipped" / "cifar10.onnx", evaluated(0.47, 9.7))
    monkeypatch.setattr(ship, "shipped_model_path", lambda: shipped)
    before = shipped.read_bytes()
    link = tmp_path / "candidate.onnx"
    link.symlink_to(shipped)
    assert ship.main([str(link)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is the shipped model itself" in err[0]
    assert shipped.read_bytes() == before and not shipped.with_suffix(".md").exists()
