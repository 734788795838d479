"""`cgan-train`: train a conditional GAN into a run directory, or resume one."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Any

from cgan.common.cli import OneLineArgumentParser, number_converter, run_command
from cgan.common.errors import TrainingError
from cgan.common.run_dir import RunDir
from cgan.training.config import (
    PRESETS,
    SMALL_DATA_PER_CLASS,
    Option,
    TrainConfig,
    check_resumable,
    choose_preset,
    load_config,
    make_config,
    options,
    range_problem,
    validate_config,
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
    add_config_options(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    return parser


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """One --flag per TrainConfig field that has help, made from its Option (config.py)."""
    defaults = TrainConfig()
    groups: dict[str, Any] = {}
    for name, rule in _settable().items():
        target = parser
        if rule.group is not None:
            target = groups.setdefault(rule.group, parser.add_argument_group(rule.group))
        default = getattr(defaults, name)
        flag = "--" + name.replace("_", "-")
        if isinstance(default, bool):  # None: not given, so a resume keeps the saved value
            target.add_argument(flag, dest=name, action="store_true", default=None, help=rule.help)
            continue
        convert, choices, metavar = rule.parse, rule.choices, rule.metavar
        if convert is None and isinstance(default, (int, float)):
            convert = _number(type(default), rule)
        if choices and "" in choices:  # the empty choice (off) is spelled `none` here
            convert, metavar, choices = _choice_or_none(choices), metavar or _spelled(choices), None
        target.add_argument(
            flag, dest=name, type=convert, choices=choices, metavar=metavar, help=rule.help
        )


def _spelled(choices: tuple[Any, ...]) -> str:
    return "{" + ",".join("none" if c == "" else str(c) for c in choices) + "}"


def _choice_or_none(choices: tuple[Any, ...]):
    """`none` is the empty choice (a resume can turn the option off); others as they are."""

    def convert(text: str) -> str:
        value = "" if text == "none" else text
        if value not in choices:
            raise argparse.ArgumentTypeError(f"choose one of {_spelled(choices)[1:-1]}")
        return value

    return convert


def _settable() -> dict[str, Option]:
    """The fields a user sets with a --flag (--preset is the parser's own)."""
    return {n: r for n, r in options().items() if r.help is not None and n != "preset"}


def _number(kind: type, rule: Option):
    """ASCII digits only (common.cli), then the Option's bounds: a bad value is one line."""
    parse = number_converter(kind, lambda value: True, "")

    def convert(text: str) -> Any:
        value = parse(text)
        problem = None if rule.choices else range_problem(value, rule)
        if problem:
            raise argparse.ArgumentTypeError(f"{problem}, got {value}")
        return value

    return convert


def _explicit(args: argparse.Namespace) -> dict[str, Any]:
    return {name: getattr(args, name) for name in _settable() if getattr(args, name) is not None}


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
