"""Crafted ONNX generators for the hostile-input tests: tiny files that follow the export
contract's names but lie in their metadata, their output shapes or their data files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from cgan.inference.metadata import ModelInfo


def hostile_model(
    *,
    labels: list | None = None,
    latent_dim: int = 4,
    image_size: int = 4,
    output_size: int | None = None,
    flat_output: bool = False,
    external: str | None = None,
    metadata: dict | None = None,
    output_type: int | None = None,
    nan_from_label_1: bool = False,
    fails_from_label_1: bool = False,
    loop_trips: int | None = None,
    fill_per_image: int | None = None,
) -> onnx.ModelProto:
    """image = tanh(mean(noise) + label + bias), expanded to [N, S, S, 3].

    `output_size` makes the real output differ from the metadata's image_size; `flat_output`
    makes it [N, 128]; `external` stores `bias` as external data at that location;
    `metadata` overrides or adds raw (already JSON-encoded) metadata values; `output_type`
    casts the image to another TensorProto type. From label 1 on, `nan_from_label_1` gives
    NaN pixels (sqrt(-label)) and `fails_from_label_1` fails inside onnxruntime (a Gather
    out of range); label 0, which the load probe uses, works. `loop_trips` adds a Loop node
    of that many trips (2**62: it never ends) whose result is added times zero;
    `fill_per_image` expands a float tensor of that many values per image inside the graph
    (memory no output size shows), summed and added times zero.
    """
    labels = ["cat", "dog"] if labels is None else labels
    size = output_size or image_size
    target = [128] if flat_output else [size, size, 3]
    bias = numpy_helper.from_array(np.zeros(1, np.float32), "bias")
    if external is not None:
        bias.ClearField("raw_data")
        bias.data_location = TensorProto.EXTERNAL
        for key, value in (("location", external), ("offset", "0"), ("length", "4")):
            bias.external_data.add(key=key, value=value)
    nodes = [
        helper.make_node("ReduceMean", ["noise"], ["mean"], axes=[1], keepdims=1),
        helper.make_node("Cast", ["label"], ["label_f"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["label_f", "axis1"], ["label_col"]),
        helper.make_node("Add", ["mean", "label_col"], ["plain_sum"]),
        *(
            [
                helper.make_node("Neg", ["label_col"], ["minus_label"]),
                helper.make_node("Sqrt", ["minus_label"], ["nan_part"]),
                helper.make_node("Add", ["plain_sum", "nan_part"], ["sum"]),
            ]
            if nan_from_label_1
            else [helper.make_node("Identity", ["plain_sum"], ["sum"])]
        ),
        helper.make_node("Add", ["sum", "bias"], ["biased"]),
        helper.make_node("Shape", ["noise"], ["noise_shape"], end=1),
        helper.make_node("Concat", ["noise_shape", "ones"], ["column_shape"], axis=0),
        helper.make_node("Reshape", ["biased", "column_shape"], ["column"]),
        helper.make_node("Concat", ["noise_shape", "target"], ["image_shape"], axis=0),
        helper.make_node("Expand", ["column", "image_shape"], ["expanded"]),
        helper.make_node("Tanh", ["expanded"], ["tanh"]),
    ]
    last = "tanh"
    if fails_from_label_1:
        nodes += [
            helper.make_node("Gather", ["bias", "label"], ["gathered"], axis=0),
            helper.make_node("ReduceSum", ["gathered"], ["total"], keepdims=0),
            helper.make_node("Mul", ["total", "zero"], ["nothing"]),
            helper.make_node("Add", ["tanh", "nothing"], ["checked"]),
        ]
        last = "checked"
    if loop_trips is not None:
        body = helper.make_graph(
            [
                helper.make_node("Identity", ["cond_in"], ["cond_out"]),
                helper.make_node("Add", ["acc_in", "zero"], ["acc_out"]),
            ],
            "body",
            [
                helper.make_tensor_value_info("iteration", TensorProto.INT64, []),
                helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
                helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, []),
            ],
            [
                helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
                helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, []),
            ],
        )
        nodes += [
            helper.make_node("Loop", ["trips", "true", "zero"], ["looped"], body=body),
            helper.make_node("Add", [last, "looped"], ["after_loop"]),
        ]
        last = "after_loop"
    if fill_per_image is not None:
        nodes += [
            helper.make_node("Concat", ["noise_shape", "fill"], ["fill_shape"], axis=0),
            helper.make_node("Expand", ["zero", "fill_shape"], ["filled"]),
            helper.make_node("ReduceSum", ["filled"], ["fill_total"], keepdims=0),
            helper.make_node("Mul", ["fill_total", "zero"], ["fill_nothing"]),
            helper.make_node("Add", [last, "fill_nothing"], ["after_fill"]),
        ]
        last = "after_fill"
    if output_type is not None:
        nodes.append(helper.make_node("Cast", [last], ["cast"], to=output_type))
        last = "cast"
    nodes.append(helper.make_node("Identity", [last], ["image"]))
    ones = [1] * len(target)
    initializers = [
        bias,
        numpy_helper.from_array(np.array([1], np.int64), "axis1"),
        numpy_helper.from_array(np.array(ones, np.int64), "ones"),
        numpy_helper.from_array(np.array(target, np.int64), "target"),
        numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
        numpy_helper.from_array(np.array(loop_trips or 0, np.int64), "trips"),
        numpy_helper.from_array(np.array(True), "true"),
        numpy_helper.from_array(np.array([fill_per_image or 1], np.int64), "fill"),
    ]
    graph = helper.make_graph(
        nodes,
        "hostile",
        [
            helper.make_tensor_value_info("noise", TensorProto.FLOAT, ["N", latent_dim]),
            helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
        ],
        [helper.make_tensor_value_info("image", output_type or TensorProto.FLOAT, None)],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    props = ModelInfo(labels=["x"], latent_dim=latent_dim, image_size=image_size).to_props()
    props["labels"] = json.dumps(labels)
    props.update(metadata or {})
    helper.set_model_props(model, props)
    return model


def save(model: onnx.ModelProto, path: Path) -> Path:
    path.write_bytes(model.SerializeToString())
    return path
