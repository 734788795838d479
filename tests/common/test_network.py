"""The network built twice from one table: Keras and ONNX agree, and both agree with a numpy
reference for the stem; the runner's contract; the checks weights must pass."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cgan.common.errors import ImageNetError
from cgan.common.imagenet.architecture import (
    ENDPOINTS,
    LITE0,
    LITE2,
    check_outputs,
    expected_shapes,
)
from cgan.common.imagenet.weights import check_arrays, find_network

FEATURES = ("stem", "stage2", "stage3", "head", "pooled", "logits", "probabilities")


def onnx_outputs(weights, pixels: np.ndarray, outputs=FEATURES) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    from cgan.common.imagenet.onnx_model import build_onnx

    model = build_onnx(weights.arrays, outputs)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip(outputs, session.run(list(outputs), {"pixels": pixels}), strict=True))


@pytest.mark.slow
def test_keras_and_onnx_forms_agree_on_random_images(weights):
    pytest.importorskip("tensorflow")
    from cgan.common.imagenet.keras_model import build_keras

    model = build_keras(weights.arrays, FEATURES)
    rng = np.random.default_rng(1)
    for shape in ((2, 224, 224, 3), (1, 97, 131, 3)):  # odd sizes exercise SAME padding
        pixels = rng.uniform(0, 255, shape).astype(np.float32)
        keras_out = {k: np.asarray(v) for k, v in model(pixels, training=False).items()}
        onnx_out = onnx_outputs(weights, pixels)
        for name in FEATURES:
            assert keras_out[name].shape == onnx_out[name].shape, name
            scale = max(1.0, float(np.abs(keras_out[name]).max()))
            assert np.abs(keras_out[name] - onnx_out[name]).max() <= 2e-4 * scale, name
        assert np.allclose(onnx_out["probabilities"].sum(axis=1), 1.0, atol=1e-5)


def test_keras_gives_frozen_early_features_for_a_discriminator(weights):
    pytest.importorskip("tensorflow")
    from cgan.common.imagenet.keras_model import build_keras

    frozen = build_keras(weights.arrays, ("stage2", "stage3"), input_shape=(32, 32, 3))
    out = frozen(np.zeros((3, 32, 32, 3), np.float32), training=False)
    assert out["stage2"].shape == (3, 8, 8, 24) and out["stage3"].shape == (3, 4, 4, 40)
    assert not frozen.trainable_weights
    assert all(not layer.name.startswith("block15") for layer in frozen.layers)  # stops early
    trainable = build_keras(weights.arrays, ("pooled",), trainable=True)
    assert trainable.trainable_weights


def _stem_reference(
    arrays: dict[str, np.ndarray], pixels: np.ndarray, pads: tuple[int, int]
) -> np.ndarray:
    """The stem by hand: normalise, zero-pad (top/left, bottom/right), 3x3 stride-2 conv,
    batch norm with TensorFlow's epsilon, ReLU6. NHWC, float64."""
    x = (pixels.astype(np.float64) - 127.0) / 128.0
    x = np.pad(x, ((0, 0), pads, pads, (0, 0)))
    kernel = arrays["_conv_stem.weight"].astype(np.float64)  # [out, in, 3, 3]
    height = (x.shape[1] - 3) // 2 + 1
    width = (x.shape[2] - 3) // 2 + 1
    y = np.zeros((x.shape[0], height, width, kernel.shape[0]))
    for dy in range(3):
        for dx in range(3):
            patch = x[:, dy : dy + 2 * height : 2, dx : dx + 2 * width : 2, :]
            y += np.einsum("nhwc,oc->nhwo", patch, kernel[:, :, dy, dx])
    gamma, beta, mean, var = (
        arrays[f"_bn0.{p}"].astype(np.float64)
        for p in ("weight", "bias", "running_mean", "running_var")
    )
    y = (y - mean) / np.sqrt(var + 1e-3) * gamma + beta
    return np.clip(y, 0.0, 6.0)


def test_stem_matches_an_independent_reference_and_padding_matters(weights):
    rng = np.random.default_rng(2)
    pixels = rng.uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    built = onnx_outputs(weights, pixels, ("stem",))["stem"]
    tensorflow_same = _stem_reference(weights.arrays, pixels, (0, 1))  # the extra row goes last
    assert built.shape == tensorflow_same.shape == (2, 32, 32, 32)
    assert np.abs(built - tensorflow_same).max() < 1e-4
    # PyTorch's symmetric padding shifts every output by a pixel: the test can tell.
    symmetric = _stem_reference(weights.arrays, pixels, (1, 1))[:, :32, :32]
    assert np.abs(built - symmetric).max() > 0.5


