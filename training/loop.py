"""One training session: load data, restore, run steps, log, sample, checkpoint, stop cleanly."""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from cgan.common.errors import TrainingError
from cgan.common.progress import Progress
from cgan.common.run_dir import RunDir
from cgan.training.config import TrainConfig, save_config
from cgan.training.data import LabelledImages, load_dataset
from cgan.training.pipeline import make_dataset
from cgan.training.plots import save_loss_curve, save_sample_grid
from cgan.training.runtime import GracefulStop, choose_strategy, describe
from cgan.training.trainer import GANTrainer


@dataclass
class SessionResult:
    step: int
    epoch: float
    stopped_by: int | None  # the signal that stopped the run early, if any
    checkpoint: str | None


def load_training_data(config: TrainConfig) -> LabelledImages:
    data = load_dataset(
        config.data,
        config.resolution,
        seed=config.seed,
        synthetic_classes=config.synthetic_classes,
        synthetic_per_class=config.synthetic_per_class,
    )
    if config.labels and config.labels != data.names:
        raise TrainingError(
            f"cannot resume: the data's labels {data.names} differ from the run's {config.labels}"
        )
    if len(data) < config.batch_size:
        raise TrainingError(
            f"the dataset has {len(data)} images, fewer than one batch "
            f"({config.batch_size}); lower --batch-size"
        )
    return data


class _MetricsWindow:
    """Step metrics and timings between two log records; one record summarises them."""

    def __init__(self, images_per_step: int) -> None:
        self.images_per_step = images_per_step
        self._reset()

    def _reset(self) -> None:
        self.metrics: list[dict[str, tf.Tensor]] = []
        self.in_step = 0.0
        self.started = time.perf_counter()

    def add(self, metrics: dict[str, tf.Tensor], step_seconds: float) -> None:
        self.metrics.append(metrics)
        self.in_step += step_seconds

    def record(self, step: int, epoch: float, cpu_seconds: float) -> dict:
        """Means of the window's metrics, throughput, and the loop's own overhead: the
        share of wall time outside the compiled step (logging, grids, checkpoints)."""
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        record: dict = {"step": step, "epoch": round(epoch, 4)}
        for name in self.metrics[0]:
            record[name] = float(np.mean([m[name].numpy() for m in self.metrics]))
        record["images_per_sec"] = len(self.metrics) * self.images_per_step / elapsed
        record["loop_overhead"] = max(0.0, 1.0 - self.in_step / elapsed)
        record["cpu_minutes"] = round(cpu_seconds / 60.0, 3)
        record["time"] = time.time()
        self._reset()
        return record


def _show(bar: Progress, record: dict) -> None:
    """The newest losses beside the bar, and as a line of its own in a log."""
    bar.status(
        {
            "epoch": f"{record['epoch']:.2f}",
            "img/s": f"{record['images_per_sec']:.0f}",
            "D": f"{record['d_loss']:.3f}",
            "G": f"{record['g_loss']:.3f}",
            "D(x)": f"{record['d_real']:.2f}",
            "D(G(z))": f"{record['d_fake']:.2f}",
        }
    )
    bar.line()


