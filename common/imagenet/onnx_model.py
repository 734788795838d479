"""The ImageNet network as an ONNX graph, written with ``onnx.helper`` from the numpy weights.

No TensorFlow and no exporter: the graph follows :mod:`common.imagenet.architecture` node by
node, with each batch norm folded into its convolution (``w * g / sqrt(v + eps)``, bias
``b - m * g / sqrt(v + eps)``, computed in float64). It is built in memory when a runner
starts (about a tenth of a second for the 4.7 M parameters) rather than cached on disk:
there is then no cache to go stale, to guard against tampering or to find a writable place
for, and the weights' sha256 alone identifies what ran.

Input ``pixels``: float32 [batch, height, width, 3], RGB values in [0, 255] (NHWC, like the
Keras model). Feature-map outputs are NHWC too, so both forms answer alike.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from cgan.common.imagenet.architecture import (
    BN_EPSILON,
    ENDPOINTS,
    LITE0,
    PIXEL_MEAN,
    PIXEL_STD,
    RELU_MAX,
    ConvBN,
    Network,
    blocks,
    check_outputs,
)

OPSET = 17
INPUT_NAME = "pixels"


def fold_batch_norm(arrays: dict[str, np.ndarray], conv: ConvBN) -> tuple[np.ndarray, np.ndarray]:
    """The convolution's kernel and bias with its batch norm folded in."""
    gamma, beta, mean, var = (
        arrays[f"{conv.bn}.{part}"].astype(np.float64)
        for part in ("weight", "bias", "running_mean", "running_var")
    )
    scale = gamma / np.sqrt(var + BN_EPSILON)
    kernel = arrays[conv.weight].astype(np.float64) * scale[:, None, None, None]
    return kernel.astype(np.float32), (beta - mean * scale).astype(np.float32)


class _Graph:
    """Accumulates nodes and initializers with unique names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[TensorProto] = []

    def constant(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attributes: object) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
        return output


def _conv(graph: _Graph, arrays: dict[str, np.ndarray], conv: ConvBN, x: str) -> str:
    kernel, bias = fold_batch_norm(arrays, conv)
    attributes: dict[str, object] = {
        "strides": [conv.stride, conv.stride],
        "group": conv.out_channels if conv.depthwise else 1,
    }
    if conv.kernel > 1:
        attributes["auto_pad"] = "SAME_UPPER"  # TensorFlow SAME: the extra pixel goes last
    y = graph.node(
        "Conv",
        [x, graph.constant(f"{conv.name}_w", kernel), graph.constant(f"{conv.name}_b", bias)],
        f"{conv.name}_conv",
        **attributes,
    )
    if conv.activation:
        y = graph.node("Clip", [y, "relu_min", "relu_max"], f"{conv.name}_relu6")
    return y


def build_onnx(
    arrays: dict[str, np.ndarray],
    outputs: tuple[str, ...] | list[str] = ("probabilities", "pooled"),
    network: Network = LITE0,
) -> onnx.ModelProto:
    """A checked ONNX model with the requested endpoints as outputs (names as given)."""
    wanted = check_outputs(outputs)
    last = max(ENDPOINTS.index(name) for name in wanted)
    graph = _Graph()
    graph.constant("relu_min", np.array(0.0, np.float32))
    graph.constant("relu_max", np.array(RELU_MAX, np.float32))
    x = graph.node("Transpose", [INPUT_NAME], "nchw", perm=[0, 3, 1, 2])
    x = graph.node(
        "Sub", [x, graph.constant("pixel_mean", np.array(PIXEL_MEAN, np.float32))], "centred"
    )
    x = graph.node(
        "Mul", [x, graph.constant("pixel_scale", np.array(1 / PIXEL_STD, np.float32))], "normalised"
    )
    produced: dict[str, str] = {}
    for block in blocks(network):
        y = x
        for conv in block.convs:
            y = _conv(graph, arrays, conv, y)
        if block.residual:
            y = graph.node("Add", [x, y], f"{block.convs[-1].name}_residual")
        x = y
        if block.endpoint:
            produced[block.endpoint] = x
            if ENDPOINTS.index(block.endpoint) >= last:
                break
    if last > ENDPOINTS.index("head"):
        pooled = graph.node("GlobalAveragePool", [x], "pooled_map")
        produced["pooled"] = graph.node("Flatten", [pooled], "pooled_flat", axis=1)
        produced["logits"] = graph.node(
            "Gemm",
            [
                produced["pooled"],
                graph.constant("fc_w", arrays["_fc.weight"]),
                graph.constant("fc_b", arrays["_fc.bias"]),
            ],
            "logits_raw",
            transB=1,
        )
        produced["probabilities"] = graph.node("Softmax", [produced["logits"]], "softmax", axis=-1)
    output_infos = []
    for name in wanted:
        source = produced[name]
        rank = 2 if name in ("pooled", "logits", "probabilities") else 4
        if rank == 4:
            graph.node("Transpose", [source], name, perm=[0, 2, 3, 1])
        else:
            graph.node("Identity", [source], name)
        output_infos.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [None] * rank))
    pixels = helper.make_tensor_value_info(
        INPUT_NAME, TensorProto.FLOAT, ["batch", "height", "width", 3]
    )
    model = helper.make_model(
        helper.make_graph(
            graph.nodes, f"efficientnet_{network.name}", [pixels], output_infos, graph.initializers
        ),
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="cgan-label2image",
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model
