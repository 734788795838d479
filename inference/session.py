"""Opening an onnxruntime session on the provider the user asked for, quietly and safely.

A model file is untrusted input: its initializers may name *external data* files. From a
path, onnxruntime resolves them inside the model's own folder only (it refuses `..`,
absolute paths and symlinks that leave it). From bytes it would resolve them against the
process's working folder, so bytes are written to a private, empty temporary folder first
and loaded from there: a model that names any external file then fails to load.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import onnxruntime as ort

from cgan.common.cli import first_line
from cgan.common.errors import InferenceError

PROVIDERS = ("auto", "cpu", "cuda")
_CPU, _CUDA = "CPUExecutionProvider", "CUDAExecutionProvider"

ort.set_default_logger_severity(3)  # no warnings about absent GPUs on CPU machines


def _options() -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return options


def _open(model: str | bytes, providers: list[str]) -> ort.InferenceSession:
    if isinstance(model, bytes):
        with tempfile.TemporaryDirectory(prefix="cgan-model-") as private:  # mode 0700
            path = Path(private) / "model.onnx"
            path.write_bytes(model)
            try:
                return _open(str(path), providers)  # external data is read at load
            except InferenceError as exc:
                if "external data" in str(exc).lower():
                    raise InferenceError(
                        "cannot load the model: it refers to external data "
                        "files, which a model given as bytes (an upload) "
                        "may not use"
                    ) from None
                raise
    try:
        return ort.InferenceSession(model, sess_options=_options(), providers=providers)
    except Exception as exc:  # onnxruntime raises several unrelated types for bad files
        raise InferenceError(f"cannot load the model: {first_line(exc)}") from None


def open_session(model: str | Path | bytes, provider: str = "auto") -> ort.InferenceSession:
    """`auto` takes CUDA only when a session really runs on it; `cuda` insists on it.

    `get_available_providers()` lists CUDA in onnxruntime-gpu builds even on machines
    without a GPU, so the decision is made from the providers the session really got.
    """
    if provider not in PROVIDERS:
        raise InferenceError(f"unknown provider {provider!r}; choose one of {', '.join(PROVIDERS)}")
    if isinstance(model, Path):
        model = str(model)
    if isinstance(model, str) and not Path(model).is_file():
        raise InferenceError(f"model file {model} does not exist")
    cuda_listed = _CUDA in ort.get_available_providers()
    if provider == "cpu" or (provider == "auto" and not cuda_listed):
        return _open(model, [_CPU])
    if provider == "cuda" and not cuda_listed:
        raise InferenceError(
            "the cuda provider needs the onnxruntime-gpu package (see README: GPU inference)"
        )
    session = _open(model, [_CUDA, _CPU])
    if session.get_providers()[0] == _CUDA:
        return session
    if provider == "cuda":
        raise InferenceError(
            "the cuda provider was asked for, but onnxruntime-gpu found no usable CUDA device"
        )
    return _open(model, [_CPU])
