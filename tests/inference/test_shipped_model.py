"""The CIFAR-10 model that ships in the package: the default of cgan-infer, self-describing,
evaluated. Skipped in a checkout without it (for example a fork that removed it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from cgan.inference.default_model import ENV_VAR, shipped_model_path

SHIPPED = shipped_model_path()
CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

pytestmark = pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped model here")


def test_cgan_infer_uses_it_without_model_option(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cgan.inference.cli",
            "--label",
            "dog",
            "--seeds",
            "0-3",
            "--outdir",
            str(tmp_path),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["model"] == str(SHIPPED)
    images = [np.asarray(Image.open(entry["path"])) for entry in report["files"]]
    assert [image.shape for image in images] == [(32, 32, 3)] * 4
    assert len({image.tobytes() for image in images}) == 4  # one image per seed, all different


def test_it_describes_itself_and_its_evaluation():
    from cgan.inference.generator import ImageGenerator

    info = ImageGenerator(SHIPPED, provider="cpu").info
    assert info.labels == CIFAR10
    assert (info.latent_dim, info.image_size, info.weights) == (128, 32, "ema")
    assert info.training_steps > 1000 and info.parity_max_abs_diff < 1e-4
    metrics = info.metrics
    assert metrics is not None and metrics["kind"] == "generated"
    assert metrics["protocol"]["samples_per_class"] * 10 == metrics["samples"] == 10_000
    assert metrics["protocol"]["reference"].endswith("cifar10/test")
    assert set(metrics["per_class"]) == set(CIFAR10)
    card = SHIPPED.with_suffix(".md").read_text()
    assert f"{metrics['accuracy']}" in card and SHIPPED.with_suffix(".png").is_file()


def test_it_is_small_enough_to_ship():
    assert SHIPPED.stat().st_size < 20 * 2**20
