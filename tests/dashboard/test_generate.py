"""Generate view under AppTest: the grid, new seeds, reproducibility, downloads."""

from __future__ import annotations

import numpy as np
import pytest

from cgan.dashboard import loading
from cgan.dashboard.imaging import auto_zoom
from cgan.inference.generator import MAX_SEED, ImageGenerator
from tests.dashboard.helpers import (
    assert_clean,
    decode,
    download,
    image_urls,
    one_error,
    payload,
    show,
    widget,
)

PAD = 2  # make_grid's default padding


def grid_size(rows: int, columns: int, tile: int) -> tuple[int, int]:
    return columns * (tile + PAD) + PAD, rows * (tile + PAD) + PAD


@pytest.mark.slow
def test_generate_shows_a_grid_of_the_chosen_class(app):
    app.run()
    assert_clean(app)
    assert widget(app, "generate.label").options == ["red-disc", "green-square", "blue-triangle"]
    (url,) = image_urls(app)
    assert "red-disc" in app.get("image")[0].captions[0]
    assert "seeds 0–31" in app.get("image")[0].captions[0]

    widget(app, "generate.label").select("green-square").run()
    assert_clean(app)
    assert image_urls(app) != [url]
    assert "green-square" in app.get("image")[0].captions[0]
    assert any("32 images generated in" in c.value for c in app.caption)


def test_the_same_seed_gives_the_same_images(app):
    app.run()
    first = image_urls(app)
    widget(app, "generate.seed").set_value(5).run()
    assert image_urls(app) != first
    widget(app, "generate.seed").set_value(0).run()
    assert image_urls(app) == first


def test_new_seed_gives_new_images_from_the_same_session(app, monkeypatch):
    loading._cached_file.clear()
    opened = []
    original = loading.open_generator

    def counting(*args, **kwargs):
        opened.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(loading, "open_generator", counting)
    app.run()
    before, seed = image_urls(app), widget(app, "generate.seed").value
    widget(app, "generate.new_seed").click().run()
    assert_clean(app)
    assert widget(app, "generate.seed").value != seed
    assert image_urls(app) != before
    widget(app, "generate.new_seed").click().run()
    assert len(opened) == 1  # one onnxruntime session for three runs


def test_downloads_are_the_grid_and_the_chosen_image(app, media, dashboard_env):
    app.run()
    widget(app, "generate.rows").set_value(2)
    widget(app, "generate.columns").set_value(3)
    widget(app, "generate.seed").set_value(40).run()
    widget(app, "generate.single").set_value(4).run()
    assert_clean(app)
    scale = auto_zoom(32)

    grid, mime, name = download(app, media, "generate.download_grid")
    assert (mime, name) == ("image/png", "red-disc-seeds40-45.png")
    assert decode(grid).size == grid_size(2, 3, 32 * scale)
    assert grid == payload(media, image_urls(app)[0]).data  # what is shown is what is saved

    single, mime, name = download(app, media, "generate.download_image")
    assert (mime, name) == ("image/png", "red-disc-seed0044.png")
    expected = ImageGenerator(dashboard_env.model).generate(["red-disc"], [44])[0]
    expected = expected.repeat(scale, 0).repeat(scale, 1)
    np.testing.assert_array_equal(np.asarray(decode(single).convert("RGB")), expected)


def test_a_ten_by_ten_grid_and_truncation(app):
    app.run()
    widget(app, "generate.rows").set_value(10)
    widget(app, "generate.columns").set_value(10).run()
    widget(app, "sampling.truncation").set_value(0.5).run()
    assert_clean(app)
    assert "truncation 0.5" in app.get("image")[0].captions[0]
    assert "seeds 0–99" in app.get("image")[0].captions[0]


@pytest.mark.parametrize("seed", [MAX_SEED])
def test_seeds_past_the_last_one_give_one_error_line(app, seed):
    app.run()
    widget(app, "generate.seed").set_value(seed).run()
    assert "outside" in one_error(app)


@pytest.mark.slow
def test_choices_survive_a_visit_to_another_view(app):
    app.run()
    widget(app, "generate.label").select("blue-triangle")
    widget(app, "generate.rows").set_value(2)
    widget(app, "generate.seed").set_value(42).run()
    shown = image_urls(app)
    show(app, "Inspect")
    show(app, "Generate")
    assert_clean(app)
    assert widget(app, "generate.label").value == "blue-triangle"
    assert (widget(app, "generate.rows").value, widget(app, "generate.seed").value) == (2, 42)
    assert image_urls(app) == shown
