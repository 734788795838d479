"""A pretrained ImageNet network (EfficientNet-Lite0), built by the project, offline.

- :mod:`~common.imagenet.torchfile` reads the legacy PyTorch checkpoint without PyTorch;
- :mod:`~common.imagenet.weights` finds it (the pip package) and checks it;
- :mod:`~common.imagenet.architecture` is the one table both builders follow:
  :mod:`~common.imagenet.keras_model` (keras.layers, for training code) and
  :mod:`~common.imagenet.onnx_model` (onnx.helper, no TensorFlow);
- :mod:`~common.imagenet.runner` runs the ONNX form on onnxruntime;
- :mod:`~common.imagenet.classes`, :mod:`~common.imagenet.wordnet`,
  :mod:`~common.imagenet.labelmap` and :mod:`~common.imagenet.zeroshot` say which ImageNet
  classes count as a label. See docs/imagenet.md.

Importing this package imports nothing heavy; each module imports what it needs.
"""
