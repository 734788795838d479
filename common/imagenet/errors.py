"""The one exception type the ImageNet network's users report as a plain line."""


class ImageNetError(Exception):
    """Missing package, unreadable weights or WordNet, a bad synset: one line, no traceback."""
