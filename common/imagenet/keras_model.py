"""The ImageNet network as a Keras model (keras.layers only), for training code.

Built from :mod:`common.imagenet.architecture`, the same table the ONNX builder reads, and
loaded from the checked checkpoint arrays. ``outputs`` picks endpoints: the feature maps
after the stem or any stage (``"stage2"``, ``"stage3"``, ... for a projected
discriminator), the 1280-d ``"pooled"`` features, ``"logits"`` or ``"probabilities"``.
Frozen by default (``trainable=False``, so its batch norms also run in inference mode).

Input: float32 [batch, height, width, 3], RGB values in [0, 255]; any size (the network was
trained at 224x224). A generator's images in [-1, 1] are ``x * 127.5 + 127.5``.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from cgan.common.imagenet.architecture import (
    BN_EPSILON,
    ENDPOINTS,
    LITE0,
    NUM_CLASSES,
    PIXEL_MEAN,
    PIXEL_STD,
    RELU_MAX,
    ConvBN,
    Network,
    blocks,
    check_outputs,
)


def _conv_layers(conv: ConvBN) -> list[layers.Layer]:
    if conv.depthwise:
        core: layers.Layer = layers.DepthwiseConv2D(
            conv.kernel, conv.stride, padding="same", use_bias=False, name=f"{conv.name}_conv"
        )
    else:
        core = layers.Conv2D(
            conv.out_channels,
            conv.kernel,
            conv.stride,
            padding="same",
            use_bias=False,
            name=f"{conv.name}_conv",
        )
    stack = [core, layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{conv.name}_bn")]
    if conv.activation:
        stack.append(layers.ReLU(max_value=RELU_MAX, name=f"{conv.name}_relu6"))
    return stack


def _kernel(array: np.ndarray, depthwise: bool) -> np.ndarray:
    """PyTorch [out, in/groups, kh, kw] -> Keras [kh, kw, in, out] (depthwise: [kh, kw, C, 1])."""
    return array.transpose(2, 3, 0, 1) if depthwise else array.transpose(2, 3, 1, 0)


def _load(model: keras.Model, arrays: dict[str, np.ndarray], network: Network) -> None:
    for block in blocks(network):
        for conv in block.convs:
            try:
                core = model.get_layer(f"{conv.name}_conv")
            except ValueError:
                return  # the model stops before this block
            core.set_weights([_kernel(arrays[conv.weight], conv.depthwise)])
            model.get_layer(f"{conv.name}_bn").set_weights(
                [
                    arrays[f"{conv.bn}.{part}"]
                    for part in ("weight", "bias", "running_mean", "running_var")
                ]
            )
    if any(layer.name == "logits" for layer in model.layers):
        model.get_layer("logits").set_weights([arrays["_fc.weight"].T, arrays["_fc.bias"]])


def build_keras(
    arrays: dict[str, np.ndarray],
    outputs: tuple[str, ...] | list[str] = ("pooled", "logits"),
    input_shape: tuple[int | None, int | None, int] = (None, None, 3),
    trainable: bool = False,
    name: str = "efficientnet_lite0",
    network: Network = LITE0,
) -> keras.Model:
    """A Keras model whose outputs are a dict {endpoint: tensor} in the order asked."""
    wanted = check_outputs(outputs)
    last = max(ENDPOINTS.index(endpoint) for endpoint in wanted)
    pixels = keras.Input(shape=input_shape, name="pixels")
    x = layers.Rescaling(1 / PIXEL_STD, offset=-PIXEL_MEAN / PIXEL_STD, name="normalise")(pixels)
    produced = {}
    for block in blocks(network):
        y = x
        for conv in block.convs:
            for layer in _conv_layers(conv):
                y = layer(y)
        if block.residual:
            y = layers.Add(name=f"{block.convs[-1].name}_residual")([x, y])
        x = y
        if block.endpoint:
            produced[block.endpoint] = x
            if ENDPOINTS.index(block.endpoint) >= last:
                break
    if last > ENDPOINTS.index("head"):
        produced["pooled"] = layers.GlobalAveragePooling2D(name="pooled")(x)
        produced["logits"] = layers.Dense(NUM_CLASSES, name="logits")(produced["pooled"])
        produced["probabilities"] = layers.Softmax(name="probabilities")(produced["logits"])
    model = keras.Model(pixels, {endpoint: produced[endpoint] for endpoint in wanted}, name=name)
    _load(model, arrays, network)
    model.trainable = trainable
    return model
