"""Datasets as in-memory uint8 arrays plus label names; the tf.data pipeline is elsewhere."""

from cgan.training.data.source import LabelledImages, load_dataset

__all__ = ["LabelledImages", "load_dataset"]
