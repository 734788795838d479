"""One family of errors a user should see as a plain line, never as a traceback.

Every command catches `CganError` alone (see `cgan.common.cli.run_command`); each stage
raises its own subclass, so a caller can still tell a bad model from a bad crawl.
"""

from __future__ import annotations


class CganError(Exception):
    """Bad input or an unusable file: one line on stderr and `exit_code`."""

    exit_code = 2


class InferenceError(CganError):
    """Bad generation options or an unusable ONNX model."""


class MetadataError(InferenceError):
    """The ONNX file lacks the metadata of the export contract."""


class TrainingError(CganError):
    """A bad training option, config file, dataset or checkpoint."""


class ExportError(CganError):
    """A run that cannot be exported, or an export that disagrees with Keras."""


class EvaluationError(CganError):
    """A model or judge that cannot be evaluated."""


class RecordsError(CganError):
    """A records dataset (cgan.common.records) that cannot be written or read: a bad
    manifest, a missing or truncated shard, a damaged record."""


class ScrapeError(CganError):
    """A crawl, dataset build or content check that cannot go on."""


class ImageNetError(CganError):
    """A missing package, unreadable weights or WordNet, a bad synset."""


class DashboardError(CganError):
    """An input the dashboard refuses (shown as one line in the page)."""
