"""What makes a usable class label, in one place: the exporter and the inference loader refuse
a model whose labels break it, and training and the dataset build refuse such class folders
before any work, so that a bad name never costs hours of training first."""

from __future__ import annotations

import unicodedata

MAX_LABEL_LENGTH = 100
MAX_LABELS = 10_000


def label_problem(label: str) -> str | None:
    """Why one name cannot be a label (it becomes part of file names such as
    `dog-seed0007.png` and of page text), or None."""
    if not label.strip():
        return "it is empty"
    if len(label) > MAX_LABEL_LENGTH:
        return f"it is longer than {MAX_LABEL_LENGTH} characters"
    if any(unicodedata.category(ch).startswith("C") for ch in label):
        return "it holds control characters"
    if "/" in label or "\\" in label:
        return "it holds a path separator"
    if label.strip(" .") == "":
        return "it is only dots"
    if label != label.strip():
        return "it starts or ends with white space"
    return None


def labels_problem(labels: list[str]) -> str | None:
    """Why these names cannot be a model's labels, or None: each must be usable, and no two
    may be equal in any case (labels are found case-insensitively)."""
    if len(labels) > MAX_LABELS:
        return f"{len(labels)} labels; at most {MAX_LABELS} are allowed"
    seen: dict[str, str] = {}
    for label in labels:
        problem = label_problem(label)
        if problem:
            return f"label {label[:40]!r} is not usable: {problem}"
        folded = label.casefold()
        if folded in seen:
            return f"label {label[:40]!r} appears twice (as {seen[folded][:40]!r}: case is ignored)"
        seen[folded] = label
    return None
