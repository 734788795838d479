"""Inference stage: generate images from an exported ONNX generator. Never imports TensorFlow."""
