"""Inference speed: onnxruntime against the same generator under TensorFlow, one run.

    python benchmarks/infer_bench.py [--run-dir RUN] [--rounds 3] [--markdown PATH]

Prints, with the CPU's model and flags: images/s at 1, 64 and 1,000 images per request for
`ImageGenerator` (the API the CLI and dashboard use), for a bare onnxruntime session with
the settings used before (no memory arena, the whole request in one run), and for a
tf.function of the Keras generator, each ratio against TensorFlow; the three take turns for
--rounds rounds and the median is shown. Then images/s by images per session run (what
`inference.generator.BATCH_SIZES` was chosen from), and the cold-start wall time and peak
memory of `cgan-infer --label ... -o x.png` against a TensorFlow script doing the same.
Without --run-dir it trains one step of the cifar10-preset architecture on synthetic data
(speed does not depend on the weights) and exports it. --markdown writes the tables there.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cgan.training.runtime import quiet_tensorflow

quiet_tensorflow()

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import tensorflow as tf  # noqa: E402

from cgan.export.exporter import export_run, restore_generator  # noqa: E402
from cgan.inference.generator import ImageGenerator  # noqa: E402
from cgan.training.config import make_config  # noqa: E402
from cgan.training.loop import train  # noqa: E402
from cgan.training.precision import cpu_flags  # noqa: E402

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


SHOWN_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16")
CHUNKS = (8, 16, 32, 64, 128, 256, 1024)


def machine() -> str:
    """The CPU model, its vector flags, the cores this process may use, the versions."""
    model = platform.processor() or "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    flags = [f for f in SHOWN_FLAGS if f in cpu_flags()] or ["none of " + ", ".join(SHOWN_FLAGS)]
    return (
        f"{model}; flags {' '.join(flags)}; {len(os.sched_getaffinity(0))} cores; "
        f"onnxruntime {ort.__version__}, TensorFlow {tf.__version__}"
    )


def before_session(model_path: Path) -> ort.InferenceSession:
    """A session as inference/session.py made them before: no memory arena."""
    options = ort.SessionOptions()
    options.enable_cpu_mem_arena = False
    options.log_severity_level = 4
    return ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])


def throughput(
    model_path: Path, run_dir: Path, rounds: int
) -> list[tuple[int, float, float, float]]:
    """(batch, ImageGenerator, before, TensorFlow) images/s, medians over turns."""
    generator = ImageGenerator(model_path, provider="cpu")
    before = before_session(model_path)
    keras_gen, config, _ = restore_generator(run_dir)
    latent = config.latent_dim

    @tf.function(
        input_signature=[tf.TensorSpec([None, latent], tf.float32), tf.TensorSpec([None], tf.int32)]
    )
    def tf_generate(noise, labels):
        return keras_gen([noise, labels], training=False)

    rng = np.random.default_rng(0)
    rows = []
    for batch in BATCHES:
        noise = rng.standard_normal((batch, latent)).astype(np.float32)
        labels = rng.integers(0, len(config.labels), batch)
        runners = (
            lambda b, n=noise, y=labels: generator.from_noise(n, y),
            lambda b, n=noise, y=labels: before.run(None, {"noise": n, "label": y}),
            lambda b, n=noise, y=labels: tf_generate(n, y.astype(np.int32)).numpy(),
        )
        rates: list[list[float]] = [[], [], []]
        for _ in range(rounds):
            for values, runner in zip(rates, runners, strict=True):
                values.append(rate(runner, batch))
        rows.append((batch, *(statistics.median(v) for v in rates)))
        ours, old, tf_rate = rows[-1][1:]
        print(
            f"{batch:6d} {ours:10.1f} {old:10.1f} {tf_rate:10.1f} {ours / tf_rate:9.2f} "
            f"{old / tf_rate:9.2f}",
            flush=True,
        )
    return rows


def chunk_rates(model_path: Path, rounds: int, images: int = 1024) -> dict[int, float]:
    """Images/s of `images` images made `chunk` per session run, medians over turns."""
    generators = {c: ImageGenerator(model_path, provider="cpu", batch_size=c) for c in CHUNKS}
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((images, generators[CHUNKS[0]].info.latent_dim)).astype(np.float32)
    labels = rng.integers(0, len(generators[CHUNKS[0]].labels), images)
    rates: dict[int, list[float]] = {c: [] for c in CHUNKS}
    for _ in range(rounds):
        for chunk, generator in generators.items():
            start = time.perf_counter()
            generator.from_noise(noise, labels)
            rates[chunk].append(images / (time.perf_counter() - start))
    return {c: statistics.median(v) for c, v in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run-dir", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--markdown", type=Path, help="write the tables to this file")
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
    _, config, _ = restore_generator(run_dir)

    lines = [f"machine: {machine()}", ""]
    lines.append(
        f"generator: {config.arch}, {config.resolution}x{config.resolution}, "
        f"g_channels {config.g_channels}, latent {config.latent_dim}"
    )
    print("\n".join(lines), flush=True)
    heads = ("batch", "ours", "before", "tensorflow", "ours/tf", "before/tf")
    print(" ".join(f"{h:>{w}}" for h, w in zip(heads, (6, 10, 10, 10, 9, 9), strict=True)))
    rows = throughput(model_path, run_dir, args.rounds)
    lines += [
        "",
        "| images per request | onnxruntime (ImageGenerator) img/s | onnxruntime before img/s "
        "| TensorFlow img/s | ratio | ratio before |",
        "|---|---|---|---|---|---|",
        *(
            f"| {b} | {o:.0f} | {old:.0f} | {t:.0f} | **{o / t:.2f}** | {old / t:.2f} |"
            for b, o, old, t in rows
        ),
    ]
    chunks = chunk_rates(model_path, args.rounds)
    print("images per session run: " + ", ".join(f"{c}: {r:.0f}/s" for c, r in chunks.items()))
    lines += [
        "",
        "| images per session run (1,024 images) | " + " | ".join(map(str, chunks)) + " |",
        "|---|" + "---|" * len(chunks),
        "| img/s | " + " | ".join(f"{r:.0f}" for r in chunks.values()) + " |",
    ]

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
    lines += ["", "| cold start, one image | wall s | peak MB |", "|---|---|---|"]
    for name, command in (("cgan-infer (onnxruntime)", cli), ("TensorFlow script", script)):
        runs = [cold_start(command) for _ in range(3)]
        wall = min(r[0] for r in runs)
        peak = max(r[1] for r in runs)
        print(f"{name:>24} {wall:7.2f} {peak:8.0f}", flush=True)
        lines.append(f"| {name} | {wall:.2f} | {peak:.0f} |")
    if args.markdown:
        args.markdown.write_text("\n".join(lines) + "\n")
        print(f"tables -> {args.markdown}")


if __name__ == "__main__":
    main()
