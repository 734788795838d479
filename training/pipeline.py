"""The tf.data input pipeline: in-memory uint8 images, shuffled per epoch, batched, prefetched.

The order of examples is a pure function of (seed, position): epoch e is a stateless
shuffle seeded with (seed, e). A resumed run therefore skips to exactly the example where
the interrupted one stopped, without saving any iterator or shuffle-buffer state.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def make_dataset(
    images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int, start_example: int = 0
) -> tf.data.Dataset:
    """An endless stream of (float32 images in [-1, 1], int32 labels) batches."""
    count = len(labels)
    if count < batch_size:
        raise ValueError(f"the dataset has {count} images, fewer than one batch of {batch_size}")
    start_epoch, offset = divmod(start_example, count)
    images_t = tf.constant(images)
    labels_t = tf.constant(labels, tf.int32)

    def epoch_order(epoch: tf.Tensor) -> tf.data.Dataset:
        order = tf.random.experimental.stateless_shuffle(
            tf.range(count, dtype=tf.int32), seed=tf.stack([tf.constant(seed, tf.int64), epoch])
        )
        return tf.data.Dataset.from_tensor_slices(order)

    def lookup(index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        batch = tf.cast(tf.gather(images_t, index), tf.float32) / 127.5 - 1.0
        return batch, tf.gather(labels_t, index)

    return (
        tf.data.Dataset.range(start_epoch, np.iinfo(np.int64).max)
        .flat_map(epoch_order)
        .skip(offset)
        .batch(batch_size, drop_remainder=True)
        .map(lookup, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
