"""Write legacy-format PyTorch checkpoints by hand (no torch): pickle opcodes plus raw bytes.

Only for tests: it lets them feed the reader files they made, good ones and hostile ones.
"""

from __future__ import annotations

import pickle
import struct

import numpy as np

from cgan.common.imagenet.torchfile import MAGIC_NUMBER, PROTOCOL_VERSION

_STORAGE = {np.dtype("float32"): "FloatStorage", np.dtype("int64"): "LongStorage"}


def fragment(value: object) -> bytes:
    """The opcodes that push ``value`` (plain data), without PROTO and STOP."""
    return pickle.dumps(value, protocol=2)[2:-1]


def global_(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def tensor_opcodes(
    key: str,
    array: np.ndarray,
    shape: tuple[int, ...] | None = None,
    stride: tuple[int, ...] | None = None,
    offset: int = 0,
    storage_numel: int | None = None,
) -> bytes:
    """``_rebuild_tensor_v2(storage, offset, shape, stride, False, OrderedDict())``."""
    shape = array.shape if shape is None else shape
    if stride is None:  # C order, in elements
        stride = tuple(int(np.prod(array.shape[i + 1 :])) for i in range(array.ndim))
    numel = array.size if storage_numel is None else storage_numel
    persistent = (
        b"("
        + fragment("storage")
        + global_("torch", _STORAGE[array.dtype])
        + fragment(key)
        + fragment("cpu")
        + fragment(numel)
        + b"N"
        + b"t"
        + b"Q"
    )
    return (
        global_("torch._utils", "_rebuild_tensor_v2")
        + b"("
        + persistent
        + fragment(offset)
        + fragment(tuple(shape))
        + fragment(tuple(stride))
        + b"\x89"
        + global_("collections", "OrderedDict")
        + b")R"
        + b"tR"
    )


def legacy_bytes(tensors: dict[str, np.ndarray], body: bytes | None = None) -> bytes:
    """A complete checkpoint of contiguous little-endian tensors (``body`` replaces the
    state-dict pickle when a test wants a hostile one)."""
    header = (
        pickle.dumps(MAGIC_NUMBER, 2)
        + pickle.dumps(PROTOCOL_VERSION, 2)
        + pickle.dumps(
            {
                "protocol_version": PROTOCOL_VERSION,
                "little_endian": True,
                "type_sizes": {"short": 2, "int": 4, "long": 4},
            },
            2,
        )
    )
    keys = [str(100 + i) for i in range(len(tensors))]
    if body is None:
        items = b"".join(
            fragment(name) + tensor_opcodes(key, array)
            for key, (name, array) in zip(keys, tensors.items(), strict=True)
        )
        body = b"\x80\x02" + global_("collections", "OrderedDict") + b")R" + b"(" + items + b"u."
    data = b"".join(
        struct.pack("<q", array.size) + array.astype(array.dtype.newbyteorder("<")).tobytes()
        for array in tensors.values()
    )
    return header + body + pickle.dumps(keys, 2) + data
