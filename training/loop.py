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
from cgan.common.labels import labels_problem
from cgan.common.progress import Progress
from cgan.common.run_dir import RunDir
from cgan.training.config import TrainConfig, save_config
from cgan.training.data import LabelledImages, RecordSet, load_dataset
from cgan.training.pipeline import LABEL_OUT_OF_RANGE, training_dataset
from cgan.training.plots import save_loss_curve, save_sample_grid
from cgan.training.runtime import GracefulStop, choose_strategy, describe
from cgan.training.snapshots import SnapshotEvaluator
from cgan.training.trainer import GANTrainer
from cgan.training.transfer import initialise_from, open_source


@dataclass
class SessionResult:
    step: int
    epoch: float
    stopped_by: int | None  # the signal that stopped the run early, if any
    checkpoint: str | None  # None on the workers that are not the chief
    worker: int = 0  # this process's index in a distributed run, the chief being 0


def load_training_data(config: TrainConfig) -> LabelledImages | RecordSet:
    data = load_dataset(
        config.data,
        config.resolution,
        seed=config.seed,
        synthetic_classes=config.synthetic_classes,
        synthetic_per_class=config.synthetic_per_class,
    )
    problem = labels_problem(list(data.names))
    if problem:  # the exporter would refuse them: say so before hours of training
        raise TrainingError(f"the dataset's classes cannot be a model's labels: {problem}")
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


