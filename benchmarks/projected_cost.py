"""Cost of the projected discriminator against the cifar10 preset's own D: FLOPs per
training image (TensorFlow's profiler on the compiled train step: G and D forward and
backward, both steps) and images/s of the bare step.

    TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 taskset -c 1 \\
        python benchmarks/projected_cost.py --steps 30
    python benchmarks/projected_cost.py --flops-only --variants plain 'size=96;mixing=none'

Each variant is the cifar10 preset (batch 32, G 64 / D 32, class head) with
--imagenet-projected and the named projected_* settings (``size=96``, ``mixing=none``,
``endpoints=stage1,stage2``, or a width such as ``g_channels=128``, several joined by
``;``); ``plain`` is the preset itself
(the first variant is the one the others are compared with). Data: synthetic 32x32 shapes
in memory. Variants are timed in turn, round-robin, so that other load on the machine
slows them alike.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from cgan.training.runtime import quiet_tensorflow

quiet_tensorflow()

import tensorflow as tf  # noqa: E402
from tensorflow.python.profiler import model_analyzer, option_builder  # noqa: E402

from cgan.common.run_dir import RunDir  # noqa: E402
from cgan.training.config import make_config  # noqa: E402
from cgan.training.pipeline import make_dataset  # noqa: E402
from cgan.training.shapes import make_shapes  # noqa: E402
from cgan.training.trainer import GANTrainer  # noqa: E402

WIDTHS = ("g_channels", "d_channels")  # variant keys that are not projected_* settings
DEFAULT_VARIANTS = ("plain", "", "mixing=none", "endpoints=stage1,stage2,stage3", "size=96")


def _float_ops(graph: tf.Graph) -> int:
    builder = option_builder.ProfileOptionBuilder
    options = builder(builder.float_operation()).with_empty_output().build()
    return model_analyzer.profile(graph, options=options).total_float_ops


def _overrides(variant: str) -> dict:
    if variant == "plain":
        return {}
    values: dict = {"imagenet_projected": True}
    for part in filter(None, variant.split(";")):
        key, _, value = (text.strip() for text in part.partition("="))
        if key in WIDTHS:
            values[key] = int(value)
        else:
            values[f"projected_{key}"] = int(value) if key == "size" else value
    return values


class Subject:
    """One variant's trainer, data stream and FLOP counts."""

    def __init__(self, variant: str) -> None:
        self.name = variant or "projected (defaults)"
        self.config = make_config("cifar10", {"data": "synthetic", **_overrides(variant)})
        data = make_shapes(10, 100, self.config.resolution)
        self.config.labels = data.names
        self.folder = tempfile.TemporaryDirectory()
        self.trainer = GANTrainer(
            self.config, tf.distribute.get_strategy(), RunDir(Path(self.folder.name))
        )
        self.iterator = iter(
            make_dataset(data.images, data.labels, self.config.batch_size, self.config.seed)
        )
        batch = self.config.batch_size
        step_graph = self.trainer.train_step.get_concrete_function(self.iterator).graph
        self.step_mflop = _float_ops(step_graph) / batch / 1e6
        discriminator = self.trainer.discriminator
        forward = tf.function(lambda x, y: discriminator([x, y], training=True))
        size = self.config.resolution
        self.d_forward_mflop = (
            _float_ops(
                forward.get_concrete_function(
                    tf.TensorSpec([1, size, size, 3]), tf.TensorSpec([1], tf.int32)
                ).graph
            )
            / 1e6
        )
        self.seconds, self.images = 0.0, 0

    def run(self, steps: int) -> None:
        metrics = self.trainer.train_step(self.iterator)
        metrics["d_loss"].numpy()
        started = time.perf_counter()
        for _ in range(steps):
            metrics = self.trainer.train_step(self.iterator)
        metrics["d_loss"].numpy()
        self.seconds += time.perf_counter() - started
        self.images += steps * self.config.batch_size * self.config.d_steps


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variants", nargs="*", default=list(DEFAULT_VARIANTS))
    parser.add_argument("--steps", type=int, default=30, help="timed steps per variant")
    parser.add_argument("--rounds", type=int, default=3, help="round-robin passes")
    parser.add_argument("--flops-only", action="store_true")
    args = parser.parse_args()
    subjects = [Subject(variant) for variant in args.variants]
    if not args.flops_only:
        for subject in subjects:  # tracing and warm-up
            subject.run(2)
            subject.seconds, subject.images = 0.0, 0
        for _ in range(args.rounds):
            for subject in subjects:
                subject.run(max(1, args.steps // args.rounds))
    base = subjects[0]
    print(f"{'variant':42} {'MFLOP/img':>9} {'D fwd':>6} {'x':>5} {'img/s':>6} {'x':>5}")
    for s in subjects:
        rate = s.images / s.seconds if s.seconds else float("nan")
        base_rate = base.images / base.seconds if base.seconds else float("nan")
        print(
            f"{s.name:42} {s.step_mflop:9.0f} {s.d_forward_mflop:6.1f} "
            f"{s.step_mflop / base.step_mflop:5.2f} {rate:6.1f} {rate / base_rate:5.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
