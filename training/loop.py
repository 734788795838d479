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
from cgan.training.data import RecordSet, load_dataset
from cgan.training.labelled import LabelledImages
from cgan.training.pipeline import LABEL_OUT_OF_RANGE, training_dataset
from cgan.training.plots import save_loss_curve, save_sample_grid
from cgan.training.precision import choose_precision, cpu_flags
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
    named = config.data in ("cifar10", "synthetic")
    if config.labels and not named and not Path(config.data).exists():
        raise TrainingError(
            f"this run's data folder {config.data} does not exist here; resume with --data "
            f"PATH to a copy of its {len(config.labels)} classes"
        )
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


class _Session:
    """What one training session holds once it is set up: the run, the strategy, the data
    and its stream, the trainer and the clocks, and what it last saved."""

    def __init__(self, config: TrainConfig, run_dir: Path, progress: bool) -> None:
        self.config, self.run, self.progress = config, RunDir(run_dir), progress
        if config.imagenet_projected:  # a missing imagenet extra is one line, before the data
            from cgan.training.models.projected import feature_weights

            feature_weights()
        # MultiWorkerMirroredStrategy must exist before any other TensorFlow op of the process.
        self.strategy = choose_strategy(config.multi_worker)
        self.chief = bool(self.strategy.extended.should_checkpoint)
        # Resolved once, when the run is made: the saved config keeps what it trained in.
        config.precision, self.precision_why = resolve_precision(config.precision)
        self.data = load_training_data(config)
        config.labels = list(self.data.names)
        self.restored: str | None = None
        self.checkpoint: str | None = None
        self.saved_step: int | None = None
        self.finished = False  # False while a step may have failed half-way through a collective

    def say(self, line: str) -> None:
        if self.progress and self.chief:
            print(line, file=sys.stderr, flush=True)

    def epoch(self) -> float:
        return self.trainer.examples_seen() / len(self.data)

    def open(self, resume: bool, announce: str | None) -> None:
        """Check what can be checked, write the run's config, build or restore the trainer
        and open the data stream."""
        config, run = self.config, self.run
        transfer_from = None
        if config.init_from and not run.has_checkpoint():  # checked before anything is written
            transfer_from = open_source(config)
            config.init_source = transfer_from.describe()
        if announce and self.chief:
            print(f"cgan-train: {announce}", file=sys.stderr)
        # After the data's checks, so that bad data is still one line.
        self.say(f"cgan-train: precision {config.precision} ({self.precision_why})")
        # Before anything is written: a bad reference is one line, and the real side's
        # figures are ready before the first step.
        self.evaluator = (
            SnapshotEvaluator(config, run, self.data) if config.eval_every and self.chief else None
        )
        if self.chief:
            run.create()
            save_config(config, run.root)
        replicas = self.strategy.num_replicas_in_sync
        if config.batch_size % replicas:
            raise TrainingError(
                f"batch size {config.batch_size} does not split over {replicas} replicas"
            )
        self.trainer = _build_trainer(config, self.strategy, run)
        self.restored = self.trainer.restore_latest() if resume else None
        if resume and self.restored is None and self.trainer.checkpoints.restore_attempted:
            # A checkpoint that failed half-way may have set some variables: start clean.
            self.trainer = _build_trainer(config, self.strategy, run)
        if transfer_from is not None and self.restored is None:
            line = initialise_from(self.trainer, transfer_from)
            if self.chief:
                print(line, file=sys.stderr)
        self.start_step = int(self.trainer.step.numpy())
        self.checkpoint = self.restored
        self.saved_step = self.start_step if self.restored else None
        if self.trainer.cluster.workers > 1:
            _check_same_start(self.trainer, self.start_step)
        if resume and self.restored is None and self.chief:
            print(f"no checkpoint in {run.checkpoints}: starting from step 0", file=sys.stderr)
        if self.chief:
            run.truncate_metrics(self.start_step)
        counts = ", ".join(f"{k} {v}" for k, v in self.data.class_counts().items())
        state = f"resuming at step {self.start_step}" if self.restored else "new run"
        self.say(
            f"{len(self.data)} images in {len(self.data.names)} classes ({counts[:300]}); "
            f"{describe(self.strategy)}; {state} -> {run.root}"
        )
        self.iterator = self._stream()
        self.fixed_noise = run.load_or_make_fixed_noise(
            config.samples_per_class, config.latent_dim, config.seed, write=self.chief
        )
        self.clock = _CpuClock(self.trainer)

    def _stream(self):
        """Every worker builds the same stream and keeps its own slice of each global
        batch, so the batches are those of a one-process run (no file-based sharding)."""
        dataset = training_dataset(  # streamed from disk for a records folder
            self.data,
            self.config.batch_size,
            self.config.seed,
            start_example=self.trainer.examples_seen(),
        )
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA
        )
        return iter(self.strategy.experimental_distribute_dataset(dataset.with_options(options)))

    def sample(self, path: Path) -> None:
        if self.chief:
            save_sample_grid(self.trainer.generate, self.fixed_noise, self.config.labels, path)

    def save(self) -> None:
        """A checkpoint (every worker: the save is collective) and the progress file."""
        trainer, clock = self.trainer, self.clock
        trainer.cpu_seconds.assign(clock.total)
        path = trainer.save()
        step = int(trainer.step.numpy())
        if self.chief:
            self.run.write_progress(
                {
                    "step": step,
                    "epoch": round(self.epoch(), 4),
                    "cpu_hours": round(clock.total / 3600.0, 6),
                    "examples_seen": trainer.examples_seen(),
                    "dataset_size": len(self.data),
                    "checkpoint": Path(path).name,
                    "time": time.time(),
                }
            )
        self.checkpoint, self.saved_step = path, step

    def evaluate(self, step: int) -> None:
        """Measure the snapshot just saved; its CPU time is not the training's."""
        started = time.process_time()
        self.say(f"cgan-train: measuring step {step}")
        record = self.evaluator.evaluate(
            step, self.epoch(), self.clock.total / 60.0, self.checkpoint, self.trainer.generate
        )
        self.clock.exclude(time.process_time() - started)
        if self.progress:
            print(f"cgan-train: {self.evaluator.line(record)}", file=sys.stderr, flush=True)

    def run_steps(self, stop: GracefulStop, cpu_budget: float) -> None:
        """The D warm-up, then generator steps until the last one, a signal or the budget,
        with records, sample grids, checkpoints and snapshot evaluations on the way."""
        config, trainer, run = self.config, self.trainer, self.run
        bar = Progress(
            "cgan-train",
            config.final_step,
            "steps",
            initial=self.start_step,
            enabled=self.progress and self.chief,
            log_every_tenth=False,
        )
        window = _MetricsWindow(config.batch_size * config.d_steps)
        step, last_epoch = self.start_step, math.floor(self.epoch())
        try:
            while (
                int(trainer.pretrain_step.numpy()) < config.d_pretrain_steps and not stop.requested
            ):
                trainer.pretrain_step_fn(self.iterator)
            while step < config.final_step and not self.clock.stop_agreed(
                stop.requested, cpu_budget
            ):
                trainer.apply_learning_rates(step)
                step_started = time.perf_counter()
                window.add(trainer.train_step(self.iterator), time.perf_counter() - step_started)
                step += 1
                bar.advance()
                if step % config.log_every == 0 or step == config.final_step:
                    record = window.record(step, self.epoch(), self.clock.total)
                    if self.chief:
                        run.append_metrics(record)
                    _show(bar, record)
                epoch = math.floor(self.epoch())
                if epoch > last_epoch:
                    self.sample(run.sample_grid(epoch))
                    last_epoch = epoch
                # Every worker saves at a snapshot (a save is collective); the chief measures.
                snapshot = config.is_snapshot(step)
                if step % config.checkpoint_every == 0 or snapshot:
                    self.save()
                    if self.chief:
                        save_loss_curve(run.training_records(), run.loss_curve)
                if snapshot and self.evaluator:
                    self.evaluate(step)
            self.finished = True
        except tf.errors.OpError as exc:
            raise self._explained(exc) from None
        finally:
            bar.close()
            self.close()

    def _explained(self, exc: tf.errors.OpError) -> Exception:
        """A TensorFlow failure inside the loop as the one line that says what to do."""
        config = self.config
        if isinstance(exc, tf.errors.DataLossError):  # a record whose bytes changed on disk
            reason = _reason(exc, ("corrupt", "crc", "truncat"))
            return TrainingError(
                f"damaged data in {config.data} ({reason}); write it again (cgan-prepare) "
                "and continue with --resume"
            )
        if LABEL_OUT_OF_RANGE in str(exc.message):
            return TrainingError(
                f"damaged data in {config.data}: {LABEL_OUT_OF_RANGE} "
                f"(0..{len(config.labels) - 1}); write it again (cgan-prepare)"
            )
        if self.trainer.cluster.workers == 1:
            return exc
        return TrainingError(
            f"lost another worker of the cluster ({_reason(exc, _PEER_LOST)}); start every "
            f"worker again with --resume: training goes on from step {self.saved_step or 0}"
        )

    def close(self) -> None:
        """The last checkpoint, loss curve and sample grid, however the loop ended."""
        trainer = self.trainer
        # After a failed collective the others may be gone: a save would wait for them.
        may_save = self.finished or trainer.cluster.workers == 1
        if may_save and self.saved_step != int(trainer.step.numpy()):
            self.save()
        if self.chief:
            save_loss_curve(self.run.training_records(), self.run.loss_curve)
            self.sample(self.run.samples / "latest.png")


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
    session = _Session(config, run_dir, progress)
    session.open(resume, announce)
    trainer, evaluator = session.trainer, session.evaluator
    cpu_budget = config.cpu_minutes * 60.0 if config.cpu_minutes > 0 else math.inf
    trainer.apply_learning_rates(session.start_step)
    if (
        evaluator
        and session.restored
        and config.is_snapshot(session.start_step)
        and not evaluator.measured(session.start_step)
    ):
        session.evaluate(session.start_step)  # killed during this evaluation: measure it now
    with GracefulStop() as stop:
        session.run_steps(stop, cpu_budget)
    if session.clock.total >= cpu_budget:
        session.say(f"the run has used its {config.cpu_minutes:g} CPU minutes")
    if evaluator and progress:
        for line in evaluator.summary(session.clock.total / 60.0):
            print(f"cgan-train: {line}", file=sys.stderr)
    return SessionResult(
        step=int(trainer.step.numpy()),
        epoch=session.epoch(),
        stopped_by=stop.requested,
        checkpoint=session.checkpoint,
        worker=trainer.cluster.index,
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
        if self.trainer.cluster.workers == 1:
            return wants_stop
        own = time.process_time() - self.started
        gathered = self.trainer.cluster.gather([float(wants_stop), own])
        self.others = float(gathered[:, 1].sum()) - own
        # Decided from the gathered figures alone, so that every worker decides the same.
        return bool(gathered[:, 0].any()) or self.before + gathered[:, 1].sum() >= cpu_budget


def _reason(exc: tf.errors.OpError, words: tuple[str, ...]) -> str:
    """The line of TensorFlow's long graph error that says what happened."""
    for line in str(exc.message).splitlines():
        if any(word in line.lower() for word in words):
            return line.strip()[:160]
    return type(exc).__name__


def resolve_precision(requested: str) -> tuple[str, str]:
    """The Keras policy for `requested` on this machine, and why (training/precision.py)."""
    return choose_precision(requested, bool(tf.config.list_logical_devices("GPU")), cpu_flags())


def _build_trainer(
    config: TrainConfig, strategy: tf.distribute.Strategy, run: RunDir
) -> GANTrainer:
    """A trainer with the run's initial weights (seeded here, so that a rebuilt one starts
    exactly like a new run). Layers take the policy in force when they are built; restore it
    afterwards so that nothing else in the process (tests, a second run) inherits float16."""
    keras.utils.set_random_seed(config.seed)
    previous_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(resolve_precision(config.precision)[0])
    try:
        return GANTrainer(config, strategy, run)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)


def _check_same_start(trainer: GANTrainer, step: int) -> None:
    """Workers that restored different checkpoints would deadlock in the first step."""
    steps = trainer.cluster.gather([float(step)])[:, 0]
    if len(set(steps.tolist())) > 1:
        found = ", ".join(f"worker {k}: step {int(s)}" for k, s in enumerate(steps))
        raise TrainingError(
            f"the workers restored different checkpoints ({found}); every worker must see "
            "the same --run-dir (a shared folder)"
        )
