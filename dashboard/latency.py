"""Timing the generator as a user feels it: noise made in numpy plus the onnxruntime run."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from cgan.inference.generator import ImageGenerator


@dataclass(frozen=True)
class Latency:
    batch: int
    median_ms: float
    best_ms: float

    @property
    def per_image_ms(self) -> float:
        return self.median_ms / self.batch

    @property
    def images_per_s(self) -> float:
        return 1000.0 * self.batch / self.median_ms if self.median_ms > 0 else float("inf")


def measure(
    generator: ImageGenerator, batch: int, repeats: int = 5, truncation: float | None = None
) -> Latency:
    """Median over `repeats` calls after one warm-up call (the first run allocates)."""
    labels = [i % len(generator.labels) for i in range(batch)]
    seeds = list(range(batch))
    generator.generate(labels, seeds, truncation)
    times = []
    for _ in range(max(1, repeats)):
        started = time.perf_counter()
        generator.generate(labels, seeds, truncation)
        times.append((time.perf_counter() - started) * 1000.0)
    return Latency(batch, statistics.median(times), min(times))
