"""Training that measures itself: every `eval_every` steps the EMA generator's quality figures
(cgan.evaluation.snapshot, the evaluation stage's own code) go into metrics.jsonl with the
step, epoch and CPU time, and with `keep_best` the best snapshot is kept apart from the
rolling checkpoints in RUN/best/.

A snapshot is measured right after its checkpoint is written, and its record is written
last: a run killed during an evaluation resumes from that checkpoint and measures it again,
so the records of an interrupted run are those of an uninterrupted one. The evaluation's
CPU time is not training time: it is kept out of --cpu-minutes and reported on its own.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from cgan.common.errors import EvaluationError, TrainingError
from cgan.common.records import MANIFEST_NAME
from cgan.common.run_dir import EVALUATION, RunDir
from cgan.evaluation.snapshot import Figure, Generate, SnapshotMeter
from cgan.training.config import TrainConfig
from cgan.training.data import RecordSet
from cgan.training.labelled import LabelledImages

# The figures a record carries, in the order a log line shows them.
_SHOWN = {
    "accuracy": "accuracy",
    "probe_accuracy": "probe accuracy",
    "frechet_distance": "fd",
    "imagenet_frechet_distance": "fd",
    "precision": "precision",
    "imagenet_precision": "precision",
    "recall": "recall",
    "imagenet_recall": "recall",
}


def _image_source(
    config: TrainConfig, data: LabelledImages | RecordSet | None
) -> Path | LabelledImages:
    """The training images as the meter reads them: a class folder by its path (its
    features are cached), images in memory as they are; a records folder cannot be read."""
    if isinstance(data, LabelledImages):
        folder = Path(config.data)
        if folder.is_dir() and not (folder / MANIFEST_NAME).is_file():
            return folder
        return data
    raise TrainingError(
        "--eval-every without the training images in memory (a records folder) needs "
        "--eval-reference FOLDER (a class folder of real images) and the judge's classes"
    )


class SnapshotEvaluator:
    """When to measure, what to write, and which snapshot is the best so far."""

    def __init__(
        self, config: TrainConfig, run: RunDir, data: LabelledImages | RecordSet | None
    ) -> None:
        """`data` is the run's training data (the default reference, the probe's training
        images); None to measure against config.eval_reference alone."""
        self.config = config
        self.run = run
        reference: Path | LabelledImages
        if config.eval_reference:
            reference = Path(config.eval_reference)
            if not reference.is_dir():
                raise TrainingError(
                    f"--eval-reference {config.eval_reference} does not exist or is not a folder"
                )
        else:
            reference = _image_source(config, data)
        try:
            probe_train = _image_source(config, data)
        except TrainingError:
            probe_train = reference  # only the probe judge needs it; the judge does not
        try:
            self.meter = SnapshotMeter(
                config.labels,
                config.resolution,
                config.latent_dim,
                config.eval_samples,
                reference,
                probe_train,
                config.to_dict(),
            )
        except EvaluationError as exc:
            raise TrainingError(f"--eval-every: {exc}") from None
        self.best_figure = self.meter.figure(config.keep_best) if config.keep_best else None

    def measured(self, step: int) -> bool:
        return any(r.get("step") == step for r in self.run.evaluation_records())

    def evaluate(
        self,
        step: int,
        epoch: float,
        cpu_minutes: float,
        checkpoint: str | None,
        generate: Generate,
    ) -> dict[str, Any]:
        """Measure the snapshot, keep it if it is the best, then write its record."""
        started = time.process_time()
        figures = self.meter.measure(generate)
        record: dict[str, Any] = {
            "kind": EVALUATION,
            "step": step,
            "epoch": round(epoch, 4),
            "cpu_minutes": round(cpu_minutes, 3),
            **figures,
            "eval_cpu_seconds": round(time.process_time() - started, 2),
            "protocol": self.meter.describe(),
            "time": time.time(),
        }
        if self.best_figure is not None and checkpoint is not None:
            key, old = self.best_figure.key, self.run.read_best().get(self.best_figure.key)
            if not isinstance(old, (int, float)) or self.best_figure.better(record[key], old):
                self.run.keep_best(Path(checkpoint), {**record, "figure": key})
        self.run.append_metrics(record)
        return record

    @staticmethod
    def line(record: dict[str, Any]) -> str:
        shown = ", ".join(
            f"{name} {record[key]:.4g}" for key, name in _SHOWN.items() if key in record
        )
        return f"step {record['step']}: {shown} ({record['eval_cpu_seconds']:.1f} CPU-s)"

    def summary(self, training_cpu_minutes: float) -> list[str]:
        """The run's evaluations in a few lines: their cost, the best step, a plateau."""
        return summarise(
            self.run.evaluation_records(),
            training_cpu_minutes,
            self.best_figure,
            self.config.plateau_evaluations,
            str(self.run.root),
        )


def summarise(
    records: list[dict[str, Any]],
    training_cpu_minutes: float,
    figure: Figure | None,
    plateau_evaluations: int,
    run_name: str,
) -> list[str]:
    """What the end of a run says of its evaluations: their CPU cost against the
    training's, and with a figure to rank by, the best step and whether the last
    `plateau_evaluations` brought no improvement (the plateau to stop at)."""
    if not records:
        return []
    cost = sum(r.get("eval_cpu_seconds", 0.0) for r in records) / 60.0
    # The share of one interval: an evaluation against the training between two of them
    # (for a single one, the training before it).
    minutes = [r.get("cpu_minutes", 0.0) for r in records]
    interval = (minutes[-1] - minutes[0]) / (len(minutes) - 1) if len(minutes) > 1 else minutes[0]
    share = cost / len(records) / interval if interval > 0 else 0.0
    lines = [
        f"evaluation: {len(records)} snapshots, {cost:.2f} CPU-minutes, {share:.1%} of the "
        f"training's CPU time between two (training: {training_cpu_minutes:.1f} CPU-minutes)"
    ]
    if figure is None:
        return lines
    key = figure.key
    ranked = [r for r in records if isinstance(r.get(key), (int, float))]
    if not ranked:
        return lines
    best_at = 0
    for index, record in enumerate(ranked):
        if figure.better(record[key], ranked[best_at][key]):
            best_at = index
    best = ranked[best_at]
    lines.append(
        f"best {key} {best[key]:.4g} at step {best['step']} (cgan-export {run_name} "
        "--checkpoint best)"
    )
    since = len(ranked) - 1 - best_at
    if since >= plateau_evaluations:
        lines.append(
            f"warning: {key} has not improved in the last {since} evaluations: "
            "training may have stopped improving"
        )
    return lines
