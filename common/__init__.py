"""Code every stage may import (gather, train, evaluate): nothing here needs TensorFlow
unless a function says so, so the gather stage and the onnxruntime paths stay light."""
