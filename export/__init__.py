"""Export stage: the trained generator as a self-describing ONNX file (tf2onnx)."""

# The ONNX opsets cgan-export writes (here, without TensorFlow, for the option's check):
# tf2onnx 1.17 converts to 18 at most (its OPSET_TO_IR_VERSION; 19 fails), and the dcgan
# generator's transposed convolutions need 9 (measured with both archs, fp32 and fp16).
MIN_OPSET, MAX_OPSET = 9, 18
