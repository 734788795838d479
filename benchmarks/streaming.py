"""Datasets larger than memory: peak memory and speed of training from a records folder.

    python benchmarks/streaming.py [--dir /tmp/cgan-streaming] [--images 200000]
        [--fits 20000] [--steps 120] [--log-every 20]

(a) writes --images synthetic 64x64 shapes as a records folder with cgan-prepare (2.4 GB
for 200,000; kept in --dir and reused by the next call unless --fresh), timed;
(b) trains --steps steps of the smoke recipe at 64x64 from it, in a child process;
(c) trains the same configuration on a set that fits in memory (--fits images, the same
shapes) twice: held in memory (the in-memory pipeline) and streamed from its records;
(d) trains it on 320 in-memory images: the memory of the training process itself (the
TensorFlow runtime, the models, their traced steps, checkpoints, sample grids), which
the "data" column subtracts from each peak.

Every step of the work runs in a child process of its own; its peak resident memory is
the kernel's high-water mark for that child (os.wait4's ru_maxrss), which counts the
TensorFlow runtime and every buffer but not the page cache the shards are read through.
Images/s are the training loop's own figures (metrics.jsonl), the first window (tracing)
left out. Targets: under 1.5 GB for (b), records within 10% of in-memory for (c). The
training process alone, (d), measured about 1.5 GB at 64x64 on the 2-core machine where
this was written, so the memory figure to judge the data pipeline by is the "data" column.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLASSES = 10
RESOLUTION = 64
GB = 1024**3


def child(argv: list[str]) -> tuple[float, int]:
    """Run a command to its end; its wall time in seconds and peak RSS in bytes."""
    started = time.perf_counter()
    process = subprocess.Popen(argv)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        sys.exit(f"streaming.py: {' '.join(argv[:4])} ... failed ({process.returncode})")
    return time.perf_counter() - started, usage.ru_maxrss * 1024  # Linux: kilobytes


def prepare(out: Path, images: int, fresh: bool) -> tuple[float | None, int | None]:
    """cgan-prepare synthetic OUT; (seconds, peak RSS), or (None, None) if reused."""
    manifest = out / "records.json"
    if manifest.is_file() and not fresh and json.loads(manifest.read_text())["total"] == images:
        return None, None
    shutil.rmtree(out, ignore_errors=True)
    per_class = images // CLASSES
    argv = [sys.executable, "-m", "cgan.training.prepare", "synthetic", str(out)]
    argv += ["--resolution", str(RESOLUTION), "--classes", str(CLASSES)]
    return child([*argv, "--per-class", str(per_class), "--quiet"])


def train(data: str, per_class: int, steps: int, log_every: int) -> tuple[float, int]:
    """Train in a child; (images/s after the first window, peak RSS)."""
    with tempfile.TemporaryDirectory(prefix="cgan-streaming-run-") as run_dir:
        overrides = dict(
            data=data,
            resolution=RESOLUTION,
            steps=steps,
            log_every=log_every,
            checkpoint_every=steps,
            synthetic_classes=CLASSES,
            synthetic_per_class=per_class,
        )
        spec = json.dumps({"run_dir": run_dir, "overrides": overrides})
        _, peak = child([sys.executable, __file__, "--child", spec])
        records = [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").open()]
    rates = [r["images_per_sec"] for r in records[1:]] or [records[0]["images_per_sec"]]
    return statistics.mean(rates), peak


def run_child(spec: str) -> None:
    """The child: one training session of the smoke recipe with the given overrides."""
    from cgan.training.runtime import quiet_tensorflow

    quiet_tensorflow()
    from cgan.training.config import make_config
    from cgan.training.loop import train as train_session

    values = json.loads(spec)
    config = make_config("smoke", values["overrides"])
    train_session(config, Path(values["run_dir"]), resume=False, progress=False)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "cgan-streaming")
    parser.add_argument("--images", type=int, default=200_000, help="the large set")
    parser.add_argument("--fits", type=int, default=20_000, help="the set that fits in memory")
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--log-every", type=int, default=20)
    parser.add_argument("--fresh", action="store_true", help="rewrite the records folders")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args.child)
        return
    if args.images % CLASSES or args.fits % CLASSES:
        parser.error(f"--images and --fits must be multiples of {CLASSES}")
    args.dir.mkdir(parents=True, exist_ok=True)
    large, small = args.dir / f"shapes64-{args.images}", args.dir / f"shapes64-{args.fits}"
    rows = []

    took, peak = prepare(large, args.images, args.fresh)
    size = sum(path.stat().st_size for path in large.glob("shard-*")) / GB
    what = "reused" if took is None else f"{took:.0f} s, {peak / GB:.2f} GB peak"
    print(f"(a) {args.images} images 64x64 -> {large} ({size:.2f} GB): {what}", flush=True)
    prepare(small, args.fits, args.fresh)

    print(f"(b) training {args.steps} steps from the records of {args.images}", flush=True)
    rate, peak = train(str(large), args.images // CLASSES, args.steps, args.log_every)
    rows.append(("records", args.images, rate, peak))
    print(f"(c) the same on {args.fits} images, in memory and from records", flush=True)
    memory_rate, peak = train("synthetic", args.fits // CLASSES, args.steps, args.log_every)
    rows.append(("in memory", args.fits, memory_rate, peak))
    records_rate, peak = train(str(small), args.fits // CLASSES, args.steps, args.log_every)
    rows.append(("records", args.fits, records_rate, peak))
    print("(d) the same on 320 images in memory: the training process alone", flush=True)
    rate, base = train("synthetic", 32, args.steps, args.log_every)
    rows.append(("in memory", 320, rate, base))

    print(f"\n{'pipeline':10} {'images':>8} {'img/s':>8} {'peak RSS':>9} {'data':>9}")
    for name, images, rate, peak in rows:
        extra = (peak - base) / GB
        print(f"{name:10} {images:>8} {rate:>8.1f} {peak / GB:>6.2f} GB {extra:>+6.2f} GB")
    print(
        f"\nrecords / in-memory speed on {args.fits} images: {records_rate / memory_rate:.3f} "
        f"(target >= 0.90); peak with {args.images} images from records: "
        f"{rows[0][3] / GB:.2f} GB (target < 1.5 GB), {(rows[0][3] - base) / GB:+.2f} GB "
        "over the training process alone"
    )


if __name__ == "__main__":
    main()
