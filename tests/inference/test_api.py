"""The inference API: labels, determinism, truncation, interpolation, sweeps, errors."""

from __future__ import annotations

import numpy as np
import pytest

from cgan.common.errors import InferenceError, MetadataError
from cgan.common.images import make_grid, to_uint8
from cgan.inference.generator import ImageGenerator, noise_for_seed, slerp
from cgan.inference.requests import parse_seeds


@pytest.fixture(scope="module")
def generator(exported_model) -> ImageGenerator:
    return ImageGenerator(exported_model, provider="cpu")


def test_labels_and_metadata(generator):
    assert generator.labels == ["red-disc", "green-square", "blue-triangle"]
    assert generator.info.latent_dim == 8 and generator.info.image_size == 32
    assert generator.provider == "CPUExecutionProvider"


def test_label_lookup(generator):
    assert generator.label_index("GREEN-square") == 1
    assert generator.label_index(2) == 2 and generator.label_index("0") == 0
    with pytest.raises(InferenceError, match="did you mean 'blue-triangle'"):
        generator.label_index("blue-triangel")
    with pytest.raises(InferenceError, match="valid labels: red-disc, green-square"):
        generator.label_index("zebra")
    for bad in (-1, 3, "-1"):
        with pytest.raises(InferenceError, match="outside 0..2"):
            generator.label_index(bad)


def test_same_label_and_seed_give_the_same_bytes_in_any_batch(generator):
    alone = generator.generate(["green-square"], [42])
    seeds = list(range(100, 120))
    seeds[13] = 42
    labels = [k % 3 for k in range(20)]
    labels[13] = 1
    for batch_size in (64, 5, 1):
        generator.batch_size = batch_size
        batch = generator.generate(labels, seeds)
        np.testing.assert_array_equal(batch[13], alone[0])
    generator.batch_size = 64
    assert batch.dtype == np.uint8 and batch.shape == (20, 32, 32, 3)
    assert not np.array_equal(generator.generate([1], [43])[0], alone[0])


def test_truncation_redraws_large_values():
    plain = noise_for_seed(5, 4096)
    truncated = noise_for_seed(5, 4096, truncation=0.5)
    assert np.abs(plain).max() > 2 and np.abs(truncated).max() <= 0.5
    np.testing.assert_array_equal(truncated, noise_for_seed(5, 4096, truncation=0.5))
    with pytest.raises(InferenceError, match="positive"):
        noise_for_seed(5, 8, truncation=0)
    with pytest.raises(InferenceError, match="outside"):
        noise_for_seed(-1, 8)


def test_interpolation_runs_from_one_seed_to_the_other(generator):
    frames = generator.interpolate("red-disc", 3, 9, frames=6)
    assert frames.shape == (6, 32, 32, 3)
    ends = generator.generate(["red-disc", "red-disc"], [3, 9])
    assert np.abs(frames[0].astype(int) - ends[0]).max() <= 1
    assert np.abs(frames[-1].astype(int) - ends[1]).max() <= 1
    a, b = noise_for_seed(3, 64), noise_for_seed(9, 64)
    middle = slerp(a, b, 0.5)
    assert abs(np.linalg.norm(middle) - (np.linalg.norm(a) + np.linalg.norm(b)) / 2) < 1.0
    with pytest.raises(InferenceError, match="at least 2"):
        generator.interpolate(0, 1, 2, frames=1)


def test_class_sweep_uses_one_noise_for_every_class(generator):
    sweep = generator.class_sweep(seed=11)
    assert sweep.shape == (3, 32, 32, 3)
    np.testing.assert_array_equal(sweep, generator.generate([0, 1, 2], [11, 11, 11]))


def test_class_grid_has_a_row_per_class(generator):
    grid = generator.class_grid(seeds=[0, 1, 2, 3], scale=2)
    assert grid.height == 3 * (64 + 2) + 2


def test_from_noise_validates_shapes_and_labels(generator):
    with pytest.raises(InferenceError, match=r"shaped \[2, 8\]"):
        generator.from_noise(np.zeros((2, 5)), [0, 1])
    with pytest.raises(InferenceError, match="label indices"):
        generator.from_noise(np.zeros((1, 8)), [-1])


def test_bad_model_files(tmp_path, corrupt_model, model_without_metadata):
    with pytest.raises(InferenceError, match="does not exist"):
        ImageGenerator(tmp_path / "missing.onnx")
    with pytest.raises(InferenceError, match="cannot load the model"):
        ImageGenerator(corrupt_model)
    with pytest.raises(MetadataError, match="no cgan metadata"):
        ImageGenerator(model_without_metadata)


def test_providers(exported_model):
    assert ImageGenerator(exported_model, provider="auto").provider == "CPUExecutionProvider"
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(InferenceError, match="onnxruntime-gpu"):
            ImageGenerator(exported_model, provider="cuda")
    with pytest.raises(InferenceError, match="unknown provider"):
        ImageGenerator(exported_model, provider="tpu")


def test_grid_and_uint8_helpers():
    assert to_uint8(np.array([-1.0, 0.0, 1.0, 2.0])).tolist() == [0, 128, 255, 255]
    images = np.zeros((6, 4, 4, 3), np.uint8)
    assert make_grid(images, rows=2, padding=1).size == (3 * 5 + 1, 2 * 5 + 1)
    with pytest.raises(ValueError, match="do not fill"):
        make_grid(images, rows=4)


def test_parse_seeds():
    assert parse_seeds("0-3,42, 7", limit=100) == [0, 1, 2, 3, 42, 7]
    for bad, message in [
        ("a-b", "bad --seeds"),
        ("5-2", "end is before"),
        ("", "bad --seeds"),
        ("0-1000", "more than 100"),
        ("99999999999", "beyond"),
    ]:
        with pytest.raises(InferenceError, match=message):
            parse_seeds(bad, limit=100)


def test_metadata_field_types_are_checked():
    from cgan.inference.metadata import ModelInfo

    props = ModelInfo(labels=["a", "b"], latent_dim=4, image_size=32).to_props()
    assert ModelInfo.from_props(props).labels == ["a", "b"]
    for field, bad in [
        ("epochs", '"many"'),
        ("metrics", "[1, 2]"),
        ("training_steps", "true"),
        ("labels", '"a,b"'),
        ("latent_dim", "0"),
    ]:
        with pytest.raises(MetadataError):
            ModelInfo.from_props({**props, field: bad})
    with pytest.raises(MetadataError, match="not valid JSON"):
        ModelInfo.from_props({**props, "arch": "{oops"})
