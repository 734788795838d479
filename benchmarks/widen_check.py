"""How far a widened generator's images are from its source's (training/widen.py).

    python benchmarks/widen_check.py longruns/cifar10-projected --g-channels 128

Restores the run's newest EMA generator, widens it with and without the copies' noise, and
prints the mean and largest difference of 200 images (20 per class, fixed noise) in grey
levels of 0-255.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from cgan.training.runtime import quiet_tensorflow

quiet_tensorflow()

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from cgan.common.run_dir import RunDir  # noqa: E402
from cgan.training.config import load_config  # noqa: E402
from cgan.training.models import build_discriminator, build_generator  # noqa: E402
from cgan.training.widen import COPY_NOISE, widen_generator  # noqa: E402

GREY_LEVELS = 127.5  # images are in [-1, 1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", type=Path)
    parser.add_argument("--g-channels", type=int, default=128)
    args = parser.parse_args()
    spec = load_config(args.run).model_spec()
    generator, ema = build_generator(spec), build_generator(spec, name="ema_generator")
    checkpoint = RunDir(args.run).checkpoint_prefixes()[0]
    tf.train.Checkpoint(
        generator=generator, discriminator=build_discriminator(spec), ema_generator=ema
    ).restore(str(checkpoint)).expect_partial()
    labels = np.repeat(np.arange(spec.num_classes), 20).astype(np.int32)
    noise = np.random.default_rng(0).standard_normal((len(labels), spec.latent_dim))
    inputs = [noise.astype(np.float32), labels]
    source = np.asarray(ema(inputs, training=False))
    wide_spec = replace(spec, g_channels=args.g_channels)
    print(f"{checkpoint.name}: EMA generator {spec.g_channels} -> {args.g_channels} channels")
    for copy_noise in (0.0, COPY_NOISE):
        wide = widen_generator(ema, build_generator(wide_spec, name="ema_generator"), 0, copy_noise)
        difference = np.abs(np.asarray(wide(inputs, training=False)) - source) * GREY_LEVELS
        print(
            f"copy noise {copy_noise:g}: mean {difference.mean():.3g}, "
            f"largest {difference.max():.3g} grey levels"
        )


if __name__ == "__main__":
    main()
