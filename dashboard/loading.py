"""Finding and opening models: the models folder, upload checks, and one onnxruntime
session per model file (or uploaded bytes), validated once and shared by every rerun and
every browser session.

The models folder is fixed when the app starts (only an environment variable moves it), so
nobody can point the app at an arbitrary path from the browser.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import streamlit as st

from cgan.common.errors import InferenceError
from cgan.inference.generator import ImageGenerator

MODELS_ENV = "CGAN_MODELS_DIR"
MAX_UPLOAD_BYTES = 200 * 2**20  # Streamlit's own default upload limit
CACHED_FILES = 8
CACHED_UPLOADS = 4


@dataclass(frozen=True)
class UploadedModel:
    """The bytes of an uploaded .onnx, with their hash: the key of its cached session."""

    name: str
    data: bytes = field(repr=False)
    sha256: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha256", hashlib.sha256(self.data).hexdigest())


@dataclass(frozen=True)
class LoadedModel:
    """A ready generator and what the page says about where it came from."""

    generator: ImageGenerator
    source: str
    size_bytes: int
    sha256: str

    @property
    def key(self) -> str:
        """Identifies the model in per-session state, such as latency measurements."""
        return f"{self.sha256}:{self.generator.provider}"


def models_dir() -> Path:
    """$CGAN_MODELS_DIR, else models/ in the folder the app was started from."""
    value = os.environ.get(MODELS_ENV, "").strip()
    return Path(value).expanduser() if value else Path.cwd() / "models"


def list_models(folder: Path) -> list[Path]:
    """Every .onnx file below `folder`, by relative name; hidden files (such as the
    exporter's `.NAME.onnx.*.tmp`) and hidden folders are left out."""
    if not folder.is_dir():
        return []

    def visible(path: Path) -> bool:
        return path.is_file() and not any(
            part.startswith(".") for part in path.relative_to(folder).parts
        )

    found = [path for path in folder.rglob("*.onnx") if visible(path)]
    return sorted(found, key=lambda path: path.relative_to(folder).as_posix())


def check_upload(name: str, data: bytes) -> None:
    """Refuse what is not worth handing to onnxruntime, with a reason."""
    if not name.lower().endswith(".onnx"):
        raise InferenceError(f"{name} is not an .onnx file; upload a model made by cgan-export")
    if not data:
        raise InferenceError(f"{name} is empty")
    if len(data) > MAX_UPLOAD_BYTES:
        raise InferenceError(
            f"{name} is {len(data) / 2**20:.0f} MiB; the limit is {MAX_UPLOAD_BYTES // 2**20} MiB"
        )


def open_generator(model: Path | bytes, provider: str = "auto") -> ImageGenerator:
    """The inference loader treats every file as untrusted: bytes never read external
    data, metadata is checked, and one probe image must have the promised shape."""
    return ImageGenerator(model, provider=provider)


def validate_upload(upload: UploadedModel, provider: str = "auto") -> ImageGenerator:
    """Everything an uploaded file must pass before the dashboard uses it."""
    check_upload(upload.name, upload.data)
    return open_generator(upload.data, provider)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


@st.cache_resource(max_entries=CACHED_FILES, show_spinner="Loading the model…")
def _cached_file(path: str, stamp: tuple[int, int], provider: str) -> LoadedModel:
    # `stamp` (mtime, size) is only part of the cache key: a re-exported file reloads.
    file = Path(path)
    return LoadedModel(open_generator(file, provider), path, stamp[1], _file_sha256(file))


@st.cache_resource(max_entries=CACHED_UPLOADS, show_spinner="Checking the uploaded model…")
def _cached_upload(sha256: str, provider: str, _upload: UploadedModel) -> ImageGenerator:
    # The leading underscore keeps the bytes out of Streamlit's hashing; sha256 stands in.
    return validate_upload(_upload, provider)


def load_file(path: Path, provider: str = "auto") -> LoadedModel:
    """The model at `path`, from the cache unless the file changed since it was loaded."""
    try:
        status = path.stat()
    except OSError:
        raise InferenceError(f"model file {path} does not exist or cannot be read") from None
    if not path.is_file():
        raise InferenceError(f"{path} is not a file")
    return _cached_file(str(path.resolve()), (status.st_mtime_ns, status.st_size), provider)


def load_upload(upload: UploadedModel, provider: str = "auto") -> LoadedModel:
    """An uploaded model, validated once per distinct content."""
    check_upload(upload.name, upload.data)
    generator = _cached_upload(upload.sha256, provider, upload)
    return LoadedModel(generator, f"uploaded {upload.name}", len(upload.data), upload.sha256)
