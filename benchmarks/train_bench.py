"""Training speed: images/s of the compiled train step per arch and batch size, and the
overhead of the full loop (logging, sample grids, checkpoints) against the bare step.

    python benchmarks/train_bench.py [--steps 12] [--archs sngan,dcgan] [--batches 64,128]
    python benchmarks/train_bench.py --precisions float32,mixed_bfloat16 [--rounds 3]

Widths are those of the cifar10 preset; data are synthetic 32x32 images held in memory,
which is what the CIFAR-10 pipeline feeds too. --precisions compares the compiled step of
the shipped recipe (cifar10 preset, batch 32) under each Keras dtype policy, the policies
taking turns for --rounds rounds, with the CPU's bfloat16 flags.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from cgan.training.runtime import quiet_tensorflow

quiet_tensorflow()

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from cgan.common.run_dir import RunDir  # noqa: E402
from cgan.training.config import make_config  # noqa: E402
from cgan.training.loop import train  # noqa: E402
from cgan.training.pipeline import make_dataset  # noqa: E402
from cgan.training.precision import BF16_FLAGS, cpu_flags  # noqa: E402
from cgan.training.shapes import make_shapes  # noqa: E402
from cgan.training.trainer import GANTrainer  # noqa: E402


def bare_step_rate(config, steps: int) -> float:
    """Images/s of trainer.train_step alone, after tracing and warm-up."""
    data = make_shapes(10, 100, config.resolution)
    config.labels = data.names
    with tempfile.TemporaryDirectory() as tmp:
        trainer = GANTrainer(config, tf.distribute.get_strategy(), RunDir(Path(tmp)))
        iterator = iter(make_dataset(data.images, data.labels, config.batch_size, config.seed))
        for _ in range(3):
            trainer.train_step(iterator)["d_loss"].numpy()
        start = time.perf_counter()
        for _ in range(steps):
            metrics = trainer.train_step(iterator)
        metrics["d_loss"].numpy()
        return steps * config.batch_size * config.d_steps / (time.perf_counter() - start)


def loop_figures(config, steps: int, log_every: int) -> tuple[float, float]:
    """Images/s and overhead the training loop itself records, first (tracing) window
    excluded. The overhead is the share of wall time spent outside the compiled step, so
    other load on the machine slows both sides alike instead of skewing the comparison."""
    with tempfile.TemporaryDirectory() as tmp:
        config.steps = log_every * (steps // log_every + 1)
        config.log_every = log_every
        config.checkpoint_every = log_every * 2  # far more often than the presets' 500
        train(config, Path(tmp), resume=False, progress=False)
        records = RunDir(Path(tmp)).read_metrics()[1:]
        return (
            statistics.mean(r["images_per_sec"] for r in records),
            statistics.mean(r["loop_overhead"] for r in records),
        )


def precision_rates(precisions: list[str], steps: int, rounds: int) -> None:
    """The shipped recipe's step under each dtype policy, taking turns (the median)."""
    flags = sorted(cpu_flags().intersection(BF16_FLAGS)) or ["none"]
    print(f"CPU bfloat16 flags: {', '.join(flags)}", flush=True)
    overrides = dict(data="synthetic", synthetic_classes=10, synthetic_per_class=100)
    rates: dict[str, list[float]] = {p: [] for p in precisions}
    for _ in range(rounds):
        for precision in precisions:
            keras.mixed_precision.set_global_policy(precision)
            try:
                rates[precision].append(bare_step_rate(make_config("cifar10", overrides), steps))
            finally:
                keras.mixed_precision.set_global_policy("float32")
    base = statistics.median(rates[precisions[0]])
    print(f"{'precision':16} {'step img/s':>11} {'ratio':>6}")
    for precision, values in rates.items():
        rate = statistics.median(values)
        print(f"{precision:16} {rate:11.1f} {rate / base:6.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--archs", default="sngan,dcgan")
    parser.add_argument("--batches", default="64,128")
    parser.add_argument("--precisions", help="e.g. float32,mixed_bfloat16 (the first is 1.0)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.precisions:
        precision_rates(args.precisions.split(","), args.steps, args.rounds)
        return
    print(
        f"{'arch':6} {'batch':>5} {'step img/s':>11} {'loop img/s':>11} {'overhead':>9}", flush=True
    )
    for arch in args.archs.split(","):
        for batch in (int(b) for b in args.batches.split(",")):
            overrides = dict(
                arch=arch,
                batch_size=batch,
                data="synthetic",
                synthetic_classes=10,
                synthetic_per_class=1000,
                aux_weight=1.0 if arch == "sngan" else 0.0,
            )  # head: sngan only
            bare = bare_step_rate(make_config("cifar10", overrides), args.steps)
            looped, overhead = loop_figures(
                make_config("cifar10", overrides), args.steps, log_every=max(2, args.steps // 3)
            )
            print(
                f"{arch:6} {batch:5d} {bare:11.1f} {looped:11.1f} {100 * overhead:8.1f}%",
                flush=True,
            )


if __name__ == "__main__":
    main()
