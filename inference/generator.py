"""The inference API: load an exported generator once, make images for labels and seeds.

Noise is made here, in numpy, from one seed per image (the graph has no random op), so a
label and a seed always give the same image, whatever batch it is made in.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from cgan.common.errors import InferenceError
from cgan.common.images import make_grid, to_uint8
from cgan.inference.metadata import INPUT_LABEL, INPUT_NOISE, OUTPUT_IMAGE, ModelInfo
from cgan.inference.requests import MAX_SEED, check_request
from cgan.inference.session import open_session, run_limited

MAX_REDRAWS = 64  # then clip: a tiny truncation must not loop for ever
# Images per session run on each provider. On CPU, small batches keep a layer's activations
# in cache and each run's memory small: 32 per run made 613 img/s of the cifar10 generator
# against 454 at 64 and 446 at 1,024 (benchmarks/infer_bench.py, docs/results/performance.md).
BATCH_SIZES = {"CPUExecutionProvider": 32, "CUDAExecutionProvider": 500}


# A class index as text: ASCII digits only (str.isdigit also takes "²", which int() refuses),
# short enough for int() to be quick; longer ones are out of range anyway.
_INDEX = re.compile(r"-?[0-9]{1,30}", re.ASCII)


def check_truncation(truncation: float | None) -> None:
    if truncation is not None and not (math.isfinite(truncation) and truncation > 0):
        raise InferenceError(f"truncation must be a finite positive number, not {truncation}")


def noise_for_seed(seed: int, latent_dim: int, truncation: float | None = None) -> np.ndarray:
    """Standard normal noise from one seed; with truncation, values beyond +-t are redrawn
    (the truncation trick: less variety, more typical images). After MAX_REDRAWS rounds the
    rest is clipped, which only ever happens for truncations far below any useful one."""
    if not 0 <= seed <= MAX_SEED:
        raise InferenceError(f"seed {seed} is outside 0..{MAX_SEED}")
    check_truncation(truncation)
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(latent_dim)
    if truncation is not None:
        for _ in range(MAX_REDRAWS):
            outside = np.abs(z) > truncation
            if not outside.any():
                break
            z[outside] = rng.standard_normal(int(outside.sum()))
        z = np.clip(z, -truncation, truncation)
    return z.astype(np.float32)


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation: intermediate noise keeps a typical norm (linear would shrink it)."""
    cos = np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if omega < 1e-6:
        return ((1 - t) * a + t * b).astype(np.float32)
    return ((np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)).astype(
        np.float32
    )


