"""`cgan-infer`: images of a class from an exported generator, on onnxruntime (no TensorFlow)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from cgan.common.cli import OneLineArgumentParser, non_negative_int, positive_float, run_command
from cgan.common.errors import InferenceError
from cgan.common.files import atomic_path, same_file

MAX_IMAGES = 10_000
FORMATS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP"}
# The largest side each encoder writes; beyond it WebP fails and libjpeg prints its own line.
MAX_SIDE = {"JPEG": 65_500, "WEBP": 16_383}

EXAMPLES = """\
examples:
  cgan-infer --label dog -o dog.png                  # one image, seed 0
  cgan-infer --label dog --seeds 0-15 --grid -o dogs.png --scale 4
  cgan-infer --label all --seeds 0-7 --grid -o classes.png   # a row per class
  cgan-infer --label cat,dog --n 8 --outdir out/     # 16 files: out/cat-seed0000.png ...
  cgan-infer --label 3 --seeds 7,42 --truncation 0.7 --format webp --outdir out/
  cgan-infer --list-labels
  cgan-infer --info --json --model models/cifar10.onnx
"""


def build_parser() -> OneLineArgumentParser:
    parser = OneLineArgumentParser(prog="cgan-infer", description=__doc__, epilog=EXAMPLES)
    parser.add_argument(
        "--label",
        action="append",
        default=[],
        help="class name (any case) or index; repeat or comma-separate; 'all' for every class",
    )
    parser.add_argument("--list-labels", action="store_true", help="print the labels and exit")
    parser.add_argument("--info", action="store_true", help="print the model's metadata")
    parser.add_argument("--n", type=int, help="images per label (seeds SEED..SEED+n-1)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="first seed (default 0)")
    parser.add_argument("--seeds", help="explicit seeds, e.g. 0-15,42 (overrides --seed/--n)")
    parser.add_argument(
        "--truncation",
        type=positive_float,
        help="redraw noise beyond +-T (e.g. 0.7): less variety, more typical",
    )
    parser.add_argument(
        "--grid", action="store_true", help="one image: a row per label, a column per seed"
    )
    parser.add_argument("-o", "--out", type=Path, help="output file (one image or --grid)")
    parser.add_argument(
        "--outdir",
        type=Path,
        default=Path("generated"),
        help="folder for one file per image (default generated/)",
    )
    parser.add_argument("--format", choices=sorted(FORMATS), help="png (default), jpg, webp")
    parser.add_argument("--scale", type=int, default=1, help="nearest-neighbour enlargement")
    parser.add_argument("--model", type=Path, help="an exported .onnx (default: shipped model)")
    parser.add_argument("--provider", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def _labels(values: list[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _seeds(args: argparse.Namespace, label_count: int) -> list[int]:
    from cgan.inference.requests import MAX_SEED, parse_seeds

    limit = MAX_IMAGES // max(1, label_count)
    if limit < 1:
        raise InferenceError(
            f"{label_count} labels are too many: at most {MAX_IMAGES} images per call"
        )
    if args.seeds is not None:
        if args.n is not None:
            raise InferenceError("give either --seeds or --n, not both")
        return parse_seeds(args.seeds, limit)
    count = 1 if args.n is None else args.n
    if count < 1:
        raise InferenceError(f"--n must be at least 1, not {count}")
    if count > limit:
        raise InferenceError(
            f"--n {count} is too many: at most {MAX_IMAGES} images per call "
            f"({limit} per label here)"
        )
    if args.seed + count - 1 > MAX_SEED:
        raise InferenceError(
            f"--seed {args.seed} --n {count} goes beyond the largest seed {MAX_SEED}"
        )
    return list(range(args.seed, args.seed + count))


def _file_in(folder: Path, name: str) -> Path:
    """folder/name, refusing any name that would leave the folder (labels are checked when a
    model loads; this keeps a file name made from one from ever acting as a path)."""
    target = folder / name
    if Path(name).name != name or name in (".", "..") or target.parent != folder:
        raise InferenceError(f"refusing to write {name!r}: not a plain file name")
    return target


def _format(args: argparse.Namespace) -> str:
    if args.out is not None:
        suffix = args.out.suffix.lower().lstrip(".")
        if suffix not in FORMATS:
            raise InferenceError(f"--out {args.out}: use a .png, .jpg or .webp file name")
        if args.format and FORMATS[args.format] != FORMATS[suffix]:
            raise InferenceError(f"--format {args.format} contradicts --out {args.out}")
        return suffix
    return args.format or "png"


def _save(image, path: Path, fmt: str, model_path: Path) -> None:
    """Write through a temporary file and a rename: a link already at `path` is replaced,
    never written through, and a half-written image is never left behind."""
    from PIL import Image

    height, width = image.shape[:2]
    limit = MAX_SIDE.get(FORMATS[fmt])
    if limit is not None and max(height, width) > limit:
        raise InferenceError(
            f"a {width}x{height} image is larger than {fmt} allows ({limit:,} px a side); "
            "write png or use a smaller --scale"
        )
    if same_file(path, model_path):
        raise InferenceError(f"refusing to write {path}: it is the model being read")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as temporary:
            options = {"quality": 95} if fmt != "png" else {}
            Image.fromarray(image).save(temporary, FORMATS[fmt], **options)
    except OSError as exc:
        raise InferenceError(f"cannot write {path}: {exc.strerror or exc}") from None


def _print_info(generator, as_json: bool) -> None:
    from dataclasses import asdict

    info = asdict(generator.info)
    info["provider"] = generator.provider
    if as_json:
        print(json.dumps(info, indent=2))
        return
    for key, value in info.items():
        if key == "extra":
            continue
        print(f"{key:20} {value if not isinstance(value, list) else ', '.join(value)}")


def _check_options(args: argparse.Namespace) -> tuple[list[str], str]:
    """The labels asked for and the output format, or one line saying what is wrong:
    everything checked before the model is loaded."""
    labels = _labels(args.label)
    if not (labels or args.list_labels or args.info):
        raise InferenceError("nothing to do: give --label NAME (or --list-labels, --info)")
    if args.scale < 1 or args.scale > 32:
        raise InferenceError(f"--scale must be between 1 and 32, not {args.scale}")
    return labels, _format(args)


def _plan(args: argparse.Namespace, generator, labels: list[str]) -> tuple[list, list, list]:
    """The class indices (one grid row each), the seeds (one column each) and the
    (index, seed) pair of every image, checked against the model and the output options
    before anything is made."""
    from cgan.inference.requests import check_request

    if [label.lower() for label in labels] == ["all"] and "all" not in generator.labels:
        labels = generator.labels
    seeds = _seeds(args, len(labels))  # counted after `all` became every label
    indices = [generator.label_index(label) for label in labels]
    pairs = [(index, seed) for index in indices for seed in seeds]
    if args.out is not None and len(pairs) > 1 and not args.grid:
        raise InferenceError(
            f"--out names one file but {len(pairs)} images were asked for; "
            "add --grid or use --outdir"
        )
    # The grid holds every image enlarged at once; single files one at a time.
    check_request(len(pairs) if args.grid else 1, generator.info.image_size, args.scale)
    return indices, seeds, pairs


def _write(
    args: argparse.Namespace, fmt: str, names: list[str], plan: tuple, images, model_path: Path
) -> list:
    """Save the images (one grid, one file, or a file per image); what was written where."""
    import numpy as np

    from cgan.common.images import make_grid

    indices, seeds, pairs = plan
    enlarge = lambda image: image.repeat(args.scale, 0).repeat(args.scale, 1)  # noqa: E731
    if args.grid:
        rows = [names[i] for i in indices]
        picture = make_grid(images, rows=len(indices), scale=args.scale, row_labels=rows)
        target = args.out or _file_in(args.outdir, f"grid.{fmt}")
        _save(np.asarray(picture), target, fmt, model_path)
        return [{"path": str(target), "labels": rows, "seeds": seeds}]
    if len(pairs) == 1 and args.out is not None:
        _save(enlarge(images[0]), args.out, fmt, model_path)
        return [{"path": str(args.out), "labels": [names[indices[0]]], "seeds": seeds}]
    files = []
    for (index, seed), image in zip(pairs, images, strict=True):
        target = _file_in(args.outdir, f"{names[index]}-seed{seed:04d}.{fmt}")
        _save(enlarge(image), target, fmt, model_path)
        files.append({"path": str(target), "label": names[index], "seed": seed})
    return files


def run(args: argparse.Namespace) -> dict:
    """Check the options, load the model, plan, generate, write: the report of what was done."""
    from cgan.inference.default_model import default_model_path
    from cgan.inference.generator import ImageGenerator

    started = time.perf_counter()
    labels, fmt = _check_options(args)
    model_path = args.model or default_model_path()
    if args.out is not None and same_file(args.out, model_path):
        raise InferenceError(f"--out {args.out} is the model itself; name another file")
    generator = ImageGenerator(model_path, provider=args.provider)
    loaded = time.perf_counter()
    if args.list_labels:
        for index, name in enumerate(generator.labels):
            print(f"{index}\t{name}")
    if args.info:
        _print_info(generator, args.json)
    if not labels:
        return {}
    plan = _plan(args, generator, labels)
    pairs = plan[2]
    images = generator.generate([i for i, _ in pairs], [s for _, s in pairs], args.truncation)
    generated = time.perf_counter()
    files = _write(args, fmt, generator.labels, plan, images, Path(model_path))
    saved = time.perf_counter()
    return {
        "model": str(model_path),
        "provider": generator.provider,
        "files": files,
        "images": len(pairs),
        "truncation": args.truncation,
        "timings_s": {
            "load": round(loaded - started, 4),
            "generate": round(generated - loaded, 4),
            "save": round(saved - generated, 4),
        },
    }


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command("cgan-infer", lambda: report(args))


def report(args: argparse.Namespace) -> int:
    """Run the request and say what was written (paths, or the JSON report)."""
    result = run(args)
    if result and args.json:
        print(json.dumps(result, indent=2))
    elif result:
        for entry in result["files"]:
            print(entry["path"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
