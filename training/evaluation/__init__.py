"""Evaluation: a CIFAR-10 judge network trained by the project, and the metrics it enables
(class accuracy, Frechet distance, precision/recall), plus FID/IS given Inception weights."""