def test_runner_takes_any_image_and_answers_probabilities_and_features(runner):
    from cgan.common.imagenet.runner import top_k

    images = [
        Image.new("L", (50, 20), 128),
        Image.new("RGBA", (300, 400), (200, 10, 10, 0)),
        Image.new("P", (64, 64)),
        np.random.default_rng(3).integers(0, 256, (32, 32, 3), dtype=np.uint8),
    ]
    predictions = runner.predict_all(images, batch_size=3)
    assert predictions.probabilities.shape == (4, 1000)
    assert predictions.pooled.shape == (4, 1280)
    assert np.allclose(predictions.probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert (predictions.pooled >= 0).all() and (predictions.pooled <= 6).all()  # ReLU6, averaged
    index, probs = top_k(predictions.probabilities, 5)
    assert index.shape == (4, 5) and (np.diff(probs, axis=1) <= 0).all()
    assert runner.predict_all([], batch_size=3).probabilities.shape == (0, 1000)
    assert "sha256 " + runner.weights.sha256 in runner.describe()


def test_weights_are_checked_against_the_architecture(weights):
    good = dict(weights.arrays)
    assert set(check_arrays(good)) == set(expected_shapes())
    missing = {k: v for k, v in good.items() if k != "_fc.bias"}
    with pytest.raises(ImageNetError, match="_fc.bias is missing"):
        check_arrays(missing)
    with pytest.raises(ImageNetError, match="has shape"):
        check_arrays({**good, "_conv_stem.weight": np.zeros((32, 3, 5, 5), np.float32)})
    broken = good["_bn0.weight"].copy()
    broken[0] = np.nan
    with pytest.raises(ImageNetError, match="not finite"):
        check_arrays({**good, "_bn0.weight": broken})


def test_outputs_are_validated():
    assert check_outputs(["pooled", "stage3"]) == ("pooled", "stage3")
    for bad in ([], ["stage9"], ["pooled", "pooled"]):
        with pytest.raises(ValueError, match="outputs must be"):
            check_outputs(bad)
    assert ENDPOINTS[0] == "stem" and ENDPOINTS[-1] == "probabilities"


def test_missing_weights_file_is_one_error(tmp_path, monkeypatch):
    from cgan.common.imagenet.weights import ENV_VARIABLE, load_weights

    monkeypatch.setenv(ENV_VARIABLE, str(tmp_path / "absent.pth"))
    with pytest.raises(ImageNetError, match="no ImageNet weights file"):
        load_weights()


def _shipped_photo() -> Image.Image:
    """The one real photograph the installed packages ship (matplotlib's sample data)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("matplotlib (the train extra) is not installed")
    path = (
        Path(next(iter(spec.submodule_search_locations)))
        / "mpl-data"
        / "sample_data"
        / "grace_hopper.jpg"
    )
    if not path.is_file():
        pytest.skip("matplotlib's sample photo is not installed")
    return Image.open(path)


def test_lite2_is_lite0s_table_scaled_and_each_file_fits_only_its_own(weights, lite2_weights):
    """The scaling rule (widths x1.1 to multiples of 8, inner stages x1.2 deeper) must give
    exactly the parameters of the shipped Lite2 checkpoint, which check_arrays verified."""
    assert lite2_weights.network is LITE2 and weights.network is LITE0
    widths = [stage.channels for stage in LITE2.stages()]
    repeats = [stage.repeats for stage in LITE2.stages()]
    assert widths == [16, 24, 48, 88, 120, 208, 352] and repeats == [1, 3, 3, 4, 4, 5, 1]
    assert set(lite2_weights.arrays) == set(expected_shapes(LITE2))
    assert lite2_weights.describe().startswith("EfficientNet-Lite2 (ImageNet-1k)")
    with pytest.raises(ImageNetError, match="has shape .* in EfficientNet-Lite0"):
        check_arrays(lite2_weights.arrays)  # a Lite2 file offered as Lite0
    with pytest.raises(ImageNetError, match="has shape .* in EfficientNet-Lite2"):
        check_arrays(weights.arrays, LITE2)
    assert find_network(" LITE2") is LITE2
    with pytest.raises(ImageNetError, match="unknown ImageNet network 'b7'"):
        find_network("b7")


CLOTHING = {  # what a network may rightly see first in the photo of Grace Hopper
    "military uniform",
    "academic gown",
    "graduation cap",
    "Windsor tie",
    "suit",
    "bow tie",
    "vestment",
    "bulletproof vest",
}


def test_a_real_photo_is_seen_for_what_it_shows(weights):
    """Grace Hopper in uniform: the classic check of an ImageNet conversion."""
    from cgan.common.imagenet.classes import load_classes
    from cgan.common.imagenet.preprocess import prepare
    from cgan.common.imagenet.runner import ImageNetRunner, top_k

    names = load_classes().names
    runner = ImageNetRunner(weights)  # photos: the ImageNet centre crop
    pixels = prepare(_shipped_photo())[None]
    index, probs = top_k(runner.run(pixels).probabilities, 5)
    top = [names[i] for i in index[0]]
    assert "military uniform" in top and set(top[:3]) <= CLOTHING, top
    assert probs[0, :3].sum() > 0.4, probs
    # Without the (x - 127) / 128 scaling the network sees something else: the test can tell.
    unscaled = runner.run(pixels * 128.0 + 127.0).probabilities
    assert not set(names[i] for i in top_k(unscaled, 3)[0][0]) <= CLOTHING


def test_lite2_sees_the_photo_at_its_own_resolution(lite2_weights):
    from cgan.common.imagenet.classes import load_classes
    from cgan.common.imagenet.runner import ImageNetRunner, top_k

    runner = ImageNetRunner(lite2_weights)
    assert runner.input_size == 260 and "input 260x260" in runner.describe()
    predictions = runner.predict([_shipped_photo()])
    names = load_classes().names
    top = [names[i] for i in top_k(predictions.probabilities, 5)[0][0]]
    assert "military uniform" in top and set(top[:3]) <= CLOTHING, top
    assert predictions.pooled.shape == (1, 1280)
