"""`cgan-export`: a run's generator as a self-describing ONNX file, with a model card."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cgan.common.cli import OneLineArgumentParser, number_converter, run_command
from cgan.common.errors import ExportError
from cgan.common.run_dir import CONFIG_NAME, RunDir
from cgan.export import MAX_OPSET, MIN_OPSET

opset_number = number_converter(
    int, lambda v: MIN_OPSET <= v <= MAX_OPSET, f"must be {MIN_OPSET} to {MAX_OPSET}"
)

EXAMPLES = """\
examples:
  cgan-export runs/cifar10                         # -> models/cifar10.onnx, .md, .png
  cgan-export runs/cifar10 -o models/cifar10-sngan.onnx
  cgan-export runs/cifar10 --raw -o models/raw.onnx  # the raw generator, not the EMA one
  cgan-export runs/cifar10 --fp16 -o models/cifar10-fp16.onnx
"""


def build_parser() -> OneLineArgumentParser:
    parser = OneLineArgumentParser(prog="cgan-export", description=__doc__, epilog=EXAMPLES)
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a cgan-train run")
    parser.add_argument(
        "-o", "--output", type=Path, help="the .onnx to write (default models/<run name>.onnx)"
    )
    parser.add_argument(
        "--raw", action="store_true", help="export the raw generator instead of the EMA one"
    )
    parser.add_argument(
        "--fp16",
        action="store_true",
        help="half-precision weights and compute (float32 inputs/outputs)",
    )
    parser.add_argument(
        "--opset",
        type=opset_number,
        default=17,
        help=f"ONNX opset, {MIN_OPSET} to {MAX_OPSET} (default 17)",
    )
    parser.add_argument(
        "--checkpoint",
        help="a checkpoint name such as ckpt-500, or best: the one --keep-best kept "
        "(default: the newest)",
    )
    parser.add_argument("--no-card", action="store_true", help="skip the model card and grid")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command("cgan-export", lambda: export(args))


def export(args: argparse.Namespace) -> int:
    out = args.output or Path("models") / f"{args.run_dir.resolve().name}.onnx"
    if not RunDir(args.run_dir).is_run():
        raise ExportError(f"{args.run_dir} is not a run directory (no {CONFIG_NAME})")
    from cgan.training.runtime import quiet_tensorflow

    quiet_tensorflow()
    from cgan.export.exporter import export_run

    result = export_run(
        args.run_dir,
        out,
        ema=not args.raw,
        fp16=args.fp16,
        opset=args.opset,
        checkpoint=args.checkpoint,
        card=not args.no_card,
        progress=True,
    )
    parity = ", ".join(f"batch {b}: {d:.2e}" for b, d in result.parity.items())
    print(
        f"wrote {result.path} ({result.path.stat().st_size / 1e6:.2f} MB, "
        f"{result.info.precision}, opset {result.info.opset}, "
        f"{result.info.training_steps} steps)"
    )
    print(
        f"parity with Keras, max abs difference: {parity} "
        f"(bound {result.info.extra['parity_bound']:g})"
    )
    if result.card:
        print(f"model card {result.card}, samples {result.grid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
