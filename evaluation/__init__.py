"""Evaluation: a CIFAR-10 judge network trained by the project, and the metrics it enables
(class accuracy, Frechet distance, precision/recall), plus FID/IS given Inception weights."""

from pathlib import Path

# The judge `make judge` trains and the package ships; cgan-eval's default.
SHIPPED_JUDGE = Path(__file__).resolve().parent / "judge_cifar10.weights.h5"