def train(
    config: TrainConfig,
    run_dir: Path,
    resume: bool,
    progress: bool = True,
    announce: str | None = None,
) -> SessionResult:
    """Train until config.final_step generator steps or a stop signal, whichever comes first.
    `announce` (the recipe chosen for the data) is printed once the data has passed its
    checks, so that bad data is still one line.

    With several workers every process runs this same loop in lockstep; the chief alone
    writes the run directory, and all of them stop at the same step."""
    run = RunDir(run_dir)
    if config.imagenet_projected:  # a missing imagenet extra is one line, before the data
        from cgan.training.models.projected import feature_weights

        feature_weights()
    # MultiWorkerMirroredStrategy must exist before any other TensorFlow op of the process.
    strategy = choose_strategy(config.multi_worker)
    chief = bool(strategy.extended.should_checkpoint)
    data = load_training_data(config)
    config.labels = list(data.names)
    transfer_from = None
    if config.init_from and not run.has_checkpoint():  # checked before anything is written
        transfer_from = open_source(config)
        config.init_source = transfer_from.describe()
    if announce and chief:
        print(f"cgan-train: {announce}", file=sys.stderr)
    # Before anything is written: a bad reference is one line, and the real side's
    # figures are ready before the first step.
    evaluator = SnapshotEvaluator(config, run, data) if config.eval_every and chief else None
    if chief:
        run.create()
        save_config(config, run.root)

    if config.batch_size % strategy.num_replicas_in_sync:
        raise TrainingError(
            f"batch size {config.batch_size} does not split over "
            f"{strategy.num_replicas_in_sync} replicas"
        )
    trainer = _build_trainer(config, strategy, run)
    restored = trainer.restore_latest() if resume else None
    if resume and restored is None and trainer.restore_attempted:
        # A checkpoint that failed half-way may have set some variables: start clean.
        trainer = _build_trainer(config, strategy, run)
    if transfer_from is not None and restored is None:
        line = initialise_from(trainer, transfer_from)
        if chief:
            print(line, file=sys.stderr)
    start_step = int(trainer.step.numpy())
    if trainer.workers > 1:
        _check_same_start(trainer, start_step)
    if resume and restored is None and chief:
        print(f"no checkpoint in {run.checkpoints}: starting from step 0", file=sys.stderr)
    if chief:
        run.truncate_metrics(start_step)
    if progress and chief:
        counts = ", ".join(f"{k} {v}" for k, v in data.class_counts().items())
        state = f"resuming at step {start_step}" if restored else "new run"
        print(
            f"{len(data)} images in {len(data.names)} classes ({counts[:300]}); "
            f"{describe(strategy)}; {state} -> {run.root}",
            file=sys.stderr,
        )

    global_batch = config.batch_size
    dataset = training_dataset(  # streamed from disk for a records folder
        data,
        global_batch,
        config.seed,
        start_example=trainer.examples_seen(),
    )
    # Every worker builds the same stream and keeps its own slice of each global batch,
    # so the batches are those of a one-process run (no file-based sharding).
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    iterator = iter(strategy.experimental_distribute_dataset(dataset.with_options(options)))
    fixed_noise = run.load_or_make_fixed_noise(
        config.samples_per_class, config.latent_dim, config.seed, write=chief
    )
    epoch_of = lambda: trainer.examples_seen() / len(data)  # noqa: E731
    clock = _CpuClock(trainer)
    cpu_budget = config.cpu_minutes * 60.0 if config.cpu_minutes > 0 else math.inf

    def sample(path: Path) -> None:
        if chief:
            save_sample_grid(trainer.generate, fixed_noise, config.labels, path)

    def checkpoint_now() -> str | None:
        trainer.cpu_seconds.assign(clock.total)
        path = trainer.save()
        if chief:
            run.write_progress(
                {
                    "step": int(trainer.step.numpy()),
                    "epoch": round(epoch_of(), 4),
                    "cpu_hours": round(clock.total / 3600.0, 6),
                    "examples_seen": trainer.examples_seen(),
                    "dataset_size": len(data),
                    "checkpoint": Path(path).name,
                    "time": time.time(),
                }
            )
        return path

    def evaluate(step: int, checkpoint: str | None) -> None:
        """Measure the snapshot just saved; its CPU time is not the training's."""
        started = time.process_time()
        if progress:
            print(f"cgan-train: measuring step {step}", file=sys.stderr, flush=True)
        record = evaluator.evaluate(
            step, epoch_of(), clock.total / 60.0, checkpoint, trainer.generate
        )
        clock.exclude(time.process_time() - started)
        if progress:
            print(f"cgan-train: {evaluator.line(record)}", file=sys.stderr, flush=True)

    trainer.apply_learning_rates(start_step)
    if (
        evaluator
        and restored
        and config.is_snapshot(start_step)
        and not evaluator.measured(start_step)
    ):
        evaluate(start_step, restored)  # killed during this evaluation: measure it now
    with GracefulStop() as stop:
        bar = Progress(
            "cgan-train",
            config.final_step,
            "steps",
            initial=start_step,
            enabled=progress and chief,
            log_every_tenth=False,
        )
        window = _MetricsWindow(global_batch * config.d_steps)
        step, last_epoch = start_step, math.floor(epoch_of())
        checkpoint, saved_step = restored, (start_step if restored else None)
        finished = False  # False while a step may have failed half-way through a collective
        try:
            while (
                int(trainer.pretrain_step.numpy()) < config.d_pretrain_steps and not stop.requested
            ):
                trainer.pretrain_step_fn(iterator)
            while step < config.final_step and not clock.stop_agreed(stop.requested, cpu_budget):
                trainer.apply_learning_rates(step)
                step_started = time.perf_counter()
                window.add(trainer.train_step(iterator), time.perf_counter() - step_started)
                step += 1
                bar.advance()
                if step % config.log_every == 0 or step == config.final_step:
                    record = window.record(step, epoch_of(), clock.total)
                    if chief:
                        run.append_metrics(record)
                    _show(bar, record)
                epoch = math.floor(epoch_of())
                if epoch > last_epoch:
                    sample(run.sample_grid(epoch))
                    last_epoch = epoch
                # Every worker saves at a snapshot (a save is collective); the chief measures.
                snapshot = config.is_snapshot(step)
                if step % config.checkpoint_every == 0 or snapshot:
                    checkpoint, saved_step = checkpoint_now(), step
                    if chief:
                        save_loss_curve(run.training_records(), run.loss_curve)
                if snapshot and evaluator:
                    evaluate(step, checkpoint)
            finished = True
        except tf.errors.DataLossError as exc:  # a record whose bytes changed on disk
            reason = _reason(exc, ("corrupt", "crc", "truncat"))
            raise TrainingError(
                f"damaged data in {config.data} ({reason}); write it again (cgan-prepare) "
                "and continue with --resume"
            ) from None
        except tf.errors.OpError as exc:
            if LABEL_OUT_OF_RANGE in str(exc.message):
                raise TrainingError(
                    f"damaged data in {config.data}: {LABEL_OUT_OF_RANGE} "
                    f"(0..{len(config.labels) - 1}); write it again (cgan-prepare)"
                ) from None
            if trainer.workers == 1:
                raise
            raise TrainingError(
                f"lost another worker of the cluster ({_reason(exc, _PEER_LOST)}); start every "
                f"worker again with --resume: training goes on from step {saved_step or 0}"
            ) from None
        finally:
            bar.close()
            # After a failed collective the others may be gone: a save would wait for them.
            if (finished or trainer.workers == 1) and saved_step != int(trainer.step.numpy()):
                checkpoint = checkpoint_now()
            if chief:
                save_loss_curve(run.training_records(), run.loss_curve)
                sample(run.samples / "latest.png")
    if clock.total >= cpu_budget and progress and chief:
        print(f"the run has used its {config.cpu_minutes:g} CPU minutes", file=sys.stderr)
    if evaluator and progress:
        for line in evaluator.summary(clock.total / 60.0):
            print(f"cgan-train: {line}", file=sys.stderr)
    return SessionResult(
        step=int(trainer.step.numpy()),
        epoch=epoch_of(),
        stopped_by=stop.requested,
        checkpoint=checkpoint,
        worker=trainer.worker_index,
    )