def train(config: TrainConfig, run_dir: Path, resume: bool, progress: bool = True) -> SessionResult:
    """Train until config.steps generator steps or a stop signal, whichever comes first."""
    run = RunDir(run_dir)
    if config.imagenet_projected:  # a missing imagenet extra is one line, before the data
        from cgan.training.models.projected import feature_weights

        feature_weights()
    data = load_training_data(config)
    config.labels = list(data.names)
    run.create()
    save_config(config, run.root)

    keras.utils.set_random_seed(config.seed)
    strategy = choose_strategy(config.multi_worker)
    if config.batch_size % strategy.num_replicas_in_sync:
        raise TrainingError(
            f"batch size {config.batch_size} does not split over "
            f"{strategy.num_replicas_in_sync} replicas"
        )
    # Layers take the policy in force when they are built; restore it afterwards so
    # that nothing else in the process (tests, a second run) inherits float16.
    previous_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(
        "mixed_float16" if config.mixed_precision else "float32"
    )
    try:
        trainer = GANTrainer(config, strategy, run)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    restored = trainer.restore_latest() if resume else None
    if resume and restored is None:
        print(f"no checkpoint in {run.checkpoints}: starting from step 0", file=sys.stderr)
    start_step = int(trainer.step.numpy())
    run.truncate_metrics(start_step)
    if progress:
        counts = ", ".join(f"{k} {v}" for k, v in data.class_counts().items())
        state = f"resuming at step {start_step}" if restored else "new run"
        print(
            f"{len(data)} images in {len(data.names)} classes ({counts[:300]}); "
            f"{describe(strategy)}; {state} -> {run.root}",
            file=sys.stderr,
        )

    global_batch = config.batch_size
    dataset = make_dataset(
        data.images,
        data.labels,
        global_batch,
        config.seed,
        start_example=trainer.examples_seen(global_batch),
    )
    iterator = iter(strategy.experimental_distribute_dataset(dataset))
    fixed_noise = run.load_or_make_fixed_noise(
        config.samples_per_class, config.latent_dim, config.seed
    )
    epoch_of = lambda: trainer.examples_seen(global_batch) / len(data)  # noqa: E731
    cpu_at_start, cpu_before = time.process_time(), float(trainer.cpu_seconds.numpy())
    cpu_seconds = lambda: cpu_before + time.process_time() - cpu_at_start  # noqa: E731
    cpu_budget = config.cpu_minutes * 60.0 if config.cpu_minutes > 0 else math.inf

    def sample(path: Path) -> None:
        save_sample_grid(trainer.generate, fixed_noise, config.labels, path)

    def checkpoint_now() -> str:
        trainer.cpu_seconds.assign(cpu_seconds())
        path = trainer.save()
        run.write_progress(
            {
                "step": int(trainer.step.numpy()),
                "epoch": round(epoch_of(), 4),
                "cpu_hours": round(cpu_seconds() / 3600.0, 6),
                "examples_seen": trainer.examples_seen(global_batch),
                "dataset_size": len(data),
                "checkpoint": Path(path).name,
                "time": time.time(),
            }
        )
        return path

    with GracefulStop() as stop:
        while int(trainer.pretrain_step.numpy()) < config.d_pretrain_steps and not stop.requested:
            trainer.pretrain_step_fn(iterator)

        bar = Progress(
            "cgan-train",
            config.steps,
            "steps",
            initial=start_step,
            enabled=progress,
            log_every_tenth=False,
        )
        window = _MetricsWindow(global_batch * config.d_steps)
        step, last_epoch = start_step, math.floor(epoch_of())
        checkpoint, saved_step = restored, (start_step if restored else None)
        try:
            while step < config.steps and not stop.requested and cpu_seconds() < cpu_budget:
                step_started = time.perf_counter()
                window.add(trainer.train_step(iterator), time.perf_counter() - step_started)
                step += 1
                bar.advance()
                if step % config.log_every == 0 or step == config.steps:
                    record = window.record(step, epoch_of(), cpu_seconds())
                    run.append_metrics(record)
                    _show(bar, record)
                epoch = math.floor(epoch_of())
                if epoch > last_epoch:
                    sample(run.sample_grid(epoch))
                    last_epoch = epoch
                if step % config.checkpoint_every == 0:
                    checkpoint, saved_step = checkpoint_now(), step
                    save_loss_curve(run.read_metrics(), run.loss_curve)
        finally:
            bar.close()
            if saved_step != int(trainer.step.numpy()):
                checkpoint = checkpoint_now()
            save_loss_curve(run.read_metrics(), run.loss_curve)
            sample(run.samples / "latest.png")
    if cpu_seconds() >= cpu_budget and progress:
        print(f"the run has used its {config.cpu_minutes:g} CPU minutes", file=sys.stderr)
    return SessionResult(
        step=int(trainer.step.numpy()),
        epoch=epoch_of(),
        stopped_by=stop.requested,
        checkpoint=checkpoint,
    )
