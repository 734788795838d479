"""Export stage: the trained generator as a self-describing ONNX file (tf2onnx)."""