_PEER_LOST = ("aborted", "closed", "unavailable", "deadline")


class _CpuClock:
    """Training CPU time over all sessions and all workers, and the shared stop decision."""

    def __init__(self, trainer: GANTrainer) -> None:
        self.trainer = trainer
        self.before = float(trainer.cpu_seconds.numpy())
        self.started = time.process_time()
        self.others = 0.0  # the other workers' CPU time this session, as of the last step

    @property
    def total(self) -> float:
        return self.before + time.process_time() - self.started + self.others

    def exclude(self, seconds: float) -> None:
        """Take CPU time spent on something else than training (an evaluation) off."""
        self.before -= seconds

    def stop_agreed(self, signal_number: int | None, cpu_budget: float) -> bool:
        """Whether to stop before the next step: a signal or the budget, on any worker."""
        wants_stop = signal_number is not None or self.total >= cpu_budget
        if self.trainer.workers == 1:
            return wants_stop
        own = time.process_time() - self.started
        gathered = self.trainer.gather_from_workers([float(wants_stop), own])
        self.others = float(gathered[:, 1].sum()) - own
        # Decided from the gathered figures alone, so that every worker decides the same.
        return bool(gathered[:, 0].any()) or self.before + gathered[:, 1].sum() >= cpu_budget


def _reason(exc: tf.errors.OpError, words: tuple[str, ...]) -> str:
    """The line of TensorFlow's long graph error that says what happened."""
    for line in str(exc.message).splitlines():
        if any(word in line.lower() for word in words):
            return line.strip()[:160]
    return type(exc).__name__


def _build_trainer(
    config: TrainConfig, strategy: tf.distribute.Strategy, run: RunDir
) -> GANTrainer:
    """A trainer with the run's initial weights (seeded here, so that a rebuilt one starts
    exactly like a new run). Layers take the policy in force when they are built; restore it
    afterwards so that nothing else in the process (tests, a second run) inherits float16."""
    keras.utils.set_random_seed(config.seed)
    previous_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(
        "mixed_float16" if config.mixed_precision else "float32"
    )
    try:
        return GANTrainer(config, strategy, run)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)


def _check_same_start(trainer: GANTrainer, step: int) -> None:
    """Workers that restored different checkpoints would deadlock in the first step."""
    steps = trainer.gather_from_workers([float(step)])[:, 0]
    if len(set(steps.tolist())) > 1:
        found = ", ".join(f"worker {k}: step {int(s)}" for k, s in enumerate(steps))
        raise TrainingError(
            f"the workers restored different checkpoints ({found}); every worker must see "
            "the same --run-dir (a shared folder)"
        )
