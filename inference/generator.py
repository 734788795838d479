"""The inference API: load an exported generator once, make images for labels and seeds.

Noise is made here, in numpy, from one seed per image (the graph has no random op), so a
label and a seed always give the same image, whatever batch it is made in.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from inference.errors import InferenceError
from inference.grid import make_grid, to_uint8
from inference.metadata import INPUT_LABEL, INPUT_NOISE, OUTPUT_IMAGE, ModelInfo
from inference.session import open_session

MAX_SEED = 2**32 - 1


def noise_for_seed(seed: int, latent_dim: int, truncation: float | None = None) -> np.ndarray:
    """Standard normal noise from one seed; with truncation, values beyond +-t are redrawn
    (the truncation trick: less variety, more typical images)."""
    if not 0 <= seed <= MAX_SEED:
        raise InferenceError(f"seed {seed} is outside 0..{MAX_SEED}")
    if truncation is not None and truncation <= 0:
        raise InferenceError(f"truncation must be positive, not {truncation}")
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(latent_dim)
    if truncation is not None:
        outside = np.abs(z) > truncation
        while outside.any():
            z[outside] = rng.standard_normal(int(outside.sum()))
            outside = np.abs(z) > truncation
    return z.astype(np.float32)


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation: intermediate noise keeps a typical norm (linear would shrink it)."""
    cos = np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if omega < 1e-6:
        return ((1 - t) * a + t * b).astype(np.float32)
    return ((np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)).astype(
        np.float32)


class ImageGenerator:
    """One onnxruntime session over an exported generator, plus its labels and metadata."""

    def __init__(self, model: str | Path | bytes, provider: str = "auto",
                 batch_size: int = 64) -> None:
        self.session = open_session(model, provider)
        props = self.session.get_modelmeta().custom_metadata_map
        self.info = ModelInfo.from_props(dict(props))
        self._check_signature()
        self.batch_size = batch_size
        self.source = "<bytes>" if isinstance(model, bytes) else str(model)

    def _check_signature(self) -> None:
        inputs = {i.name for i in self.session.get_inputs()}
        outputs = {o.name for o in self.session.get_outputs()}
        if inputs != {INPUT_NOISE, INPUT_LABEL} or OUTPUT_IMAGE not in outputs:
            raise InferenceError(f"the model's inputs {sorted(inputs)} / outputs "
                                 f"{sorted(outputs)} are not the cgan export contract")

    @property
    def labels(self) -> list[str]:
        return self.info.labels

    @property
    def provider(self) -> str:
        return self.session.get_providers()[0]

    def label_index(self, label: str | int) -> int:
        """A class by name (case-insensitive) or index; unknown names get a suggestion."""
        names = self.labels
        if isinstance(label, (int, np.integer)) or (isinstance(label, str) and
                                                    label.strip().lstrip("-").isdigit()):
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
            raise InferenceError(f"noise must be shaped [{len(label_array)}, "
                                 f"{self.info.latent_dim}], not {list(noise.shape)}")
        if label_array.size and (label_array.min() < 0 or label_array.max() >= len(self.labels)):
            raise InferenceError(f"label indices must be in 0..{len(self.labels) - 1}")
        chunks = []
        for start in range(0, len(label_array), self.batch_size):
            stop = start + self.batch_size
            feed = {INPUT_NOISE: noise[start:stop], INPUT_LABEL: label_array[start:stop]}
            try:
                (images,) = self.session.run([OUTPUT_IMAGE], feed)
            except Exception as exc:  # onnxruntime's own error types (memory, bad graph)
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                raise InferenceError(f"the model failed to run: {first[:200]}") from None
            chunks.append(to_uint8(images))
        if not chunks:
            size = self.info.image_size
            return np.zeros((0, size, size, 3), np.uint8)
        return np.concatenate(chunks)

    def generate(self, labels: Sequence[str | int], seeds: Sequence[int],
                 truncation: float | None = None) -> np.ndarray:
        """One image per (label, seed) pair."""
        if len(labels) != len(seeds):
            raise InferenceError("give one seed per label")
        indices = [self.label_index(label) for label in labels]
        noise = np.stack([noise_for_seed(int(s), self.info.latent_dim, truncation)
                          for s in seeds]) if seeds else np.zeros((0, self.info.latent_dim))
        return self.from_noise(noise, indices)

    def interpolate(self, label: str | int, seed_a: int, seed_b: int, frames: int = 8,
                    truncation: float | None = None) -> np.ndarray:
        """`frames` images along a spherical path from seed_a's noise to seed_b's."""
        if frames < 2:
            raise InferenceError("an interpolation needs at least 2 frames")
        a = noise_for_seed(seed_a, self.info.latent_dim, truncation)
        b = noise_for_seed(seed_b, self.info.latent_dim, truncation)
        noise = np.stack([slerp(a, b, t) for t in np.linspace(0.0, 1.0, frames)])
        return self.from_noise(noise, [self.label_index(label)] * frames)

    def class_sweep(self, seed: int, truncation: float | None = None) -> np.ndarray:
        """The same noise through every class: what the label alone controls."""
        z = noise_for_seed(seed, self.info.latent_dim, truncation)
        return self.from_noise(np.tile(z, (len(self.labels), 1)), range(len(self.labels)))

    def class_grid(self, seeds: Sequence[int], truncation: float | None = None,
                   scale: int = 2) -> Image.Image:
        """One row per class, one column per seed, names on the left."""
        count = len(self.labels)
        images = self.generate([k for k in range(count) for _ in seeds], list(seeds) * count,
                               truncation)
        return make_grid(images, rows=count, scale=scale, row_labels=self.labels)


def providers_available() -> list[str]:
    return ort.get_available_providers()
