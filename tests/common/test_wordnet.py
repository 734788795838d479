"""WordNet reading and the label -> ImageNet classes rule: a tiny database the tests write,
then the real one (Debian's wordnet-base) for the mappings docs/imagenet.md promises."""

from __future__ import annotations

from pathlib import Path

import pytest

from cgan.common.errors import ImageNetError
from cgan.common.imagenet.classes import ImageNetClasses
from cgan.common.imagenet.labelmap import map_label, parse_assignments
from cgan.common.imagenet.wordnet import WordNet

# offset-free description: key -> (words, hyponym keys)
TINY = {
    "animal": (["animal"], ["canine", "feline"]),
    "canine": (["canine"], ["dog"]),
    "dog": (["dog", "domestic_dog"], ["terrier", "puppy"]),
    "terrier": (["terrier"], []),
    "puppy": (["puppy"], []),
    "feline": (["feline"], ["cat"]),
    "cat": (["cat"], []),
    "hotdog": (["hotdog", "dog"], []),
    "mouse": (["mouse"], []),
}


def write_tiny_wordnet(folder: Path) -> dict[str, str]:
    """data.noun whose lines start with their byte offsets, index.noun, noun.exc."""
    folder.mkdir(parents=True, exist_ok=True)
    header = "  1 This is a test database, not WordNet itself.\n"
    offsets: dict[str, str] = {}
    position = len(header)
    draft = {}
    for key, (words, _) in TINY.items():  # offsets first (lines have a fixed length per key)
        offsets[key] = f"{position:08d}"
        draft[key] = _line("00000000", words, ["00000000"] * len(TINY[key][1]))
        position += len(draft[key].encode())
    lines = [
        _line(offsets[k], words, [offsets[h] for h in kids]) for k, (words, kids) in TINY.items()
    ]
    (folder / "data.noun").write_text(header + "".join(lines), encoding="latin-1")
    senses: dict[str, list[str]] = {}
    for key, (words, _) in TINY.items():
        for word in words:
            senses.setdefault(word.lower(), []).append(offsets[key])
    index = "".join(
        f"{w} n {len(o)} 1 ~ {len(o)} 0 {' '.join(o)}  \n" for w, o in sorted(senses.items())
    )
    (folder / "index.noun").write_text(header + index, encoding="latin-1")
    (folder / "noun.exc").write_text("mice mouse\n", encoding="latin-1")
    return offsets


def _line(offset: str, words: list[str], hyponyms: list[str]) -> str:
    word_part = " ".join(f"{w} 0" for w in words)
    pointers = " ".join(f"~ {h} n 0000" for h in hyponyms)
    return (
        f"{offset} 05 n {len(words):02x} {word_part} {len(hyponyms):03d}"
        f"{' ' + pointers if pointers else ''} | a test synset  \n"
    )


def test_a_database_the_tests_write(tmp_path):
    offsets = write_tiny_wordnet(tmp_path / "wn")
    wordnet = WordNet(tmp_path / "wn")
    assert wordnet.senses("Dog") == [offsets["dog"], offsets["hotdog"]]  # most frequent first
    assert wordnet.senses("dogs") == wordnet.senses("dog")  # plural
    assert wordnet.senses("mice") == [offsets["mouse"]]  # irregular plural
    assert wordnet.senses("domestic dog") == [offsets["dog"]]  # spaces are underscores
    assert wordnet.senses("unicorn") == []
    assert wordnet.closure([offsets["canine"]]) == {
        offsets[k] for k in ("canine", "dog", "terrier", "puppy")
    }
    assert wordnet.synset(offsets["dog"]).words == ("dog", "domestic_dog")

    classes = ImageNetClasses(
        tuple(f"n{offsets[k]}" for k in ("terrier", "cat", "hotdog")), ("terrier", "cat", "hotdog")
    )
    dog = map_label("dog", wordnet, classes)
    assert dog.classes == (0,) and dog.checked  # the first sense only: not the hotdog
    assert map_label("dog", wordnet, classes, spec="dog.n.02").classes == (2,)
    assert map_label("pets", wordnet, classes, spec="dog+cat").classes == (0, 1)
    assert map_label("animal", wordnet, classes).classes == (0, 1)
    assert not map_label("mouse", wordnet, classes).checked
    assert not map_label("dog", wordnet, classes, spec="none").checked
    assert map_label("puppy_pics", wordnet, classes, words=["terrier"]).classes == (0,)


def test_damaged_or_missing_database_is_one_error(tmp_path):
    with pytest.raises(ImageNetError, match="wordnet-base"):
        WordNet(tmp_path / "nowhere")
    offsets = write_tiny_wordnet(tmp_path / "wn")
    wordnet = WordNet(tmp_path / "wn")
    wrong = f"{int(offsets['dog']) + 3:08d}"
    with pytest.raises(ImageNetError, match="no noun synset"):
        wordnet.synset(wrong)
    with pytest.raises(ImageNetError, match="8-digit"):
        wordnet.synset("12")


def test_label_specs_are_checked(tmp_path):
    offsets = write_tiny_wordnet(tmp_path / "wn")
    wordnet = WordNet(tmp_path / "wn")
    classes = ImageNetClasses((f"n{offsets['cat']}",), ("cat",))
    with pytest.raises(ImageNetError, match="has no noun 'unicorn'"):
        map_label("x", wordnet, classes, spec="unicorn")
    with pytest.raises(ImageNetError, match="has 2 noun senses"):
        map_label("x", wordnet, classes, spec="dog.n.3")
    with pytest.raises(ImageNetError, match="no noun synset"):
        map_label("x", wordnet, classes, spec="n99999999")
    assert parse_assignments(["cat=n02121808,dog=dog.n.01", "deer=none"]) == {
        "cat": "n02121808",
        "dog": "dog.n.01",
        "deer": "none",
    }
    for bad in ("cat", "=n02121808", "cat="):
        with pytest.raises(ImageNetError, match="LABEL=SYNSET"):
            parse_assignments([bad])


@pytest.mark.parametrize(
    ("label", "spec", "count", "example"),
    [
        ("dog", None, 118, "Beagle"),
        ("cat", None, 5, "Siamese cat"),  # the project default: house cat
        ("cats", None, 5, "Persian cat"),
        ("cat", "cat.n.01", 7, "lynx"),  # sense 1 also holds the wildcats
        ("cat", "big cat", 6, "lion"),
        ("frog", None, 3, "tree frog"),
        ("deer", None, 0, None),  # no cervid in ImageNet-1k
        ("automobile", None, 10, "sports car"),
        ("truck", None, 8, "fire truck"),
        ("airplane", "airplane+warplane", 2, "airliner"),
    ],
)
def test_real_wordnet_mappings(wordnet, imagenet_classes, label, spec, count, example):
    concept = map_label(label, wordnet, imagenet_classes, spec)
    assert len(concept.classes) == count, concept.describe()
    if example:
        assert example in {imagenet_classes.names[i] for i in concept.classes}


def test_imagenet_ids_are_wordnet_nouns(wordnet, imagenet_classes):
    for wnid in imagenet_classes.wnids[::50]:
        assert wordnet.synset(wnid[1:]).wnid == wnid
