"""Explore and Inspect views under AppTest."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import ImageSequence

from cgan.dashboard.imaging import auto_zoom
from cgan.inference.generator import ImageGenerator
from tests.dashboard.helpers import (
    assert_clean,
    decode,
    download,
    image_urls,
    one_error,
    show,
    widget,
)

TILE = 32 * auto_zoom(32)


@pytest.mark.slow
def test_interpolation_strip_and_gif(app, media):
    show(app.run(), "Explore")
    assert_clean(app)
    widget(app, "explore.seed_a").set_value(3)
    widget(app, "explore.seed_b").set_value(9)
    widget(app, "explore.frames").set_value(5).run()
    assert_clean(app)
    strip, mime, name = download(app, media, "explore.download_strip")
    assert (mime, name) == ("image/png", "red-disc-seed3-to-9.png")
    assert decode(strip).size == (5 * (TILE + 2) + 2, TILE + 4)
    assert "explore.download_gif" not in [getattr(n, "key", None) for n in app.main]

    widget(app, "explore.gif").set_value(True).run()
    assert_clean(app)
    gif, mime, name = download(app, media, "explore.download_gif")
    assert (mime, name) == ("image/gif", "red-disc-seed3-to-9.gif")
    animation = decode(gif)
    assert animation.size == (TILE, TILE)
    assert sum(1 for _ in ImageSequence.Iterator(animation)) == 8  # 5 forth, 3 back

    widget(app, "explore.bounce").set_value(False).run()
    gif, _, _ = download(app, media, "explore.download_gif")
    assert sum(1 for _ in ImageSequence.Iterator(decode(gif))) == 5


@pytest.mark.slow
def test_new_seeds_change_the_interpolation(app):
    show(app.run(), "Explore")
    before = image_urls(app)
    a, b = widget(app, "explore.seed_a").value, widget(app, "explore.seed_b").value
    widget(app, "explore.new_seeds").click().run()
    assert_clean(app)
    assert (widget(app, "explore.seed_a").value, widget(app, "explore.seed_b").value) != (a, b)
    assert image_urls(app)[0] != before[0]


@pytest.mark.slow
def test_class_sweep_puts_the_same_noise_through_every_class(app, media, dashboard_env):
    show(app.run(), "Explore")
    widget(app, "explore.sweep_seed").set_value(11)
    widget(app, "explore.sweep_columns").set_value(2).run()
    assert_clean(app)
    sweep, mime, name = download(app, media, "explore.download_sweep")
    assert (mime, name) == ("image/png", "class-sweep-seeds11-12.png")
    picture = np.asarray(decode(sweep).convert("RGB"))
    assert picture.shape[0] == 3 * (TILE + 2) + 2  # one row per class
    generator = ImageGenerator(dashboard_env.model)
    expected = generator.class_sweep(12)  # second column: seed 12, every class
    right = picture.shape[1] - 2 - TILE
    for row, image in enumerate(expected):
        top = 2 + row * (TILE + 2)
        tile = picture[top : top + TILE, right : right + TILE]
        np.testing.assert_array_equal(tile[:: TILE // 32, :: TILE // 32], image)


@pytest.mark.slow
def test_inspect_shows_the_model_card_facts_and_latency(app):
    show(app.run(), "Inspect")
    assert_clean(app)
    text = "\n".join(m.value for m in app.markdown)
    for fact in (
        "red-disc, green-square, blue-triangle",
        "32x32",
        "sngan",
        "synthetic",
        "4 generator steps",
        "EMA generator (decay 0.99)",
        "| ONNX opset | 17 |",
        "CPUExecutionProvider",
        "| 1 image |",
        "| 100 images |",
        "images/s",
    ):
        assert fact in text, fact
    assert any("not evaluated" in i.value for i in app.info)  # the tiny run has no metrics
    widget(app, "inspect.remeasure").click().run()
    assert_clean(app)


def with_metadata(source, target, **values):
    """A copy of an exported model with some metadata entries replaced."""
    onnx = pytest.importorskip("onnx")
    model = onnx.load(str(source))
    for entry in model.metadata_props:
        if entry.key in values:
            entry.value = json.dumps(values[entry.key])
    onnx.save(model, str(target))
    return target


@pytest.mark.slow
def test_inspect_shows_metrics_with_their_protocol(app, dashboard_files, tmp_path, monkeypatch):
    metrics = {
        "fid": 41.5,
        "inception_score": 6.2,
        "protocol": {"images": 10000, "reference": "cifar10 test", "seed": 0},
    }
    path = with_metadata(dashboard_files.model, tmp_path / "evaluated.onnx", metrics=metrics)
    monkeypatch.setenv("CGAN_MODEL", str(path))
    show(app.run(), "Inspect")
    assert_clean(app)
    text = "\n".join(m.value for m in app.markdown)
    assert "| fid | 41.5 |" in text and "| inception_score | 6.2 |" in text
    assert any(j.value and "cifar10 test" in j.value for j in app.json)


@pytest.mark.slow
def test_wrongly_typed_metadata_gives_an_error_box(app, dashboard_files, tmp_path, monkeypatch):
    path = with_metadata(
        dashboard_files.model,
        tmp_path / "odd.onnx",
        epochs="many",
        parity_max_abs_diff="tiny",
        metrics=[1, 2],
        extra="none",
    )
    monkeypatch.setenv("CGAN_MODEL", str(path))
    show(app.run(), "Inspect")
    message = one_error(app)
    assert "wrongly typed" in message and "epochs" in message
