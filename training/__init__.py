"""Training stage: a Keras 3 conditional GAN trained with TensorFlow."""

import os

# TensorFlow reads this once, when it is first imported (Keras imports it): quiet by
# default, while a user's own setting still wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
