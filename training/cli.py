"""`cgan-train`: train a conditional GAN into a run directory, or resume one."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Any

from cgan.common.cli import (
    OneLineArgumentParser,
    non_negative_float,
    non_negative_int,
    open_fraction,
    positive_int,
    run_command,
)
from cgan.common.errors import TrainingError
from cgan.common.run_dir import RunDir
from cgan.training.config import (
    BEST_FIGURES,
    PRESETS,
    SMALL_DATA_PER_CLASS,
    TrainConfig,
    check_resumable,
    choose_preset,
    load_config,
    make_config,
    validate_config,
)
from cgan.training.models.spec import (
    ARCHS,
    PROJECTED_ENDPOINTS,
    PROJECTED_MIXINGS,
    PROJECTED_SIZES,
    RESOLUTIONS,
)

EXAMPLES = """\
examples:
  # a complete run on synthetic shapes in about a minute (CPU)
  cgan-train --preset smoke --run-dir runs/smoke

  # CIFAR-10 (downloads through keras.datasets), SNGAN-projection with EMA
  cgan-train --preset cifar10 --run-dir runs/cifar10

  # a class-folder dataset (ROOT/<label>/*.jpg), the DCGAN baseline, 64x64
  cgan-train --data ../shared/datasets/cifar10/train --arch dcgan --run-dir runs/dc

  # a dataset larger than memory: write it once as a records folder, stream it from disk
  cgan-prepare data/big data/big-records --resolution 64
  cgan-train --data data/big-records --resolution 64 --run-dir runs/big

  # small dataset: DiffAugment on real and fake, two D steps per G step
  cgan-train --data data/mine-64 --resolution 64 --diffaugment translation,color,cutout \\
      --d-steps 2 --run-dir runs/mine

  # a projected discriminator on the frozen ImageNet network's early features (needs the
  # imagenet extra), DiffAugment before that network as the paper recommends
  cgan-train --imagenet-projected --diffaugment translation,color,cutout --run-dir runs/pg

  # continue an interrupted run (Ctrl-C and SIGTERM save a checkpoint first)
  cgan-train --run-dir runs/cifar10 --resume
  cgan-train --run-dir runs/cifar10 --resume --steps 200000   # train longer
