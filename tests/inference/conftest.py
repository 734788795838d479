"""Models for the inference tests: the exported tiny run, plus broken variants of it."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def model_without_metadata(exported_model, tmp_path_factory) -> Path:
    import onnx

    model = onnx.load(exported_model)
    del model.metadata_props[:]
    path = tmp_path_factory.mktemp("bad-models") / "bare.onnx"
    onnx.save(model, path)
    return path


@pytest.fixture(scope="session")
def corrupt_model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bad-models") / "corrupt.onnx"
    path.write_bytes(b"\x08\x07garbage, not a protobuf" * 50)
    return path
