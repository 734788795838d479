"""Evaluation: a CIFAR-10 judge network trained by the project, and the metrics it enables
(class accuracy, Frechet distance, precision/recall), plus FID/IS given Inception weights."""

from pathlib import Path

# The judge `make judge` trains and the package ships; cgan-eval's default.
SHIPPED_JUDGE = Path(__file__).resolve().parent / "judge_cifar10.weights.h5"


def sidecar_path(weights: Path) -> Path:
    """The judge's labels and width, beside its weights (judge.json for judge.weights.h5)."""
    return weights.with_name(weights.name.replace(".weights.h5", ".json"))


# --samples-per-class: every class's Frechet distance needs a covariance, so two samples
# (metrics.MIN_FRECHET_SAMPLES); 50,000 per class is five times FID's usual total, and the
# pixels are bounded again by inference's per-request limit.
MIN_SAMPLES_PER_CLASS = 2
MAX_SAMPLES_PER_CLASS = 50_000
