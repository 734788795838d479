"""Shapes, dtypes and conditioning of both architectures at both resolutions."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("keras")

from cgan.training.models import ModelSpec, build_discriminator, build_generator  # noqa: E402


@pytest.mark.parametrize("arch", ["sngan", "dcgan"])
@pytest.mark.parametrize("resolution", [32, 64])
def test_generator_and_discriminator_shapes(arch, resolution):
    spec = ModelSpec(
        arch, resolution, num_classes=5, latent_dim=16, g_channels=8, d_channels=8, embed_dim=4
    )
    generator, discriminator = build_generator(spec), build_discriminator(spec)
    noise = np.random.default_rng(0).standard_normal((3, 16)).astype(np.float32)
    labels = np.array([0, 2, 4], np.int32)
    images = np.asarray(generator([noise, labels], training=False))
    assert images.shape == (3, resolution, resolution, 3)
    assert images.dtype == np.float32
    assert images.min() >= -1.0 and images.max() <= 1.0
    logits = np.asarray(discriminator([images, labels], training=True))
    assert logits.shape == (3, 1) and logits.dtype == np.float32
    assert np.all(np.isfinite(logits))


@pytest.mark.parametrize("arch", ["sngan", "dcgan"])
def test_only_the_label_changes_the_generator_output(arch):
    spec = ModelSpec(
        arch, 32, num_classes=4, latent_dim=16, g_channels=8, d_channels=8, embed_dim=4
    )
    generator = build_generator(spec)
    noise = np.repeat(np.random.default_rng(1).standard_normal((1, 16)), 4, axis=0)
    images = np.asarray(generator([noise.astype(np.float32), np.arange(4, dtype=np.int32)]))
    again = np.asarray(generator([noise.astype(np.float32), np.arange(4, dtype=np.int32)]))
    np.testing.assert_array_equal(images, again)
    for other in range(1, 4):
        assert np.abs(images[0] - images[other]).mean() > 1e-4


def test_discriminator_depends_on_the_label():
    spec = ModelSpec("sngan", 32, num_classes=3, g_channels=8, d_channels=8)
    discriminator = build_discriminator(spec)
    image = np.random.default_rng(2).uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32)
    logits = [
        float(np.asarray(discriminator([image, np.array([k], np.int32)]))[0, 0]) for k in range(3)
    ]
    assert len(set(np.round(logits, 6))) == 3


def test_spec_rejects_unknown_arch_and_resolution():
    with pytest.raises(ValueError, match="unknown arch"):
        ModelSpec("stylegan", 32, 10)
    with pytest.raises(ValueError, match="resolution"):
        ModelSpec("sngan", 48, 10)
