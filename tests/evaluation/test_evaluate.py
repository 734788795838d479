"""cgan-eval: the harness on a tiny model and judge; the ceiling path; metadata embedding."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from cgan.common.errors import EvaluationError  # noqa: E402
from cgan.evaluation.inception import fid_and_is, inception_score  # noqa: E402
from cgan.inference.generator import ImageGenerator  # noqa: E402


def run_eval(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cgan.evaluation.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_real_images_against_themselves_are_the_ceiling(tiny_judge, synthetic_reference):
    from cgan.evaluation.evaluate import Protocol, evaluate
    from cgan.evaluation.judge import load_judge

    judge = load_judge(tiny_judge)
    protocol = Protocol(samples_per_class=60, reference=str(synthetic_reference))
    result = evaluate(synthetic_reference, judge, protocol, real=True)
    assert result["kind"] == "real images" and result["samples"] == 180
    assert result["frechet_distance"] == pytest.approx(0.0, abs=1e-2)
    assert result["precision"] == 1.0 and result["recall"] == 1.0
    assert result["accuracy"] > 0.9  # the tiny judge knows the shapes' colours
    assert set(result["per_class"]) == {"blue-triangle", "green-square", "red-disc"}
    assert result["protocol"]["samples_per_class"] == 60
    assert result["fid_inception"] is None and "no Inception weights" in result["inception_note"]


@pytest.mark.slow
def test_model_evaluation_writes_results_and_embeds_them(
    tiny_judge, synthetic_reference, exported_model, tmp_path
):
    for suffix in (".onnx", ".md", ".png"):
        shutil.copy(exported_model.with_suffix(suffix), tmp_path / f"model{suffix}")
    model = tmp_path / "model.onnx"
    result = run_eval(
        str(model),
        "--judge",
        str(tiny_judge),
        "--reference",
        str(synthetic_reference),
        "--samples-per-class",
        "20",
        "--embed",
    )
    assert result.returncode == 0, result.stderr
    assert "accuracy" in result.stdout and "red-disc" in result.stdout
    saved = json.loads((tmp_path / "model.eval.json").read_text())
    assert saved["samples"] == 60 and saved["kind"] == "generated"
    assert 0 <= saved["accuracy"] <= 1 and saved["frechet_distance"] >= 0
    assert 0 <= saved["precision"] <= 1 and 0 <= saved["recall"] <= 1
    assert saved["protocol"]["feature_network"].startswith("cgan judge judge.weights.h5")
    info = ImageGenerator(model, provider="cpu").info
    assert info.metrics["frechet_distance"] == saved["frechet_distance"]
    assert info.metrics["protocol"]["samples_per_class"] == 20
    card = (tmp_path / "model.md").read_text()
    assert "| accuracy |" in card and "samples_per_class" in card
    red = saved["per_class"]["red-disc"]
    assert f"| red-disc | {red['accuracy']} | {red['frechet_distance']} |" in card
    # The same protocol gives the same numbers: every seed is pinned.
    again = run_eval(
        str(model),
        "--judge",
        str(tiny_judge),
        "--reference",
        str(synthetic_reference),
        "--samples-per-class",
        "20",
        "--json",
        "-o",
        str(tmp_path / "again.json"),
    )
    repeat = json.loads(again.stdout)
    assert repeat["frechet_distance"] == saved["frechet_distance"]


@pytest.mark.slow
def test_errors_are_one_line(tiny_judge, synthetic_reference, exported_model, tmp_path):
    cases = [
        ([], "give either a model .onnx or --real FOLDER"),
        ([str(exported_model), "--judge", str(tmp_path / "none.weights.h5")], "no judge at"),
        (
            [
                str(tmp_path / "missing.onnx"),
                "--judge",
                str(tiny_judge),
                "--reference",
                str(synthetic_reference),
            ],
            "does not exist",
        ),
    ]
    for args, fragment in cases:
        result = run_eval(*args)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and fragment in lines[0], result.stderr


@pytest.mark.slow  # needs a trained run or judge (a fixture of 10-16 s)
def test_labels_must_match_the_judge(tiny_judge, tmp_path):
    from cgan.evaluation.evaluate import real_samples
    from cgan.evaluation.judge import load_judge

    (tmp_path / "cat").mkdir()
    from PIL import Image

    Image.new("RGB", (32, 32)).save(tmp_path / "cat" / "a.png")
    with pytest.raises(EvaluationError, match="are not the judge's"):
        real_samples(tmp_path, load_judge(tiny_judge).labels, 5)


def test_inception_score_extremes_and_missing_weights(tmp_path):
    uniform = np.full((100, 10), 0.1)
    assert inception_score(uniform)[0] == pytest.approx(1.0)
    confident = np.eye(10)[np.arange(100) % 10]
    assert inception_score(confident, splits=1)[0] == pytest.approx(10.0, rel=1e-6)
    with pytest.raises(EvaluationError, match="no Inception weights file"):
        fid_and_is(
            np.zeros((2, 32, 32, 3), np.uint8),
            np.zeros((2, 32, 32, 3), np.uint8),
            tmp_path / "inception.weights.h5",
        )


@pytest.mark.slow
def test_shipped_judge_knows_cifar10(cifar10_dir):
    from cgan.evaluation import SHIPPED_JUDGE
    from cgan.evaluation.judge import load_judge
    from cgan.training.data import load_folder

    judge = load_judge(SHIPPED_JUDGE)
    assert judge.labels == sorted(judge.labels) and len(judge.labels) == 10
    test = load_folder(cifar10_dir / "test", 32)
    keep = np.concatenate([np.flatnonzero(test.labels == k)[:30] for k in range(10)])
    _, predicted = judge.features_and_predictions(test.images[keep])
    assert np.mean(predicted == test.labels[keep]) > 0.6  # reported: 0.769 on all 10,000
