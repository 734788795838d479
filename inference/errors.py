"""Errors a user of the inference API or CLI should see as one plain line."""


class InferenceError(Exception):
    """Bad input or an unusable model: shown as a one-line message, exit code 2."""


class MetadataError(InferenceError):
    """The ONNX file lacks the metadata of the export contract."""
