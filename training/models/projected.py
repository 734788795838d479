"""A projected discriminator (Projected GAN, Sauer et al. 2021) on a frozen ImageNet network.

D looks at images through the early layers of EfficientNet-Lite0 with its ImageNet weights
(``cgan.common.imagenet``, the ``imagenet`` extra), frozen, as the paper does:

1. the images (32x32 in [-1, 1], after DiffAugment when it is on) are resized bilinearly to
   ``projected_size`` and scaled to the network's [0, 255] pixels;
2. the frozen network gives a few early feature maps (``projected_endpoints``, by default
   stage1, stage2 and stage3: 32x32x16, 16x16x24 and 8x8x40 at size 64), each divided by
   the root mean square its own batch norms predict for it (:func:`endpoint_scales`), so
   that the heads see features of about unit scale, as the sngan D sees pixels in [-1, 1]
   (the paper's heads have batch norms for that; here D sees real and fake in one batch);
3. fixed random 1x1 convolutions mix them (``projected_mixing``): ``channels`` maps every
   endpoint to the same width (the paper's CCM), ``scales`` then also adds each deeper,
   mixed map, resized up, to the one above it before a second fixed 1x1 convolution (the
   paper's CSM, without its final 2x upsampling, which would only make the heads dearer);
4. one small trainable head per scale: spectrally normalised 4x4 stride-2 convolutions
   with LeakyReLU(0.2) down to at most 8x8, one 3x3 convolution, sum pooling and a
   projection logit ``psi(h) + <embed(y), h>`` as in the sngan D.

The output is the heads' logits side by side, [batch, heads], so the hinge loss averages
over the heads (the paper's sum of per-scale losses, up to a constant). With the AC-GAN
class head it sits on the heads' pooled features, concatenated. Only the heads train: the
ImageNet layers and the random mixing are non-trainable (their batch norms stay in
inference mode) and live in the checkpoint like every other weight, so a resumed run has
exactly the state it stopped with. Gradients flow through all of it into G.

keras.layers and keras.ops only, like the other builders.
"""

from __future__ import annotations

import functools

import keras
import numpy as np
from keras import layers, ops

from cgan.common.errors import ImageNetError, TrainingError
from cgan.training.models.layers import GlobalSumPooling2D, ProjectionLogit, label_input
from cgan.training.models.spec import ModelSpec

FEATURES_NAME = "imagenet_features"  # the frozen network inside the discriminator
HEAD_END_SIZE = 8  # each head strides down until its map is at most this wide (the paper's)
EXTRA_HINT = "the imagenet extra: pip install -e '.[imagenet]'"


@functools.lru_cache(maxsize=2)
def _weights(path: str):
    from cgan.common.imagenet.weights import load_weights

    return load_weights(path)


def feature_weights():
    """The checked ImageNet weights (read once per process), or one line naming the extra."""
    from cgan.common.imagenet.weights import default_weights_path

    try:
        return _weights(str(default_weights_path()))
    except ImageNetError as exc:
        raise TrainingError(f"imagenet_projected needs {EXTRA_HINT} ({exc})") from None


def endpoint_scales(arrays: dict[str, np.ndarray], endpoints: tuple[str, ...]) -> dict[str, float]:
    """Each endpoint's root mean square on the network's own training data, predicted from
    its weights alone: a block ending in a batch norm gives channel c a mean beta_c and a
    standard deviation |gamma_c| (ReLU6 after it: that Gaussian's clipped second moment), and
    a residual block adds its input's mean square. On CIFAR-10 upscaled to 64x64 these are
    within about 25 % of the measured figures (stage1 6.6 vs 5.9, stage3 7.5 vs 8.0)."""
    from cgan.common.imagenet.architecture import RELU_MAX, blocks

    nodes, node_weights = np.polynomial.hermite_e.hermegauss(40)  # E over a standard normal
    node_weights = node_weights / node_weights.sum()
    scales, mean_square = {}, 0.0
    for block in blocks():
        last = block.convs[-1]
        gamma, beta = arrays[f"{last.bn}.weight"], arrays[f"{last.bn}.bias"]
        if last.activation:
            values = np.clip(beta[:, None] + gamma[:, None] * nodes[None, :], 0.0, RELU_MAX)
            added = float(np.mean(values**2 @ node_weights))
        else:
            added = float(np.mean(gamma**2 + beta**2))
        mean_square = mean_square + added if block.residual else added
        if block.endpoint in endpoints:
            scales[block.endpoint] = float(np.sqrt(mean_square))
        if len(scales) == len(endpoints):
            break
    return scales


