"""Which ImageNet-1k classes count as a label: WordNet hyponym closures.

The rule (docs/imagenet.md): a label stands for the first noun sense WordNet lists for it
(its most frequent one), after underscores become spaces and a plural becomes singular;
the ImageNet classes inside that synset's hyponym closure count as the label. A few words
whose first sense is broader than what one searches for have a project default instead
(:data:`DEFAULT_SYNSETS`). A user names the synsets explicitly with ``LABEL=SYNSET[+SYNSET]``:
``n02121808`` (a WordNet id), ``domestic_cat.n.01`` (a lemma and sense number), ``house cat``
(a lemma's first sense), or ``none`` to leave the label unchecked. A label whose closure
holds no ImageNet class (``deer``) is unchecked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from cgan.common.errors import ImageNetError
from cgan.common.imagenet.classes import ImageNetClasses
from cgan.common.imagenet.wordnet import Synset, WordNet

#: Words mapped to another synset than their first sense, and why.
DEFAULT_SYNSETS: dict[str, tuple[str, str]] = {
    # Sense 1 ("cat, true cat") also holds the wildcats, so cougar and lynx would count.
    "cat": ("n02121808", "house cat: 'cat' sense 1 also covers cougar and lynx"),
}
UNCHECKED = frozenset({"none", "-"})
_WNID = re.compile(r"^n?(\d{8})$")
_SENSE = re.compile(r"^(.+)\.n\.(\d{1,2})$")


@dataclass(frozen=True)
class LabelConcept:
    """A label, the synsets it stands for and the ImageNet classes that count as it."""

    label: str
    synsets: tuple[Synset, ...]
    classes: tuple[int, ...]
    rule: str

    @property
    def checked(self) -> bool:
        """Whether the network can tell this label's images apart at all."""
        return bool(self.classes)

    def describe(self) -> str:
        """``dog -> n02084071 (dog): 118 ImageNet classes [first noun sense]``."""
        names = ", ".join(f"{s.wnid} ({s.words[0]})" for s in self.synsets) or "nothing"
        return f"{self.label} -> {names}: {len(self.classes)} ImageNet classes [{self.rule}]"


def _resolve_part(part: str, wordnet: WordNet, label: str) -> str:
    text = part.strip()
    match = _WNID.match(text)
    if match:
        return wordnet.synset(match.group(1)).offset
    sense = _SENSE.match(text)
    lemma, number = (sense.group(1), int(sense.group(2))) if sense else (text, 1)
    senses = wordnet.senses(lemma)
    if not senses:
        raise ImageNetError(f"{label}={part}: WordNet has no noun {lemma!r}")
    if not 1 <= number <= len(senses):
        raise ImageNetError(f"{label}={part}: {lemma!r} has {len(senses)} noun senses")
    return senses[number - 1]


def parse_spec(spec: str, wordnet: WordNet, label: str) -> tuple[str, ...] | None:
    """Offsets named by ``SYNSET[+SYNSET]``; None for ``none`` (leave unchecked)."""
    if spec.strip().lower() in UNCHECKED:
        return None
    parts = [part for part in spec.split("+") if part.strip()]
    if not parts:
        raise ImageNetError(f"{label}=: name a synset, such as n02084071 or dog.n.01, or none")
    return tuple(dict.fromkeys(_resolve_part(part, wordnet, label) for part in parts))


def map_label(
    label: str,
    wordnet: WordNet,
    classes: ImageNetClasses,
    spec: str | None = None,
    words: Iterable[str] = (),
) -> LabelConcept:
    """The concept for ``label``: ``spec`` if given, else the project default, else the first
    noun sense of the label (then of each of ``words``, such as its search query)."""
    if spec is not None:
        offsets, rule = parse_spec(spec, wordnet, label), f"named: {spec.strip()}"
        if offsets is None:
            return LabelConcept(label, (), (), "left unchecked on request")
    elif default := next(
        (
            DEFAULT_SYNSETS[lemma]
            for lemma in wordnet.lemma_candidates(label)
            if lemma in DEFAULT_SYNSETS
        ),
        None,
    ):
        offsets, rule = (default[0][1:],), f"project default, {default[1]}"
    else:
        offsets, rule = (), "not a WordNet noun"
        for word in (label, *words):
            senses = wordnet.senses(word)
            if senses:
                offsets, rule = (senses[0],), f"first noun sense of {word!r}"
                break
    synsets = tuple(wordnet.synset(offset) for offset in offsets)
    index = classes.index_of()
    closure = wordnet.closure(offsets) if offsets else set()
    members = tuple(sorted(index[f"n{offset}"] for offset in closure if f"n{offset}" in index))
    return LabelConcept(label, synsets, members, rule)


def parse_assignments(values: Iterable[str], what: str = "--synset") -> dict[str, str]:
    """``["cat=n02121808,dog=dog.n.01"]`` -> {label: spec}; comma separated, repeatable."""
    assignments: dict[str, str] = {}
    for value in values:
        for item in value.split(","):
            if not item.strip():
                continue
            label, sep, spec = item.partition("=")
            if not sep or not label.strip() or not spec.strip():
                raise ImageNetError(f"{what} expects LABEL=SYNSET, got {item.strip()!r}")
            assignments[label.strip()] = spec.strip()
    return assignments
