"""`--verify`: does an image show its label? Asked of the ImageNet network (onnxruntime).

A label stands for the ImageNet classes in its WordNet closure (docs/imagenet.md). An image
is on topic when one of its `top_k` most likely classes is one of them with a probability
of at least `min_prob`; otherwise it is `off_topic` and the manifest's `detail` names
its most likely classes. A label without ImageNet classes (`deer`) is left unchecked: the
network cannot tell its images apart, so it is said once and its images are kept.
"""

from __future__ import annotations

import functools
import io
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from cgan.common.errors import ImageNetError
from cgan.common.imagenet.labelmap import LabelConcept, map_label
from cgan.scraping.items import parse_label
from cgan.scraping.settings import CGAN_VERIFY_MIN_PROB, CGAN_VERIFY_TOP_K

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

DEFAULT_TOP_K: int = CGAN_VERIFY_TOP_K
DEFAULT_MIN_PROB: float = CGAN_VERIFY_MIN_PROB
OFF_TOPIC = "off_topic"


@dataclass(frozen=True)
class Verdict:
    """One image's answer: on topic (None when its label is unchecked) and its top classes."""

    on_topic: bool | None
    top: tuple[tuple[str, float], ...]

    def detail(self) -> str:
        """`top: pickup truck 0.61, tow truck 0.12, ...` for the manifest."""
        return "top: " + ", ".join(f"{name} {prob:.2f}" for name, prob in self.top)


class ContentCheck:
    """The network, the labels' concepts and the rule, ready to judge images."""

    def __init__(
        self,
        labels: Sequence[tuple[str, Sequence[str]]],
        synsets: dict[str, str],
        top_k: int = DEFAULT_TOP_K,
        min_prob: float = DEFAULT_MIN_PROB,
        weights: str | Path | None = None,
    ) -> None:
        from cgan.common.imagenet.classes import load_classes
        from cgan.common.imagenet.runner import ImageNetRunner
        from cgan.common.imagenet.weights import load_weights
        from cgan.common.imagenet.wordnet import load_wordnet

        names = [name for name, _ in labels]
        stray = sorted(set(synsets) - set(names))
        if stray:
            raise ImageNetError(
                f"--synset names labels that are not being checked: {', '.join(stray)}"
            )
        self.wordnet, self.classes = load_wordnet(), load_classes()
        self.concepts: dict[str, LabelConcept] = {
            name: map_label(name, self.wordnet, self.classes, synsets.get(name), words)
            for name, words in labels
        }
        self.top_k, self.min_prob = top_k, min_prob
        self.runner = ImageNetRunner(load_weights(weights))
        self._lock = threading.Lock()

    def describe(self) -> str:
        """The network and the rule, for reports."""
        return (
            f"{self.runner.describe()}; on topic when one of the top {self.top_k} "
            f"classes is in the label's WordNet closure with p >= {self.min_prob:g}"
        )

    def notes(self) -> list[str]:
        """One line per label: what it maps to, or that it stays unchecked and how to fix it."""
        lines = []
        for name, concept in self.concepts.items():
            if concept.checked:
                lines.append(concept.describe())
            else:
                lines.append(
                    f"{concept.describe()}: {name} is left unchecked "
                    f"(to check it, name a synset: --synset {name}=SYNSET)"
                )
        return lines

    def concept(self, label: str) -> LabelConcept:
        """The label's concept; one given only at crawl time (`-a labels=`) is mapped then."""
        if label not in self.concepts:
            self.concepts[label] = map_label(label, self.wordnet, self.classes)
        return self.concepts[label]

    def judge(self, label: str, probabilities: np.ndarray) -> list[Verdict]:
        """Verdicts for a batch of probability rows of images under `label`."""
        from cgan.common.imagenet.runner import top_k
        from cgan.common.imagenet.zeroshot import on_topic

        concept = self.concept(label)
        index, probs = top_k(probabilities, self.top_k)
        flags = (
            on_topic(probabilities, concept, self.top_k, self.min_prob)
            if concept.checked
            else [None] * len(probabilities)
        )
        return [
            Verdict(
                None if flag is None else bool(flag),
                tuple((self.classes.names[i], float(p)) for i, p in zip(row, prow, strict=True)),
            )
            for flag, row, prow in zip(flags, index, probs, strict=True)
        ]

    def check_pixels(self, label: str, pixels: np.ndarray) -> list[Verdict]:
        """Prepared float32 [N, 224, 224, 3] batch -> verdicts (one network run at a time)."""
        with self._lock:
            probabilities = self.runner.run(pixels).probabilities
        return self.judge(label, probabilities)

    def check_bytes(self, label: str, body: bytes) -> Verdict:
        """One encoded image -> its verdict (the crawl's per-image check, in a worker thread)."""
        if not self.concept(label).checked:
            return Verdict(None, ())
        from cgan.common.imagenet.preprocess import prepare

        with Image.open(io.BytesIO(body)) as image:
            image.draft("RGB", (self.runner.input_size, self.runner.input_size))
            pixels = prepare(image, self.runner.input_size, self.runner.crop)
        return self.check_pixels(label, pixels[None])[0]


@functools.lru_cache(maxsize=2)
def shared_check(
    labels: tuple[tuple[str, tuple[str, ...]], ...],
    synsets: tuple[tuple[str, str], ...],
    top_k: int,
    min_prob: float,
    weights: str | None,
) -> ContentCheck:
    """One ContentCheck per configuration and process: the CLI's (built to validate the
    options before Scrapy starts) is the one the pipeline then uses."""
    return ContentCheck(labels, dict(synsets), top_k, min_prob, weights)


def check_from_settings(settings: BaseSettings) -> ContentCheck | None:
    """The crawl's content check (None without CGAN_VERIFY); ImageNetError when it can't be
    built, and ImportError without the scrape extra's ImageNet packages."""
    if not settings.getbool("CGAN_VERIFY"):
        return None
    from cgan.common.imagenet.labelmap import parse_assignments

    labels = tuple(
        (spec.name, (spec.query,))
        for spec in (parse_label(text) for text in settings.getlist("CGAN_LABELS"))
    )
    synsets = parse_assignments(settings.getlist("CGAN_VERIFY_SYNSETS"))
    return shared_check(
        labels,
        tuple(sorted(synsets.items())),
        settings.getint("CGAN_VERIFY_TOP_K", DEFAULT_TOP_K),
        settings.getfloat("CGAN_VERIFY_MIN_PROB", DEFAULT_MIN_PROB),
        settings.get("CGAN_IMAGENET_WEIGHTS") or None,
    )