class ImageNetPixels(layers.Layer):
    """Images in [-1, 1] -> the network's input: resized bilinearly, RGB values in [0, 255]."""

    def __init__(self, size: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.size = size

    def call(self, images):
        if images.shape[1] != self.size or images.shape[2] != self.size:
            images = ops.image.resize(images, (self.size, self.size), interpolation="bilinear")
        return images * 127.5 + 127.5

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.size, self.size, input_shape[-1])

    def get_config(self) -> dict:
        return {**super().get_config(), "size": self.size}


class ResizeLike(layers.Layer):
    """The first map resized bilinearly to the second one's height and width."""

    def call(self, inputs):
        x, like = inputs
        size = (like.shape[1], like.shape[2])
        if (x.shape[1], x.shape[2]) == size:
            return x
        return ops.image.resize(x, size, interpolation="bilinear")

    def compute_output_shape(self, input_shape):
        x_shape, like_shape = input_shape
        return (x_shape[0], like_shape[1], like_shape[2], x_shape[-1])


def _fixed_mixing(width: int, name: str) -> layers.Layer:
    """A random 1x1 convolution that never trains (variance-preserving initialisation)."""
    conv = layers.Conv2D(
        width, 1, kernel_initializer="lecun_normal", bias_initializer="zeros", name=name
    )
    conv.trainable = False
    return conv


def _mix(maps: list, mixing: str, width: int) -> list:
    """The paper's cross-channel (CCM) and cross-scale (CSM) mixing, fixed and random."""
    if mixing == "none":
        return maps
    maps = [_fixed_mixing(width, f"ccm{i}")(x) for i, x in enumerate(maps)]
    if mixing == "channels":
        return maps
    mixed: list = [None] * len(maps)
    deeper = None
    for i in reversed(range(len(maps))):  # from the deepest scale up
        x = maps[i]
        if deeper is not None:
            x = layers.Add(name=f"csm{i}_add")([x, ResizeLike(name=f"csm{i}_up")([deeper, x])])
        mixed[i] = deeper = _fixed_mixing(width, f"csm{i}")(x)
    return mixed


def _sn(layer: layers.Layer) -> layers.Layer:
    return layers.SpectralNormalization(layer)


def _head(x, width: int, index: int):
    """Strided convolutions down to at most HEAD_END_SIZE, a 3x3 convolution, sum pooling."""
    size, down = max(x.shape[1], x.shape[2]), 0
    while size > HEAD_END_SIZE:
        x = _sn(layers.Conv2D(width, 4, strides=2, padding="same", name=f"head{index}_down{down}"))(
            x
        )
        x = layers.LeakyReLU(0.2)(x)
        size, down = (size + 1) // 2, down + 1
    x = _sn(layers.Conv2D(width, 3, padding="same", name=f"head{index}_conv"))(x)
    return GlobalSumPooling2D(name=f"head{index}_pool")(layers.LeakyReLU(0.2)(x))


def build_discriminator(spec: ModelSpec, name: str = "discriminator") -> keras.Model:
    """discriminator(image, label) -> logits [B, heads], plus class logits [B, classes] with
    spec.aux_classifier. Needs the ImageNet weights (TrainingError naming the extra)."""
    from cgan.common.imagenet.keras_model import build_keras

    weights = feature_weights()
    size, width = spec.projected_size, spec.d_channels
    image = keras.Input(shape=(spec.resolution, spec.resolution, 3), name="image")
    label = label_input()
    network = build_keras(
        weights.arrays,
        outputs=spec.projected_endpoints,
        input_shape=(size, size, 3),
        trainable=False,
        name=FEATURES_NAME,
    )
    features = network(ImageNetPixels(size, name="imagenet_pixels")(image))
    scales = endpoint_scales(weights.arrays, spec.projected_endpoints)
    maps = [
        layers.Rescaling(1.0 / scales[e], name=f"{e}_standardise")(features[e])
        for e in spec.projected_endpoints
    ]
    maps = _mix(maps, spec.projected_mixing, 2 * width)
    pooled = [_head(x, width, i) for i, x in enumerate(maps)]
    logits = [
        ProjectionLogit(spec.num_classes, dtype="float32", name=f"head{i}_logit")([h, label])
        for i, h in enumerate(pooled)
    ]
    logit = logits[0] if len(logits) == 1 else layers.Concatenate(dtype="float32")(logits)
    if not spec.aux_classifier:
        return keras.Model([image, label], logit, name=name)
    features = pooled[0] if len(pooled) == 1 else layers.Concatenate()(pooled)
    class_logits = _sn(layers.Dense(spec.num_classes, dtype="float32", name="class_logits"))(
        features
    )
    return keras.Model([image, label], [logit, class_logits], name=name)
