"""Inference speed: onnxruntime against the same generator under TensorFlow.

    python benchmarks/infer_bench.py [--run-dir RUN] [--model M.onnx]

Prints images/s at batch 1, 64 and 1000 for onnxruntime and for a tf.function of the Keras
generator, with the ratio, then the cold-start wall time and peak memory of
`cgan-infer --label ... -o x.png` against a TensorFlow script doing the same. Without
--run-dir it trains one step of the cifar10-preset architecture on synthetic data (speed
does not depend on the weights) and exports it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cgan.training.runtime import quiet_tensorflow

quiet_tensorflow()

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from cgan.export.exporter import export_run, restore_generator  # noqa: E402
from cgan.inference.generator import ImageGenerator  # noqa: E402
from cgan.training.config import make_config  # noqa: E402
from cgan.training.loop import train  # noqa: E402

BATCHES = (1, 64, 1000)

TF_SCRIPT = """
import sys
from cgan.training.runtime import quiet_tensorflow
quiet_tensorflow()
import numpy as np
from PIL import Image
from cgan.export.exporter import restore_generator
from cgan.common.images import to_uint8
generator, config, _ = restore_generator(sys.argv[1])
noise = np.random.default_rng(0).standard_normal((1, config.latent_dim)).astype("float32")
image = generator([noise, np.array([0], "int32")], training=False).numpy()
Image.fromarray(to_uint8(image)[0]).save(sys.argv[2])
"""


def rate(fn, batch: int, min_seconds: float = 2.0) -> float:
    fn(batch)  # warm-up (and tracing)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < min_seconds:
        fn(batch)
        count += batch
    return count / (time.perf_counter() - start)


# A lean parent: a child forked from this (TensorFlow-sized) process would report this
# process's memory as its own peak, so a small interpreter starts the measured command.
MEASURE = """
import resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
wall = time.perf_counter() - start
print(code, wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
"""


def cold_start(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident MB of one fresh process."""
    result = subprocess.run(
        [sys.executable, "-S", "-c", MEASURE, *command], capture_output=True, text=True, check=True
    )
    code, wall, peak = result.stdout.split()
    if code != "0":
        raise SystemExit(f"{' '.join(command[:4])} ... failed with exit code {code}")
    return float(wall), float(peak)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run-dir", type=Path)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="infer-bench-"))
    run_dir = args.run_dir
    if run_dir is None:
        run_dir = work / "run"
        config = make_config(
            "cifar10",
            dict(
                data="synthetic", steps=1, synthetic_per_class=20, log_every=1, checkpoint_every=1
            ),
        )
        train(config, run_dir, resume=False, progress=False)
    model_path = work / "model.onnx"
    export_run(run_dir, model_path, card=False)

    onnx_gen = ImageGenerator(model_path, provider="cpu", batch_size=1000)
    keras_gen, config, _ = restore_generator(run_dir)
    latent = config.latent_dim

    @tf.function(
        input_signature=[tf.TensorSpec([None, latent], tf.float32), tf.TensorSpec([None], tf.int32)]
    )
    def tf_generate(noise, labels):
        return keras_gen([noise, labels], training=False)

    rng = np.random.default_rng(0)
    print(
        f"generator: {config.arch}, {config.resolution}x{config.resolution}, "
        f"g_channels {config.g_channels}, latent {latent}"
    )
    print(f"{'batch':>6} {'onnxruntime img/s':>18} {'tensorflow img/s':>17} {'ratio':>6}")
    for batch in BATCHES:
        noise = rng.standard_normal((batch, latent)).astype(np.float32)
        labels = rng.integers(0, len(config.labels), batch)
        ort_rate = rate(lambda b, n=noise, y=labels: onnx_gen.from_noise(n, y), batch)
        tf_rate = rate(
            lambda b, n=noise, y=labels: tf_generate(n, y.astype(np.int32)).numpy(), batch
        )
        print(f"{batch:6d} {ort_rate:18.1f} {tf_rate:17.1f} {ort_rate / tf_rate:6.2f}", flush=True)

    label = config.labels[0]
    cli = [
        sys.executable,
        "-m",
        "cgan.inference.cli",
        "--label",
        label,
        "-o",
        str(work / "cli.png"),
        "--model",
        str(model_path),
    ]
    script = [sys.executable, "-c", TF_SCRIPT, str(run_dir), str(work / "tf.png")]
    print(f"{'cold start':>24} {'wall s':>7} {'peak MB':>8}")
    for name, command in (("cgan-infer (onnxruntime)", cli), ("TensorFlow script", script)):
        runs = [cold_start(command) for _ in range(3)]
        wall = min(r[0] for r in runs)
        peak = max(r[1] for r in runs)
        print(f"{name:>24} {wall:7.2f} {peak:8.0f}", flush=True)


if __name__ == "__main__":
    main()
