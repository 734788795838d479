"""cgan-eval: the harness on a tiny model and judge; the ceiling path; metadata embedding."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

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


def _one_line_refusal(result: subprocess.CompletedProcess, fragment: str) -> None:
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.stderr


@pytest.fixture
def model_and_reference(tmp_path) -> tuple:
    """A crafted two-class model (cat, dog) and a reference folder of those classes."""
    from PIL import Image

    from tests.hostile_models import hostile_model, save

    model = save(hostile_model(), tmp_path / "m.onnx")
    for label in ("cat", "dog"):
        (tmp_path / "ref" / label).mkdir(parents=True)
        for index in range(3):
            Image.new("RGB", (32, 32), (index * 80, 0, 0)).save(
                tmp_path / "ref" / label / f"{index}.png"
            )
    return model, tmp_path / "ref"


@pytest.mark.parametrize(
    "output, extra, fragment",
    [
        ("m.onnx", [], "is the model"),
        ("m.onnx", ["--embed"], "is the model"),
        ("link.json", [], "is the model"),  # a link to the model
        ("m.md", ["--embed"], "is the model's card"),
        ("judge.json", ["--judge", "{tmp}/judge.weights.h5"], "is the judge's sidecar"),
        ("ref/cat/0.png", [], "inside the --reference folder"),
        ("ref/cat/results.json", [], "inside the --reference folder"),
        ("ref", [], "is a folder"),
        ("nodir/x.json", [], "no such folder nodir"),
    ],
)
def test_an_output_that_would_replace_an_input_is_refused_first(
    output: str, extra: list[str], fragment: str, model_and_reference, tmp_path
):
    """-o m.onnx once replaced the model with 1.5 kB of JSON (and --embed then died in a
    protobuf traceback); a missing folder was found only after the minutes of work. Each
    is now one line before anything is read, and every input keeps its bytes."""
    model, reference = model_and_reference
    (tmp_path / "link.json").symlink_to(model)
    model.with_suffix(".md").write_text("the card")
    (tmp_path / "judge.weights.h5").write_bytes(b"weights")
    (tmp_path / "judge.json").write_text('{"labels": ["cat", "dog"], "width": 8}')
    inputs = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    args = [arg.replace("{tmp}", str(tmp_path)) for arg in extra]
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "cgan.evaluation.cli", "m.onnx", "--reference", "ref"]
        + ["--samples-per-class", "2", "--no-imagenet", "-o", output, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    _one_line_refusal(result, fragment)
    assert time.monotonic() - started < 60  # refused before any sampling or judge
    assert {path: path.read_bytes() for path in inputs} == inputs
    assert {path for path in tmp_path.rglob("*") if path.is_file()} == set(inputs)  # none new


@pytest.mark.parametrize("count", ["1", "0", "50001", "100000000"])
def test_samples_per_class_outside_its_bounds_is_one_line(count: str, model_and_reference):
    """One sample per class hung for minutes in sqrtm on a NaN covariance; 10^8 grew to
    4 GB before a MemoryError. Both are refused by the parser, at once."""
    model, reference = model_and_reference
    started = time.monotonic()
    result = run_eval(str(model), "--reference", str(reference), "--samples-per-class", count)
    _one_line_refusal(result, "--samples-per-class: must be 2 to 50000")
    assert time.monotonic() - started < 60


def test_sampling_is_checked_before_any_seed_list_exists(tmp_path):
    """generated_samples built every seed list (and the generator its noise) before the
    request was checked: a hostile count must be refused in bounded memory."""
    import tracemalloc

    from cgan.evaluation.evaluate import Protocol, evaluate, generated_samples
    from tests.hostile_models import hostile_model, save

    big = save(hostile_model(image_size=1024), tmp_path / "big.onnx")
    generator = ImageGenerator(big, provider="cpu")
    tracemalloc.start()
    try:
        for count, fragment in ((10**8, "must be 2 to 50000"), (50_000, "the limit is 1 GiB")):
            protocol = Protocol(samples_per_class=count, reference=str(tmp_path / "none"))
            with pytest.raises(EvaluationError, match=fragment):
                generated_samples(generator, ["cat", "dog"], protocol)
            # evaluate() refuses it before reading a (here missing) reference folder
            with pytest.raises(EvaluationError, match=fragment):
                evaluate(big, None, protocol)
        with pytest.raises(EvaluationError, match="seeds 4294967295..4294967296"):
            generated_samples(generator, ["cat", "dog"], Protocol(2, first_seed=2**32 - 1))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20


@pytest.mark.parametrize(
    "sidecar, fragment",
    [
        ("{not json", "is not JSON"),
        ("\xff\xfe", "is not JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"labels": 5, "width": 8}', "labels must be"),
        ('{"labels": [1, 2], "width": 8}', "labels must be"),
        ('{"labels": ["cat", "Cat"], "width": 8}', "labels must be"),
        ('{"labels": ["cat", "dog"]}', "width must be"),
        ('{"labels": ["cat", "dog"], "width": "8"}', "width must be"),
        ('{"labels": ["cat", "dog"], "width": 1000000000}', "width must be"),
        ('{"labels": ["cat", "dog"], "width": 8, "sha256": 5}', "sha256 must be text"),
    ],
)
def test_a_bad_judge_sidecar_is_one_line_naming_it(sidecar: str, fragment: str, tmp_path):
    """The sidecar decides the judge's shape: garbage was a JSONDecodeError or TypeError,
    a huge width a network that fills the memory."""
    from cgan.evaluation.judge import load_judge

    weights = tmp_path / "judge.weights.h5"
    weights.write_bytes(b"weights")
    (tmp_path / "judge.json").write_text(sidecar, encoding="latin-1")
    with pytest.raises(EvaluationError, match=fragment) as refused:
        load_judge(weights)
    assert "judge.json" in str(refused.value) and "\n" not in str(refused.value)


def test_a_feature_cache_that_is_a_file_is_one_line(model_and_reference, tmp_path):
    """--feature-cache naming a file was a FileExistsError after the features were made."""
    model, reference = model_and_reference
    afile = tmp_path / "afile"
    afile.write_text("mine")
    for cache in (afile, afile / "below"):
        result = run_eval(str(model), "--reference", str(reference), "--feature-cache", str(cache))
        _one_line_refusal(result, f"{afile} is not a folder")
    assert afile.read_text() == "mine"


def test_a_snapshot_of_one_image_per_class_is_refused_when_built(tmp_path):
    """Training's --eval-samples 1 would reach the NaN covariance at its first snapshot,
    minutes into the run: the meter refuses it before it reads anything."""
    from cgan.evaluation.snapshot import SnapshotMeter

    missing = tmp_path / "none"
    with pytest.raises(EvaluationError, match="covariance needs at least 2"):
        SnapshotMeter(["cat", "dog"], 32, 4, 1, missing, missing)


class _PixelJudge:
    """A stand-in judge: the mean pixel as one feature, every image called class 0."""

    labels = ["cat", "dog"]

    def features_and_predictions(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        flat = images.reshape(len(images), -1).astype(np.float64)
        return np.stack([flat.mean(1), flat.std(1)], 1), np.zeros(len(images), int)


def test_a_reference_class_of_one_image_names_the_class():
    """A reference folder with one image of a class cannot give that class's distance:
    one line naming the class, not a NaN figure after a long matrix root."""
    from cgan.evaluation.evaluate import Protocol, measure

    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, (8, 4, 4, 3), dtype=np.uint8)
    classes = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    judge = _PixelJudge()
    reference = (judge.features_and_predictions(images[:5])[0], np.array([0, 0, 0, 0, 1]))
    with pytest.raises(EvaluationError, match="class dog: .*at least 2 samples, got 1"):
        measure(images, classes, reference, judge, Protocol())
