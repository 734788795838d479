"""Dashboard stage: a Streamlit app over the inference API (generate, explore, inspect) and
over training run directories. It never imports TensorFlow, Keras or tf2onnx."""