"""

# argparse dest -> TrainConfig field, for the options a user may set explicitly.
OPTION_FIELDS = {
    "data": "data",
    "arch": "arch",
    "resolution": "resolution",
    "latent_dim": "latent_dim",
    "g_channels": "g_channels",
    "d_channels": "d_channels",
    "batch_size": "batch_size",
    "steps": "steps",
    "g_lr": "g_lr",
    "d_lr": "d_lr",
    "beta1": "beta1",
    "beta2": "beta2",
    "d_steps": "d_steps",
    "d_pretrain_steps": "d_pretrain_steps",
    "ema_decay": "ema_decay",
    "lr_decay_start": "lr_decay_start",
    "lr_decay_steps": "lr_decay_steps",
    "diffaugment": "diffaugment",
    "seed": "seed",
    "mixed_precision": "mixed_precision",
    "multi_worker": "multi_worker",
    "log_every": "log_every",
    "aux_weight": "aux_weight",
    "aux_g_scale": "aux_g_scale",
    "imagenet_projected": "imagenet_projected",
    "projected_size": "projected_size",
    "projected_endpoints": "projected_endpoints",
    "projected_mixing": "projected_mixing",
    "cpu_minutes": "cpu_minutes",
    "init_from": "init_from",
    "init_labels": "init_labels",
    "freeze_d_blocks": "freeze_d_blocks",
    "checkpoint_every": "checkpoint_every",
    "keep_checkpoints": "keep_checkpoints",
    "eval_every": "eval_every",
    "eval_samples": "eval_samples",
    "eval_reference": "eval_reference",
    "keep_best": "keep_best",
    "plateau_evaluations": "plateau_evaluations",
}


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(prog="cgan-train", description=__doc__, epilog=EXAMPLES)
    parser.add_argument(
        "--run-dir",
        type=Path,
        required=True,
        help="where config, checkpoints, metrics and samples go",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --run-dir from its last checkpoint",
    )
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=None,
        help="starting values: cifar10 (the shipped recipe), cifar10-gpu (the same recipe at "
        "GPU scale), small-data (a few hundred images per class: 64x64, from the shipped "
        "model's run, 60 CPU-minutes) or smoke (a minute on a CPU); default: small-data for "
        f"class folders with fewer than {SMALL_DATA_PER_CLASS:,} images per class, else cifar10",
    )
    parser.add_argument(
        "--data",
        help="cifar10, synthetic, a class-folder path, or a records folder (cgan-prepare) "
        "streamed from disk for sets larger than memory",
    )
    parser.add_argument("--arch", choices=ARCHS, help="sngan (default) or the dcgan baseline")
    parser.add_argument("--resolution", type=int, choices=RESOLUTIONS)
    parser.add_argument("--latent-dim", type=positive_int)
    parser.add_argument("--g-channels", type=positive_int, help="generator width")
    parser.add_argument("--d-channels", type=positive_int, help="discriminator width")
    parser.add_argument("--batch-size", type=positive_int, help="global batch size")
    parser.add_argument("--steps", type=positive_int, help="total generator steps of the run")
    parser.add_argument("--g-lr", type=float, help="generator learning rate")
    parser.add_argument("--d-lr", type=float, help="discriminator learning rate")
    parser.add_argument(
        "--lr-decay-start",
        type=non_negative_int,
        metavar="STEP",
        help="generator step where both learning rates start their linear decay",
    )
    parser.add_argument(
        "--lr-decay-steps",
        type=non_negative_int,
        metavar="N",
        help="decay both learning rates linearly to zero over N steps from --lr-decay-start; "
        "training ends there (0 = constant rates, the default)",
    )
    parser.add_argument("--beta1", type=float)
    parser.add_argument("--beta2", type=float)
    parser.add_argument("--d-steps", type=positive_int, help="D updates per G update")
    parser.add_argument(
        "--d-pretrain-steps",
        type=non_negative_int,
        help="D-only warm-up updates before the GAN loop (default 0)",
    )
    parser.add_argument("--ema-decay", type=open_fraction, help="decay of the EMA generator")
    parser.add_argument(
        "--aux-weight",
        type=non_negative_float,
        help="weight of D's auxiliary class head (AC-GAN loss beside the "
        "projection; sngan only; 0 = off, the default)",
    )
    parser.add_argument(
        "--aux-g-scale",
        type=non_negative_float,
        help="the generator's class loss as a share of --aux-weight (default 1: the same "
        "weight as the discriminator's; 0.5 halves the head's pull on G only)",
    )
    parser.add_argument(
        "--imagenet-projected",
        action="store_true",
        default=None,
        help="a projected discriminator (Projected GAN): small heads on the early features "
        "of the frozen ImageNet network (EfficientNet-Lite0; needs the imagenet extra); "
        "sngan only; cgan-eval then marks ImageNet-feature figures as not independent",
    )
    parser.add_argument(
        "--projected-size",
        type=positive_int,
        help=f"side the images are resized to for that network ({PROJECTED_SIZES[0]}-"
        f"{PROJECTED_SIZES[1]}; default 64)",
    )
    parser.add_argument(
        "--projected-endpoints",
        type=_endpoint_list,
        metavar="NAMES",
        help="its feature maps the heads read, comma-separated, in network order "
        f"({', '.join(PROJECTED_ENDPOINTS)}; default stage1,stage2,stage3)",
    )
    parser.add_argument(
        "--projected-mixing",
        choices=PROJECTED_MIXINGS,
        help="fixed random 1x1 mixing of the features: across channels and scales "
        "(scales, the default), across channels only, or none",
    )
    transfer = parser.add_argument_group("start from a trained run (few images per class)")
    transfer.add_argument(
        "--init-from",
        metavar="RUN_DIR",
        help="start G, D and the EMA generator from that run's newest checkpoint (sngan, "
        "same G width and latent size; 32x32 -> 64x64 grows G by one block); new labels "
        "take the rows of source labels of the same name, or --init-labels",
    )
    transfer.add_argument(
        "--init-labels",
        metavar="NEW=OLD,...",
        help="which source label each new label starts from (english_springer=dog); "
        "unnamed, unmatched labels start from the mean of the source's",
    )
    transfer.add_argument(
        "--freeze-d-blocks",
        type=non_negative_int,
        metavar="N",
        help="keep D's first N blocks frozen (FreezeD; pixel D only; default 0)",
    )
    parser.add_argument(
        "--cpu-minutes",
        type=non_negative_float,
        help="stop with a checkpoint once the run has used this much CPU time "
        "in training, summed over resumes (0 = no limit)",
    )
    parser.add_argument(
        "--diffaugment",
        metavar="POLICIES",
        help="comma-separated subset of translation,color,cutout ('' = off)",
    )
    parser.add_argument("--seed", type=int)
    parser.add_argument(
        "--mixed-precision",
        action="store_true",
        default=None,
        help="float16 compute with loss scaling (for GPUs)",
    )
    parser.add_argument(
        "--multi-worker",
        action="store_true",
        default=None,
        help="MultiWorkerMirroredStrategy; the cluster comes from TF_CONFIG",
    )
    parser.add_argument("--log-every", type=positive_int, help="steps between metric records")
    parser.add_argument("--checkpoint-every", type=positive_int, help="steps between checkpoints")
    parser.add_argument("--keep-checkpoints", type=positive_int, help="how many to keep")
    measured = parser.add_argument_group("quality figures during training")
    measured.add_argument(
        "--eval-every",
        type=non_negative_int,
        metavar="N",
        help="measure the EMA generator every N steps (a checkpoint is saved there too) and "
        "write its figures to metrics.jsonl: the judge's on CIFAR-10's classes, the probe "
        "judge's and ImageNet features' on any other class folder (0 = off)",
    )
    measured.add_argument(
        "--eval-samples", type=positive_int, metavar="K", help="images per class (default 100)"
    )
    measured.add_argument(
        "--eval-reference",
        metavar="FOLDER",
        help="real images to compare with, a class folder such as the validation split "
        "(default: the training data)",
    )
    measured.add_argument(
        "--keep-best",
        choices=BEST_FIGURES,
        help="keep the best measured snapshot in RUN/best/ (cgan-export --checkpoint best)",
    )
    measured.add_argument(
        "--plateau-evaluations",
        type=positive_int,
        metavar="K",
        help="warn at the end when the --keep-best figure has not improved for K "
        "evaluations (default 5)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    return parser


def _endpoint_list(text: str) -> str:
    """'stage1, stage2' -> 'stage1,stage2': one spelling, so a resume compares equal."""
    return ",".join(part.strip() for part in text.split(",") if part.strip())


def _explicit(args: argparse.Namespace) -> dict[str, Any]:
    return {
        field: getattr(args, dest)
        for dest, field in OPTION_FIELDS.items()
        if getattr(args, dest) is not None
    }


def resolve_config(args: argparse.Namespace) -> tuple[TrainConfig, str | None]:
    """A new run: preset plus options. A resume: the saved config plus compatible options.
    Also the line that says which recipe was chosen and why, when none was named."""
    note = None
    explicit = _explicit(args)
    if args.run_dir.exists() and not args.run_dir.is_dir():
        raise TrainingError(f"--run-dir {args.run_dir} is a file, not a folder")
    if args.resume:
        saved = load_config(args.run_dir)
        if args.preset is not None:
            explicit["preset"] = args.preset
        check_resumable(saved, explicit)
        for name, value in explicit.items():
            setattr(saved, name, value)
        config = saved
    else:
        if RunDir(args.run_dir).has_checkpoint():
            raise TrainingError(
                f"{args.run_dir} already holds a run; add --resume to continue it "
                "or choose another --run-dir"
            )
        preset, why = (args.preset, None) if args.preset else choose_preset(explicit.get("data"))
        config = make_config(preset, explicit)
        if why:
            note = f"{why}; {_recipe_summary(config)}"
    validate_config(config)
    return config, note


def _recipe_summary(config: TrainConfig) -> str:
    """What the chosen recipe does, in a few words for its one line."""
    parts = [f"{config.resolution}x{config.resolution}"]
    if config.diffaugment:
        parts.append(f"DiffAugment {config.diffaugment}")
    if config.imagenet_projected:
        parts.append("projected D")
    parts.append(f"G from {config.init_from}" if config.init_from else "from scratch")
    if config.cpu_minutes:
        parts.append(f"stops after {config.cpu_minutes:g} CPU-minutes")
    return ", ".join(parts)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command("cgan-train", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    config, recipe_note = resolve_config(args)
    from cgan.training.runtime import check_tf_config, quiet_tensorflow

    if config.multi_worker:  # before TensorFlow's import: a bad cluster fails in a moment
        check_tf_config(os.environ.get("TF_CONFIG"))
    quiet_tensorflow()
    from cgan.training.loop import train

    result = train(
        config,
        args.run_dir,
        resume=args.resume,
        progress=not args.quiet,
        announce=None if args.quiet else recipe_note,
    )
    if result.worker:  # the chief reports for the run; the other workers say little
        print(f"worker {result.worker}: stopped at step {result.step}", file=sys.stderr)
        return 128 + result.stopped_by if result.stopped_by is not None else 0
    if result.stopped_by is not None:
        name = signal.Signals(result.stopped_by).name
        print(
            f"cgan-train: {name} received; checkpoint saved at step {result.step}. "
            f"Resume with: cgan-train --run-dir {args.run_dir} --resume",
            file=sys.stderr,
        )
        return 128 + result.stopped_by
    print(
        f"done: step {result.step}, epoch {result.epoch:.2f}, checkpoint {result.checkpoint}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
