"""`python -m evaluation.ship CANDIDATE.onnx`: the shipped model changes only when a
candidate measures better under the same pinned protocol.

Both models carry their figures in their metadata (`cgan-eval --embed`). The candidate
replaces `inference/models/cifar10.onnx` (with its card and grid) when it meets more of the
quality targets (TARGETS) than the shipped one, or as many and its judge accuracy is at least
the shipped one's and its Frechet distance at most the shipped one's, one of them strictly.
Without the targets, a model that reaches the distance target at a little less accuracy could
never replace one that misses it.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from cgan.common.cli import OneLineArgumentParser, first_line, is_finite_number, run_command
from cgan.common.errors import EvaluationError
from cgan.common.files import atomic_path, same_file
from cgan.inference.card import write_card
from cgan.inference.default_model import shipped_model_path

PROTOCOL_KEYS = (
    "samples_per_class",
    "first_seed",
    "truncation",
    "reference",
    "feature_network",
    "knn_k",
)


# The shipped model's targets under the pinned protocol: (figure, at least?, bound).
TARGETS = (
    ("accuracy", True, 0.60),
    ("frechet_distance", False, 4.0),
    ("precision", True, 0.85),
    ("recall", True, 0.60),
)


def targets_met(metrics: dict) -> int:
    """How many TARGETS these figures meet; a missing or non-numeric figure meets none."""
    met = 0
    for name, at_least, bound in TARGETS:
        value = metrics.get(name)
        if not is_finite_number(value):
            continue
        met += value >= bound if at_least else value <= bound
    return met


def _metrics(model: Path) -> dict:
    from cgan.inference.generator import ImageGenerator

    metrics = ImageGenerator(model).info.metrics
    if not metrics or "accuracy" not in metrics or "frechet_distance" not in metrics:
        raise EvaluationError(f"{model} carries no evaluation; run cgan-eval {model} --embed")
    # The figures are the model's own metadata, as hostile as any input: each one decide()
    # reads must be what it compares and prints, or one line naming the field.
    for name, required in (
        ("accuracy", True),
        ("frechet_distance", True),
        ("precision", False),
        ("recall", False),
    ):
        value = metrics.get(name)
        if value is None and not required:
            continue
        if not is_finite_number(value):
            raise EvaluationError(
                f"{model}: its evaluation's {name} is {first_line(repr(value), 40)}, not a "
                f"number; run cgan-eval {model} --embed"
            )
    if not isinstance(metrics.get("protocol", {}), dict):
        raise EvaluationError(
            f"{model}: its evaluation's protocol is not a JSON object; "
            f"run cgan-eval {model} --embed"
        )
    return metrics


def _or_nan(metrics: dict, name: str) -> float:
    """An optional figure for printing: NaN when it is missing or null."""
    value = metrics.get(name)
    return float("nan") if value is None else value


def decide(candidate: dict, shipped: dict) -> tuple[bool, str]:
    """(replace?, why) from two evaluations made under the same protocol."""
    theirs, ours = shipped.get("protocol", {}), candidate.get("protocol", {})
    differing = [k for k in PROTOCOL_KEYS if theirs.get(k) != ours.get(k)]
    if differing:
        return False, f"the protocols differ in {', '.join(differing)}; re-evaluate both"
    accuracy = candidate["accuracy"] - shipped["accuracy"]
    frechet = candidate["frechet_distance"] - shipped["frechet_distance"]
    met, was_met = targets_met(candidate), targets_met(shipped)
    summary = (
        f"targets met {was_met} -> {met} of {len(TARGETS)}, accuracy "
        f"{shipped['accuracy']:.4f} -> {candidate['accuracy']:.4f}, "
        f"frechet {shipped['frechet_distance']:.3f} -> "
        f"{candidate['frechet_distance']:.3f}, precision "
        f"{_or_nan(shipped, 'precision'):.4f} -> "
        f"{_or_nan(candidate, 'precision'):.4f}, recall "
        f"{_or_nan(shipped, 'recall'):.4f} -> "
        f"{_or_nan(candidate, 'recall'):.4f}"
    )
    if met != was_met:
        return met > was_met, summary
    better = accuracy >= 0 and frechet <= 0 and (accuracy > 0 or frechet < 0)
    return better, summary


def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(prog="cgan-ship", description=__doc__.splitlines()[0])
    parser.add_argument("candidate", type=Path, help="an exported, evaluated .onnx")
    parser.add_argument("--dry-run", action="store_true", help="decide, copy nothing")
    args = parser.parse_args(argv)
    return run_command("cgan-ship", lambda: ship(args.candidate, args.dry_run))


def ship(candidate_path: Path, dry_run: bool) -> int:
    """Copy the candidate (model, card, grid) over the shipped model when it is better."""
    target = shipped_model_path()
    if same_file(candidate_path, target):
        raise EvaluationError(f"{candidate_path} is the shipped model itself: nothing to ship")
    candidate = _metrics(candidate_path)
    shipped = _metrics(target) if target.is_file() else None
    if shipped is None:
        replace, why = True, "no model is shipped yet"
    else:
        replace, why = decide(candidate, shipped)
    if not replace:
        print(f"kept the shipped model: {why}")
        return 0
    if not dry_run:
        with atomic_path(target) as temporary:
            shutil.copyfile(candidate_path, temporary)
        write_card(target)  # the card and grid name the shipped file, not the candidate
    print(f"{'would ship' if dry_run else 'shipped'} {candidate_path}: {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
