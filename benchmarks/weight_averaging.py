"""Would a longer weight average than the run's EMA give better images? Measured, not guessed.

The shipped generator is an exponential moving average of G's weights (decay 0.999: a
horizon of about 1,000 steps, under one epoch at batch 32). GAN studies (Yazici et al.,
"The unusual effectiveness of averaging in GAN training", 2019) found longer averages lower
the Frechet distance. This tries it on a run's own checkpoints without retraining: the EMA
generator averaged uniformly over the newest N checkpoints (a window of about
N x checkpoint_every steps), exported as cgan-export does (parity checked), and measured
beside the newest checkpoint's EMA generator under the full protocol (judge figures only;
the ImageNet view is left out for time). When the average wins, a slower `--ema-decay` on
the long run is the way to ship it (the decay may change on resume).

    python benchmarks/weight_averaging.py longruns/cifar10 --last 8
    python benchmarks/weight_averaging.py RUN --checkpoints ckpt-30000,ckpt-31000,ckpt-32000
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def average_checkpoints(
    run_dir: Path, last: int, out_run: Path, chosen: list[str] | None = None
) -> tuple[list[str], str]:
    """Write a run folder whose one checkpoint holds the averaged EMA generator: of the
    `chosen` checkpoints, or else of the newest `last` ones."""
    import tensorflow as tf

    from cgan.common.run_dir import RunDir
    from cgan.export.exporter import restore_generator

    run = RunDir(run_dir)
    kept = [prefix.name for prefix in run.checkpoint_prefixes()]  # newest first
    if chosen:
        missing = sorted(set(chosen) - set(kept))
        if missing:
            sys.exit(f"{run_dir} has no checkpoint {', '.join(missing)}")
        names = [name for name in kept if name in chosen]
    else:
        names = kept[:last]
    if len(names) < 2:
        sys.exit(f"{run_dir} keeps {len(names)} checkpoint(s); averaging needs at least 2")
    total = None
    for name in names:
        generator, _, _ = restore_generator(run_dir, ema=True, checkpoint=name)
        weights = [np.asarray(w, np.float64) for w in generator.get_weights()]
        total = weights if total is None else [t + w for t, w in zip(total, weights, strict=True)]
    generator.set_weights([(t / len(names)).astype(np.float32) for t in total])

    newest = names[0]
    (out_run / "checkpoints").mkdir(parents=True)
    for name in ("config.toml", "progress.json"):
        shutil.copy2(run.root / name, out_run / name)
    checkpoint = tf.train.Checkpoint(ema_generator=generator)
    checkpoint.save_counter  # noqa: B018 (created on first use; export expects it saved)
    checkpoint.write(str(out_run / "checkpoints" / newest))
    return names, newest


def export_and_measure(run_dir: Path, checkpoint: str, out: Path) -> dict:
    from cgan.export.exporter import export_run

    result = export_run(run_dir, out, checkpoint=checkpoint, card=False)
    print(f"exported {out.name}: parity {max(result.parity.values()):.2e}", flush=True)
    report = out.with_suffix(".eval.json")
    subprocess.run(
        [sys.executable, "-m", "cgan.evaluation.cli", str(out), "--no-imagenet", "-o", str(report)],
        check=True,
    )
    return json.loads(report.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--last", type=int, default=8, help="checkpoints to average")
    parser.add_argument(
        "--checkpoints", help="comma-separated names to average instead, e.g. ckpt-30000,ckpt-31000"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "models" / "averaging")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        averaged_run = Path(scratch) / "averaged"
        names, newest = average_checkpoints(
            args.run_dir, args.last, averaged_run, args.checkpoints and args.checkpoints.split(",")
        )
        rows = {
            f"EMA at {newest}": export_and_measure(args.run_dir, newest, args.out / "ema.onnx"),
            f"mean of the EMA over {len(names)} checkpoints ({names[-1]}..{newest})": (
                export_and_measure(averaged_run, newest, args.out / "averaged.onnx")
            ),
        }
    print("\n| generator | accuracy | Frechet | precision | recall |\n|---|---|---|---|---|")
    for label, figures in rows.items():
        print(
            f"| {label} | {figures['accuracy']:.4f} | {figures['frechet_distance']:.3f} | "
            f"{figures['precision']:.4f} | {figures['recall']:.4f} |"
        )


if __name__ == "__main__":
    main()
