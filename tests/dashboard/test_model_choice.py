"""Choosing the model: shipped, models folder, upload; bad files give one error line."""

from __future__ import annotations

import pytest

from cgan.common.errors import InferenceError
from cgan.dashboard import loading, sidebar
from cgan.dashboard.loading import MAX_UPLOAD_BYTES, UploadedModel, check_upload, validate_upload
from cgan.inference import default_model
from tests.dashboard.helpers import assert_clean, image_urls, one_error, show, widget

JUNK = b"\x08\x07this is not a protobuf at all" * 10


@pytest.fixture
def nothing_shipped(monkeypatch, tmp_path):
    """As in an install without a shipped model (whether or not this checkout has one)."""
    monkeypatch.delenv(default_model.ENV_VAR, raising=False)
    monkeypatch.setattr(default_model, "MODELS_DIR", tmp_path / "no-shipped-model")


def onnx_without_metadata() -> bytes:
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    node = helper.make_node("Identity", ["noise"], ["image"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("noise", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 8])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("model.onnx", b"", "is empty"),
        ("model.txt", b"hello", "is not an .onnx file"),
        ("model.onnx", JUNK, "cannot load the model"),
    ],
)
def test_validate_upload_refuses_bad_bytes(name, data, reason):
    with pytest.raises(InferenceError, match=reason) as caught:
        validate_upload(UploadedModel(name, data))
    assert "\n" not in str(caught.value)


def test_validate_upload_refuses_a_model_without_the_contract():
    with pytest.raises(InferenceError, match="no cgan metadata"):
        validate_upload(UploadedModel("plain.onnx", onnx_without_metadata()))


def test_upload_size_limit():
    with pytest.raises(InferenceError, match="the limit is"):
        check_upload("big.onnx", b"\0" * (MAX_UPLOAD_BYTES + 1))


def test_validate_upload_accepts_an_export(dashboard_files):
    generator = validate_upload(UploadedModel("tiny.onnx", dashboard_files.model.read_bytes()))
    assert generator.labels == ["red-disc", "green-square", "blue-triangle"]


@pytest.mark.slow
def test_bad_upload_through_the_state_hook_shows_one_error(app):
    app.run()
    app.session_state[sidebar.UPLOAD] = UploadedModel("junk.onnx", JUNK)
    widget(app, "model.source").set_value("Upload").run()
    assert "cannot load the model" in one_error(app)
    assert not image_urls(app)
    show(app, "Training")  # the rest of the app still works
    assert_clean(app)


@pytest.mark.slow
def test_good_upload_through_the_state_hook_is_opened_once(app, dashboard_files, monkeypatch):
    loading._cached_upload.clear()
    opened = []
    original = loading.open_generator
    monkeypatch.setattr(
        loading, "open_generator", lambda *a, **k: opened.append(1) or original(*a, **k)
    )
    app.run()
    app.session_state[sidebar.UPLOAD] = UploadedModel(
        "mine.onnx", dashboard_files.model.read_bytes()
    )
    widget(app, "model.source").set_value("Upload").run()
    assert_clean(app)
    assert len(image_urls(app)) == 1
    assert any("Using mine.onnx (" in c.value for c in app.sidebar.caption)
    widget(app, "generate.new_seed").click().run()
    app.session_state[sidebar.UPLOAD] = UploadedModel(
        "again.onnx",  # same bytes, same session
        dashboard_files.model.read_bytes(),
    )
    app.run()
    assert_clean(app)
    assert len(opened) == 1


def _uploader_supported() -> bool:
    from streamlit.testing.v1.element_tree import FileUploader

    return "set_value" in vars(FileUploader)


@pytest.mark.slow
@pytest.mark.skipif(not _uploader_supported(), reason="this Streamlit's AppTest cannot upload")
def test_the_real_uploader_feeds_the_same_path(app, dashboard_files):
    app.run()
    widget(app, "model.source").set_value("Upload").run()
    assert any("Upload an .onnx" in i.value for i in app.info)
    uploader = app.get("file_uploader")[0]
    uploader.set_value(("junk.onnx", JUNK, "application/octet-stream")).run()
    assert "cannot load the model" in one_error(app)
    app.get("file_uploader")[0].set_value(
        ("tiny.onnx", dashboard_files.model.read_bytes(), "application/octet-stream")
    ).run()
    assert_clean(app)
    assert len(image_urls(app)) == 1
    app.get("file_uploader")[0].set_value(None).run()  # cleared: the upload is forgotten
    assert not image_urls(app)


def test_shipped_model_is_the_default(app, dashboard_files):
    app.run()
    assert widget(app, "model.source").value == "Shipped model"
    assert any(str(dashboard_files.model) in c.value for c in app.sidebar.caption)


def test_missing_default_model_is_one_error_line(app, monkeypatch, tmp_path):
    monkeypatch.setenv(default_model.ENV_VAR, str(tmp_path / "gone.onnx"))
    app.run()
    assert "does not exist" in one_error(app)


@pytest.mark.slow
def test_without_a_shipped_model_the_models_folder_is_used(app, nothing_shipped):
    app.run()
    assert_clean(app)
    assert widget(app, "model.source").value == "Models folder"
    files = widget(app, "model.file")
    assert files.options == ["more/tiny-copy.onnx", "tiny.onnx"]  # hidden files left out
    files.select("tiny.onnx").run()
    assert_clean(app)
    assert len(image_urls(app)) == 1
    widget(app, "model.source").set_value("Shipped model").run()
    assert any("No model is shipped" in i.value for i in app.sidebar.info)
    assert len(image_urls(app)) == 1  # fell back to the models folder


def test_empty_models_folder_says_what_to_do(app, nothing_shipped, dashboard_files, monkeypatch):
    monkeypatch.setenv("CGAN_MODELS_DIR", str(dashboard_files.empty))
    app.run()
    assert not app.exception
    assert any("make export" in w.value for w in app.sidebar.warning)
    assert not image_urls(app)


def test_a_corrupt_file_in_the_models_folder_is_one_error_line(
    app, nothing_shipped, tmp_path, monkeypatch
):
    (tmp_path / "broken.onnx").write_bytes(JUNK)
    monkeypatch.setenv("CGAN_MODELS_DIR", str(tmp_path))
    app.run()
    assert "cannot load the model" in one_error(app)
