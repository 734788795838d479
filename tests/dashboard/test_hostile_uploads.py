"""Hostile uploads and internal bugs in the dashboard: one error box, no image, no traceback,
and no byte of the server's files on the page."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from cgan.dashboard import sidebar
from cgan.dashboard.loading import UploadedModel
from tests.dashboard.helpers import assert_clean, image_urls, one_error, show, widget
from tests.hostile_models import hostile_model

HOSTILE_UPLOADS = {
    "external data from the server's folder": (
        dict(external="secret.txt"),
        "refers to external data",
    ),
    "output [N, 128]": (dict(flat_output=True), "output is shaped"),
    "2048px output, metadata says 32": (
        dict(image_size=32, output_size=2048),
        "output is shaped [1, 2048, 2048, 3]",
    ),
    "image_size 100000": (dict(image_size=100_000), "image_size metadata"),
    "label that is a path": (dict(labels=["../../escaped/evil", "b"]), "path separator"),
    "NUL in a label": (dict(labels=["a\x00b", "b"]), "control characters"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(HOSTILE_UPLOADS))
def test_hostile_upload_is_one_error_box(app, tmp_path, monkeypatch, media, case):
    options, fragment = HOSTILE_UPLOADS[case]
    secret = np.float32(0.5).tobytes()
    (tmp_path / "secret.txt").write_bytes(secret)
    monkeypatch.chdir(tmp_path)  # where onnxruntime would look for a bytes model's data
    app.run()
    app.session_state[sidebar.UPLOAD] = UploadedModel(
        "evil.onnx", hostile_model(**options).SerializeToString()
    )
    widget(app, "model.source").set_value("Upload").run()
    message = one_error(app)
    assert message.startswith("evil.onnx: ") and fragment in message, message
    assert not image_urls(app)
    assert not any(secret in served.data for served in media.values())
    show(app, "Training")  # the rest of the app still works
    assert_clean(app)


def test_a_bug_in_a_page_is_one_line_and_logged(app, monkeypatch, caplog):
    import cgan.dashboard.imaging as imaging

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug deep down\nwith a second line")

    # The Generate page alone calls enlarge (for its single-image download); a page file
    # is run afresh on every rerun, so it imports the patched function.
    monkeypatch.setattr(imaging, "enlarge", broken)
    with caplog.at_level(logging.ERROR, logger="cgan.dashboard"):
        app.run()
    message = one_error(app)
    assert "ZeroDivisionError: a bug deep down" in message and "server log" in message
    assert any(record.exc_info for record in caplog.records)  # the traceback went to the log
    show(app, "Explore")  # other pages are unaffected
    assert_clean(app)


@pytest.mark.slow
def test_a_grid_over_the_memory_cap_is_refused(app, tmp_path, monkeypatch):
    """A 1024px model at the largest zoom: 32 tiles would be 6 GiB of pixels."""
    model = hostile_model(labels=["cat", "dog"], image_size=1024)
    app.run()
    app.session_state[sidebar.UPLOAD] = UploadedModel("big.onnx", model.SerializeToString())
    widget(app, "model.source").set_value("Upload").run()
    app.select_slider(key="sampling.zoom").set_value("8").run()
    assert "the limit is 1 GiB" in one_error(app)
    assert not image_urls(app)


def test_a_bug_outside_the_pages_is_one_line_too(app, monkeypatch):
    def broken():
        raise KeyError("sampling")

    monkeypatch.setattr(sidebar, "sampling_settings", broken)
    app.run()
    assert "KeyError" in one_error(app)