class ImageGenerator:
    """One onnxruntime session over an exported generator, plus its labels and metadata."""

    def __init__(
        self, model: str | Path | bytes, provider: str = "auto", batch_size: int | None = None
    ) -> None:
        """`batch_size`: images per session run; by default the provider's best measured."""
        self.session = open_session(model, provider)
        props = self.session.get_modelmeta().custom_metadata_map
        self.info = ModelInfo.from_props(dict(props))
        self._check_signature()
        self.batch_size = batch_size or BATCH_SIZES.get(self.provider, 32)
        self.source = "<bytes>" if isinstance(model, bytes) else str(model)
        self._run(np.zeros((1, self.info.latent_dim), np.float32), np.zeros(1, np.int64))

    def _check_signature(self) -> None:
        inputs = {i.name for i in self.session.get_inputs()}
        outputs = {o.name for o in self.session.get_outputs()}
        if inputs != {INPUT_NOISE, INPUT_LABEL} or OUTPUT_IMAGE not in outputs:
            raise InferenceError(
                f"the model's inputs {sorted(inputs)} / outputs "
                f"{sorted(outputs)} are not the cgan export contract"
            )
        types = {i.name: i.type for i in self.session.get_inputs()}
        if types != {INPUT_NOISE: "tensor(float)", INPUT_LABEL: "tensor(int64)"}:
            raise InferenceError(
                f"the model's input types {types} are not the cgan export "
                "contract (float noise, int64 label)"
            )
        output = next(o for o in self.session.get_outputs() if o.name == OUTPUT_IMAGE)
        if output.type != "tensor(float)":
            raise InferenceError(
                f"the model's output type {output.type[:40]} is not the cgan export contract "
                "(float images in [-1, 1])"
            )

    def _run(self, noise: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """One batch through the session; the output must be [N, S, S, 3] with S the
        metadata's image_size (checked at load on one image, then on every batch)."""
        (images,) = run_limited(
            self.session, [OUTPUT_IMAGE], {INPUT_NOISE: noise, INPUT_LABEL: labels}
        )
        size = self.info.image_size
        expected = (len(labels), size, size, 3)
        if not isinstance(images, np.ndarray) or images.shape != expected:
            shape = list(getattr(images, "shape", []))
            raise InferenceError(
                f"the model's output is shaped {shape}, not {list(expected)} as its metadata says"
            )
        if images.dtype != np.float32:
            raise InferenceError(f"the model's output is {images.dtype}, not float32 images")
        bad = images.size - int(np.isfinite(images).sum())
        if bad:
            raise InferenceError(
                f"the model's output has {bad} NaN or infinite values of {images.size}: "
                "no image is written from it"
            )
        return images

    @property
    def labels(self) -> list[str]:
        return self.info.labels

    @property
    def provider(self) -> str:
        return self.session.get_providers()[0]

    def label_index(self, label: str | int) -> int:
        """A class by name (case-insensitive) or index; unknown names get a suggestion."""
        names = self.labels
        if isinstance(label, (int, np.integer)) or (
            isinstance(label, str) and _INDEX.fullmatch(label.strip())
        ):
            index = int(label)
            if not 0 <= index < len(names):
                raise InferenceError(f"label index {index} is outside 0..{len(names) - 1}")
            return index
        lowered = [name.lower() for name in names]
        wanted = str(label).strip().lower()
        if wanted in lowered:
            return lowered.index(wanted)
        close = difflib.get_close_matches(wanted, lowered, n=1)
        hint = f" (did you mean {names[lowered.index(close[0])]!r}?)" if close else ""
        raise InferenceError(f"unknown label {label!r}{hint}; valid labels: {', '.join(names)}")

    def from_noise(self, noise: np.ndarray, labels: Sequence[int]) -> np.ndarray:
        """uint8 images [N, H, W, 3] for noise [N, latent_dim] and label indices [N]."""
        noise = np.asarray(noise, np.float32)
        label_array = np.asarray(labels, np.int64)
        if noise.shape != (len(label_array), self.info.latent_dim):
            raise InferenceError(
                f"noise must be shaped [{len(label_array)}, "
                f"{self.info.latent_dim}], not {list(noise.shape)}"
            )
        if label_array.size and (label_array.min() < 0 or label_array.max() >= len(self.labels)):
            raise InferenceError(f"label indices must be in 0..{len(self.labels) - 1}")
        check_request(len(label_array), self.info.image_size)
        chunks = []
        for start in range(0, len(label_array), self.batch_size):
            stop = start + self.batch_size
            chunks.append(to_uint8(self._run(noise[start:stop], label_array[start:stop])))
        if not chunks:
            size = self.info.image_size
            return np.zeros((0, size, size, 3), np.uint8)
        return np.concatenate(chunks)

    def generate(
        self, labels: Sequence[str | int], seeds: Sequence[int], truncation: float | None = None
    ) -> np.ndarray:
        """One image per (label, seed) pair."""
        if len(labels) != len(seeds):
            raise InferenceError("give one seed per label")
        check_request(len(seeds), self.info.image_size, latent_dim=self.info.latent_dim)
        indices = [self.label_index(label) for label in labels]
        noise = (
            np.stack([noise_for_seed(int(s), self.info.latent_dim, truncation) for s in seeds])
            if seeds
            else np.zeros((0, self.info.latent_dim))
        )
        return self.from_noise(noise, indices)

    def interpolate(
        self,
        label: str | int,
        seed_a: int,
        seed_b: int,
        frames: int = 8,
        truncation: float | None = None,
    ) -> np.ndarray:
        """`frames` images along a spherical path from seed_a's noise to seed_b's."""
        if frames < 2:
            raise InferenceError("an interpolation needs at least 2 frames")
        check_request(frames, self.info.image_size, latent_dim=self.info.latent_dim)
        a = noise_for_seed(seed_a, self.info.latent_dim, truncation)
        b = noise_for_seed(seed_b, self.info.latent_dim, truncation)
        noise = np.stack([slerp(a, b, t) for t in np.linspace(0.0, 1.0, frames)])
        return self.from_noise(noise, [self.label_index(label)] * frames)

    def class_sweep(self, seed: int, truncation: float | None = None) -> np.ndarray:
        """The same noise through every class: what the label alone controls."""
        z = noise_for_seed(seed, self.info.latent_dim, truncation)
        return self.from_noise(np.tile(z, (len(self.labels), 1)), range(len(self.labels)))

    def class_grid(
        self, seeds: Sequence[int], truncation: float | None = None, scale: int = 2
    ) -> Image.Image:
        """One row per class, one column per seed, names on the left."""
        count = len(self.labels)
        check_request(count * len(seeds), self.info.image_size, scale, self.info.latent_dim)
        images = self.generate(
            [k for k in range(count) for _ in seeds], list(seeds) * count, truncation
        )
        return make_grid(images, rows=count, scale=scale, row_labels=self.labels)


def providers_available() -> list[str]:
    return ort.get_available_providers()
