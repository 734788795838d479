"""The tf.data input pipelines: in-memory uint8 images, or a records folder streamed from
disk (cgan.common.records); both shuffled per epoch, batched, prefetched.

The order of examples is a pure function of (seed, position): epoch e is a stateless
shuffle seeded with (seed, e). A resumed run therefore skips to exactly the example where
the interrupted one stopped, without saving any iterator or shuffle-buffer state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

from cgan.common.records import LABEL_BYTES, RecordManifest
from cgan.training.data import RecordSet

if TYPE_CHECKING:
    from cgan.training.labelled import LabelledImages

# Records shuffled together when streaming from disk: as many as fit in 32 MiB (2,730 at
# 64x64, 10,000 at 32x32), between 1,000 and 10,000. A window costs about four times its
# bytes in resident memory (copies while it is permuted, and what glibc's per-thread
# arenas keep after freeing): 10,000 at 64x64 measured +550 MB, the default +250 MB.
SHUFFLE_BYTES = 32 * 2**20
SHUFFLE_RANGE = (1_000, 10_000)
MAX_PARALLEL_SHARDS = 8
_ENDLESS = np.iinfo(np.int64).max


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
        tf.data.Dataset.range(start_epoch, _ENDLESS)
        .flat_map(epoch_order)
        .skip(offset)
        .batch(batch_size, drop_remainder=True)
        .map(lookup, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )


LABEL_OUT_OF_RANGE = "a record label is outside the classes of records.json"


def make_record_dataset(
    manifest: RecordManifest,
    batch_size: int,
    seed: int,
    start_example: int = 0,
    shuffle_buffer: int | None = None,
) -> tf.data.Dataset:
    """The same stream as `make_dataset`, read from a records folder that need not fit
    in memory.

    Epoch e reads the shards in a stateless shuffle of their order seeded (seed, e),
    up to eight at a time and interleaved record by record, then permutes each window of
    `shuffle_buffer` consecutive records (default: `default_shuffle_buffer`) with a
    stateless shuffle seeded (seed, e, window). The writer shuffled the whole set across
    the shards once, so this window only has to vary the order from epoch to epoch.
    Dataset.shuffle is not used: its seed is combined with TensorFlow's process-global
    seed, so its order would not be a function of (seed, position) alone. The examples
    a resume skips are skipped as raw bytes, before any decoding.
    """
    count = manifest.total
    if count < batch_size:
        raise ValueError(f"the dataset has {count} images, fewer than one batch of {batch_size}")
    if shuffle_buffer is None:
        shuffle_buffer = default_shuffle_buffer(manifest.record_bytes)
    if shuffle_buffer < 1:
        raise ValueError("the shuffle buffer must hold at least one example")
    start_epoch, offset = divmod(start_example, count)
    files = tf.constant([str(path) for path in manifest.shard_paths()])
    shards = len(manifest.shards)
    window = min(shuffle_buffer, count)
    side = manifest.resolution
    classes = tf.constant(len(manifest.names), tf.int32)

    def epoch_records(epoch: tf.Tensor) -> tf.data.Dataset:
        epoch_seed = tf.stack([tf.constant(seed, tf.int64), epoch])
        order = tf.random.experimental.stateless_shuffle(tf.range(shards), seed=epoch_seed)

        def permute(index: tf.Tensor, block: tf.Tensor) -> tf.Tensor:
            block_seed = tf.random.experimental.stateless_fold_in(epoch_seed, index)
            shuffled = tf.random.experimental.stateless_shuffle(
                tf.range(tf.shape(block)[0]), seed=block_seed
            )
            return tf.gather(block, shuffled)

        return (
            tf.data.Dataset.from_tensor_slices(tf.gather(files, order))
            .interleave(
                tf.data.TFRecordDataset,
                cycle_length=min(MAX_PARALLEL_SHARDS, shards),
                block_length=1,
                num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True,
            )
            .batch(window)
            .enumerate()
            .map(permute)
            .unbatch()
        )

    def decode(records: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        pixels = tf.io.decode_raw(records, tf.uint8)[:, LABEL_BYTES:]
        images = tf.reshape(pixels, [batch_size, side, side, 3])
        labels = tf.reshape(
            tf.io.decode_raw(
                tf.strings.substr(records, 0, LABEL_BYTES), tf.int32, little_endian=True
            ),
            [batch_size],
        )
        # A record's checksum proves its bytes unchanged, not its label valid.
        checks = [
            tf.debugging.assert_non_negative(labels, message=LABEL_OUT_OF_RANGE),
            tf.debugging.assert_less(labels, classes, message=LABEL_OUT_OF_RANGE),
        ]
        with tf.control_dependencies(checks):
            labels = tf.identity(labels)
        return tf.cast(images, tf.float32) / 127.5 - 1.0, labels

    options = tf.data.Options()
    options.deterministic = True
    # Every worker of a multi-worker run reads the whole stream and keeps its share of
    # each batch, as with the in-memory pipeline; sharding by file would change the order.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return (
        tf.data.Dataset.range(start_epoch, _ENDLESS)
        .flat_map(epoch_records)
        .skip(offset)
        .batch(batch_size, drop_remainder=True)
        .map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(tf.data.AUTOTUNE)
        .with_options(options)
    )


def default_shuffle_buffer(record_bytes: int) -> int:
    """Records in a shuffle window: SHUFFLE_BYTES' worth, within SHUFFLE_RANGE."""
    low, high = SHUFFLE_RANGE
    return max(low, min(high, SHUFFLE_BYTES // record_bytes))


def training_dataset(
    data: LabelledImages | RecordSet, batch_size: int, seed: int, start_example: int = 0
) -> tf.data.Dataset:
    """The stream for what `cgan.training.data.load_dataset` returned: records are read
    from disk, anything else is held in memory."""
    if isinstance(data, RecordSet):
        return make_record_dataset(data.manifest, batch_size, seed, start_example=start_example)
    return make_dataset(data.images, data.labels, batch_size, seed, start_example=start_example)
