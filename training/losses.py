"""GAN losses on logits, in keras.ops so any backend can use them."""

from __future__ import annotations

from keras import ops


def hinge_d(real_logits, fake_logits):
    return ops.mean(ops.relu(1.0 - real_logits)) + ops.mean(ops.relu(1.0 + fake_logits))


def hinge_g(fake_logits):
    return -ops.mean(fake_logits)


def bce_d(real_logits, fake_logits):
    """Binary cross-entropy with real = 1 and fake = 0, stable in the logit domain."""
    return ops.mean(ops.softplus(-real_logits)) + ops.mean(ops.softplus(fake_logits))


def bce_g(fake_logits):
    """The non-saturating generator loss: -log D(G(z))."""
    return ops.mean(ops.softplus(-fake_logits))


LOSSES = {"sngan": (hinge_d, hinge_g), "dcgan": (bce_d, bce_g)}
