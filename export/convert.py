"""Keras generator -> ONNX graph, through tf2onnx.from_function (from_keras breaks on
some Keras 3 models). Inputs noise float32 [B, latent] and label int64 [B]; output image
float32 [B, H, W, 3] in [-1, 1]; no random op in the graph."""

from __future__ import annotations

import keras
import onnx
import tensorflow as tf
import tf2onnx

from cgan.inference.metadata import INPUT_LABEL, INPUT_NOISE, OUTPUT_IMAGE, ModelInfo

DEFAULT_OPSET = 17  # tf2onnx 1.17 fails at opset 19 and above


def to_onnx(generator: keras.Model, latent_dim: int, opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    signature = [
        tf.TensorSpec([None, latent_dim], tf.float32, name=INPUT_NOISE),
        tf.TensorSpec([None], tf.int64, name=INPUT_LABEL),
    ]

    @tf.function(input_signature=signature)
    def generate(noise: tf.Tensor, label: tf.Tensor) -> dict[str, tf.Tensor]:
        image = generator([noise, tf.cast(label, tf.int32)], training=False)
        return {OUTPUT_IMAGE: tf.cast(image, tf.float32)}

    model, _ = tf2onnx.convert.from_function(generate, input_signature=signature, opset=opset)
    return model


def attach_metadata(model: onnx.ModelProto, info: ModelInfo) -> None:
    del model.metadata_props[:]
    for key, value in info.to_props().items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.doc_string = (
        f"cgan-label2image conditional generator ({info.arch}, "
        f"{info.image_size}x{info.image_size}, {len(info.labels)} classes)"
    )
    model.producer_name = "cgan-label2image"
    model.producer_version = info.project_version


def to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """Half-precision weights and compute, float32 inputs and outputs (same contract)."""
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    half = convert_float_to_float16(model, keep_io_types=True)
    OnnxModel.graph_topological_sort(half.graph)  # the converter appends its input casts
    return half
