"""The files of a run directory, in one place so that every stage agrees on them.

Training writes a run, export and the dashboard read it: all three go through `RunDir`,
so a file name or format changes here and nowhere else. Needs numpy and the standard
library only (the dashboard reads runs without TensorFlow).
"""

from __future__ import annotations

import io
import json
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cgan.common.errors import CganError
from cgan.common.files import atomic_path, write_bytes_atomic, write_text_atomic

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CONFIG_NAME = "config.toml"
# metrics.jsonl holds two kinds of records: training windows (losses, throughput) and, with
# --eval-every, quality figures of a snapshot, marked with this kind.
EVALUATION = "evaluation"
BEST = "best"  # the name export takes for the best checkpoint (--checkpoint best)
MAX_RECORD_BYTES = 2**20  # progress.json and best.json hold a few lines


_CHECKPOINT = re.compile(r"ckpt-[0-9]{1,12}")


def _read_json(path: Path) -> Any:
    """A small JSON record's value (progress.json, best.json), or None when it is absent
    or damaged in any way, a file too large to be one included."""
    try:  # a plain file only: reading a FIFO left there would wait for ever
        if not path.is_file() or path.stat().st_size > MAX_RECORD_BYTES:
            return None
        return json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError):  # ValueError: not UTF-8, not JSON
        return None


def _step(record: dict[str, Any]) -> int:
    step = record.get("step", 0)
    return step if isinstance(step, int) else 0


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
    def best(self) -> Path:
        """best/: a copy of the best measured checkpoint and best.json, its figures."""
        return self.root / BEST

    def read_best(self) -> dict[str, Any]:
        """best.json, or {} when absent or not a record that names a checkpoint here."""
        record = _read_json(self.best / "best.json")
        name = record.get("checkpoint") if isinstance(record, dict) else None
        if not isinstance(name, str) or not _CHECKPOINT.fullmatch(name):
            return {}
        if not (self.best / f"{name}.index").is_file():
            return {}
        return record

    def best_checkpoint(self) -> Path | None:
        """The prefix of the kept best checkpoint, if there is one."""
        record = self.read_best()
        return self.best / record["checkpoint"] if record else None

    def keep_best(self, prefix: Path, record: dict[str, Any]) -> None:
        """Copy checkpoint `prefix` (checkpoints/ckpt-N) to best/ with its figures. The new
        files land first and best.json names them atomically; only then do the old go, so a
        kill at any point leaves a best.json whose checkpoint is whole."""
        self.best.mkdir(parents=True, exist_ok=True)
        for part in self.checkpoints.glob(prefix.name + ".*"):
            with atomic_path(self.best / part.name) as temporary:
                shutil.copyfile(part, temporary)
        write_text_atomic(
            self.best / "best.json",
            json.dumps({**record, "checkpoint": prefix.name}, indent=2) + "\n",
        )
        for old in self.best.glob("ckpt-*"):
            if old.name.split(".", 1)[0] != prefix.name:
                old.unlink(missing_ok=True)

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
        """progress.json, or {} when absent or damaged (not UTF-8, not JSON, not a record):
        its readers then fall back to the metrics line or an estimate."""
        record = _read_json(self.progress)
        return record if isinstance(record, dict) else {}

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
        """All complete records of both kinds; a line cut by a kill mid-write, or damaged
        otherwise (not UTF-8, not JSON), is ignored."""
        if not self.metrics.is_file():
            return []
        records = []
        for line in self.metrics.read_bytes().splitlines():
            try:
                record = json.loads(line.decode("utf-8"))
            except (ValueError, RecursionError):  # not UTF-8, not JSON, nested too deep
                continue
            if isinstance(record, dict):
                records.append(record)
        return records

    def training_records(self) -> list[dict[str, Any]]:
        """The training windows: losses, D's outputs, throughput."""
        return [r for r in self.read_metrics() if r.get("kind") != EVALUATION]

    def evaluation_records(self) -> list[dict[str, Any]]:
        """The quality figures of the measured snapshots, in the order they were written."""
        return [r for r in self.read_metrics() if r.get("kind") == EVALUATION]

    def truncate_metrics(self, last_step: int) -> None:
        """Drop records past the checkpoint a resume starts from: no step appears twice."""
        kept = [r for r in self.read_metrics() if _step(r) <= last_step]
        write_text_atomic(self.metrics, "".join(json.dumps(r) + "\n" for r in kept))

    def load_or_make_fixed_noise(
        self,
        count: int,
        latent_dim: int,
        seed: int,
        write: bool = True,
        warn: Callable[[str], None] | None = None,
    ) -> np.ndarray:
        """The same noise for every sample grid of the run, resumes included. `write=False`
        for the processes of a distributed run that must not write the run directory.

        A file that is not this run's noise (damaged, hand-edited, another shape) is moved
        to fixed_noise.damaged.npy, kept, and `warn` (stderr by default) is told in one line
        that the grids' noise changes there: never a traceback, never a silent change."""
        if self.fixed_noise.is_file():
            try:
                return self.read_fixed_noise(count, latent_dim)
            except CganError as exc:
                if write:
                    aside = self.fixed_noise.with_name("fixed_noise.damaged.npy")
                    try:
                        self.fixed_noise.replace(aside)
                    except OSError as error:
                        raise CganError(f"{exc}; cannot set it aside: {error}") from None
                    (warn or _to_stderr)(
                        f"{exc}; moved to {aside}: the sample grids from here on use new noise"
                    )
        noise = np.random.default_rng(seed).standard_normal((count, latent_dim)).astype(np.float32)
        if not write:
            return noise
        buffer = io.BytesIO()
        np.save(buffer, noise)
        write_bytes_atomic(self.fixed_noise, buffer.getvalue())
        return noise

    def read_fixed_noise(self, count: int, latent_dim: int) -> np.ndarray:
        """fixed_noise.npy as float32 of shape (count, latent_dim), or a `CganError` line.
        The header is checked before any data is read: a header may claim terabytes."""
        path, wanted = self.fixed_noise, (count, latent_dim)
        try:
            with path.open("rb") as stream:
                version = np.lib.format.read_magic(stream)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
                elif version == (2, 0):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
                else:
                    raise ValueError(f"format version {version} is not one numpy writes here")
                if shape != wanted or dtype.kind != "f" or dtype.itemsize > 8:
                    raise ValueError(f"it holds {dtype} of shape {shape}")
                stream.seek(0)
                noise = np.load(stream, allow_pickle=False).astype(np.float32)
        except (OSError, ValueError, EOFError) as exc:
            # numpy quotes the file's own header: printable characters only, one line.
            detail = "".join(ch if ch.isprintable() else " " for ch in str(exc)[:120])
            raise CganError(
                f"{path} is not this run's sample noise (float32 of shape {wanted}): {detail}"
            ) from None
        if not np.isfinite(noise).all():
            raise CganError(f"{path} is not this run's sample noise: it holds non-finite values")
        return noise


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr)
