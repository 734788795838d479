"""The files of a run directory, in one place so that every stage agrees on them.

Training writes a run, export and the dashboard read it: all three go through `RunDir`,
so a file name or format changes here and nowhere else. Needs numpy and the standard
library only (the dashboard reads runs without TensorFlow).
"""

from __future__ import annotations

import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cgan.common.errors import CganError
from cgan.common.files import write_bytes_atomic, write_text_atomic

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CONFIG_NAME = "config.toml"


@dataclass(frozen=True)
class RunDir:
    """RUN/config.toml, checkpoints/, metrics.jsonl, loss_curve.png, samples/epoch_NNNN.png."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / CONFIG_NAME

    def is_run(self) -> bool:
        return self.config.is_file()

    def config_text(self) -> str | None:
        """config.toml as written (None when absent or unreadable), for display."""
        try:
            return self.config.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    def read_config(self) -> dict[str, Any]:
        """config.toml parsed; a missing or damaged file is one `CganError` line."""
        if not self.config.is_file():
            raise CganError(f"{self.root} is not a run directory (no {CONFIG_NAME})")
        text = self.config_text()
        if text is None:
            raise CganError(f"{self.config} cannot be read as UTF-8 text")
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise CganError(f"{self.config} is not valid TOML: {exc}") from None

    def write_config_text(self, text: str) -> None:
        """Atomically: a crash mid-write must not leave an unreadable run."""
        write_text_atomic(self.config, text)

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def loss_curve(self) -> Path:
        return self.root / "loss_curve.png"

    @property
    def samples(self) -> Path:
        return self.root / "samples"

    @property
    def fixed_noise(self) -> Path:
        return self.root / "fixed_noise.npy"

    @property
    def progress(self) -> Path:
        return self.root / "progress.json"

    def write_progress(self, record: dict[str, Any]) -> None:
        """Where the last checkpoint stands (step, epoch, examples): read by the exporter."""
        write_text_atomic(self.progress, json.dumps(record, indent=2) + "\n")

    def read_progress(self) -> dict[str, Any]:
        if not self.progress.is_file():
            return {}
        try:
            return json.loads(self.progress.read_text())
        except json.JSONDecodeError:
            return {}

    def sample_grid(self, epoch: int) -> Path:
        return self.samples / f"epoch_{epoch:04d}.png"

    def has_checkpoint(self) -> bool:
        return bool(self.checkpoint_prefixes())

    def checkpoint_prefixes(self) -> list[Path]:
        """Every checkpoint whose index file exists, newest (highest step) first.

        Found from the files themselves rather than TensorFlow's `checkpoint` state file,
        which can name a checkpoint whose files are gone."""
        found = []
        for index in self.checkpoints.glob("ckpt-*.index"):
            number = index.name[len("ckpt-") : -len(".index")]
            if number.isdigit():
                found.append((int(number), self.checkpoints / index.name[: -len(".index")]))
        return [prefix for _, prefix in sorted(found, reverse=True)]

    def set_aside(self, prefix: Path) -> Path:
        """Move an unreadable checkpoint's files to checkpoints/damaged/ (kept, not deleted)."""
        damaged = self.checkpoints / "damaged"
        damaged.mkdir(exist_ok=True)
        for part in self.checkpoints.glob(prefix.name + ".*"):
            part.replace(damaged / part.name)
        return damaged

    def create(self) -> None:
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        self.samples.mkdir(parents=True, exist_ok=True)

    def append_metrics(self, record: dict[str, Any]) -> None:
        with self.metrics.open("a") as stream:
            stream.write(json.dumps(record) + "\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        """All complete records; a line cut by a kill mid-write is ignored."""
        if not self.metrics.is_file():
            return []
        records = []
        for line in self.metrics.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return records

    def truncate_metrics(self, last_step: int) -> None:
        """Drop records past the checkpoint a resume starts from: no step appears twice."""
        kept = [r for r in self.read_metrics() if r.get("step", 0) <= last_step]
        write_text_atomic(self.metrics, "".join(json.dumps(r) + "\n" for r in kept))

    def load_or_make_fixed_noise(
        self, count: int, latent_dim: int, seed: int, write: bool = True
    ) -> np.ndarray:
        """The same noise for every sample grid of the run, resumes included. `write=False`
        for the processes of a distributed run that must not write the run directory."""
        if self.fixed_noise.is_file():
            noise = np.load(self.fixed_noise)
            if noise.shape == (count, latent_dim):
                return noise
        noise = np.random.default_rng(seed).standard_normal((count, latent_dim)).astype(np.float32)
        if not write:
            return noise
        buffer = io.BytesIO()
        np.save(buffer, noise)
        write_bytes_atomic(self.fixed_noise, buffer.getvalue())
        return noise
