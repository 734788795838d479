"""Records folders (datasets larger than memory): the format, its hostile-input checks,
the streaming pipeline's order and exact resume, cgan-prepare, and a resumed training."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cgan.common.errors import RecordsError, TrainingError
from cgan.common.records import (
    MANIFEST_NAME,
    STAGING_NAME,
    RecordsWriter,
    read_manifest,
    read_records,
)
from cgan.training.data import RecordSet, load_dataset
from cgan.training.prepare import main as prepare_main
from cgan.training.shapes import make_shapes

from .helpers import write_image

NAMES = ["ant", "bee", "cat", "dog"]


def _numbered_images(count: int, side: int = 8) -> np.ndarray:
    """Images whose first two pixels spell their index: every example is distinct."""
    images = np.zeros((count, side, side, 3), np.uint8)
    images[:, 0, 0, 0] = np.arange(count) % 256
    images[:, 0, 0, 1] = np.arange(count) // 256
    return images


def _index(image: np.ndarray) -> int:
    return int(image[0, 0, 0]) + 256 * int(image[0, 0, 1])


def _write(folder, count=100, side=8, per_shard=16, seed=1, drop=()):
    """`count` numbered images, labels class by class, as the dataset build feeds them."""
    images = _numbered_images(count, side)
    labels = np.arange(count) * len(NAMES) // count
    with RecordsWriter(folder, NAMES, side, images_per_shard=per_shard, seed=seed) as writer:
        for start in range(0, count, 30):
            writer.add_many(images[start : start + 30], labels[start : start + 30])
        for label in drop:
            writer.drop_class(label)
    return images, labels


def test_round_trip_spreads_classes_over_shards(tmp_path):
    images, labels = _write(tmp_path / "rec")
    manifest = read_manifest(tmp_path / "rec")
    assert manifest.total == 100 and len(manifest.shards) == 7
    assert manifest.class_counts == dict.fromkeys(NAMES, 25)
    assert {count for _, count in manifest.shards} == {14, 15}
    assert not (tmp_path / "rec" / STAGING_NAME).exists()
    read = list(read_records(tmp_path / "rec"))
    assert sorted(_index(image) for image, _ in read) == list(range(100))
    for image, label in read:
        np.testing.assert_array_equal(image, images[_index(image)])
        assert label == labels[_index(image)]
    first_shard = [label for _, label in read[:15]]
    assert len(set(first_shard)) >= 3  # fed class by class, yet every shard is a mix


def test_dropped_class_is_left_out_and_later_labels_move_down(tmp_path):
    _write(tmp_path / "rec", drop=[1])
    manifest = read_manifest(tmp_path / "rec")
    assert manifest.names == ["ant", "cat", "dog"] and manifest.total == 75
    for image, label in read_records(tmp_path / "rec"):
        assert label == [0, 2, 3].index(_index(image) * 4 // 100)


def test_writer_refuses_bad_input_and_cleans_up_after_an_error(tmp_path):
    folder = tmp_path / "rec"
    with pytest.raises(RecordsError, match="uint8 images"), RecordsWriter(folder, NAMES, 8) as w:
        w.add_many(np.zeros((2, 8, 8, 3), np.uint8), np.array([0, 1]))
        w.add(np.zeros((8, 8, 3), np.float32), 0)
    assert list(folder.iterdir()) == []  # no staging file, no shard, no manifest
    with (
        pytest.raises(RecordsError, match="labels must be 0 to 3"),
        RecordsWriter(folder, NAMES, 8) as w,
    ):
        w.add(np.zeros((8, 8, 3), np.uint8), 4)
    with pytest.raises(RecordsError, match="repeat"):
        RecordsWriter(tmp_path / "other", ["a", "a"], 8)
    with (
        pytest.raises(RecordsError, match=r"no images for class\(es\): bee, cat, dog"),
        RecordsWriter(tmp_path / "empty", NAMES, 8) as w,
    ):
        w.add(np.zeros((8, 8, 3), np.uint8), 0)
    assert list((tmp_path / "empty").iterdir()) == []


def _edit_manifest(folder, change):
    path = folder / MANIFEST_NAME
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda f: (f / MANIFEST_NAME).write_text("{not json"), "not a readable JSON"),
        (lambda f: (f / MANIFEST_NAME).write_text("[" * 100_000), "not a readable JSON"),
        (lambda f: (f / MANIFEST_NAME).write_text("[1, 2]"), "expected a JSON object"),
        (lambda f: _edit_manifest(f, lambda d: d.update(format="npz")), "format is 'npz'"),
        (lambda f: _edit_manifest(f, lambda d: d.update(version=9)), "newer than"),
        (lambda f: _edit_manifest(f, lambda d: d.update(resolution=True)), "resolution must"),
        (lambda f: _edit_manifest(f, lambda d: d.update(resolution=16)), "record_bytes must"),
        (lambda f: _edit_manifest(f, lambda d: d["names"].__setitem__(1, "ant")), "repeat"),
        (lambda f: _edit_manifest(f, lambda d: d["names"].__setitem__(1, "a\nb")), "control"),
        (lambda f: _edit_manifest(f, lambda d: d.update(total=101)), "sum of class_counts"),
        (lambda f: _edit_manifest(f, lambda d: d["class_counts"].update(ant=-1)), "at least 1"),
        (
            lambda f: _edit_manifest(f, lambda d: d["shards"][0].update(file="../../etc/passwd")),
            "must be named shard-00000-of-00007",
        ),
        (
            lambda f: _edit_manifest(f, lambda d: d["shards"][0].update(count=16)),
            "do not add up",
        ),
        (lambda f: (f / "shard-00003-of-00007.tfrecord").unlink(), "is missing"),
        (lambda f: (f / MANIFEST_NAME).unlink(), "unfinished"),
        (
            lambda f: (f / "shard-00006-of-00007.tfrecord").write_bytes(
                (f / "shard-00006-of-00007.tfrecord").read_bytes()[:-100]
            ),
            "truncated or damaged",
        ),
    ],
)
def test_damaged_folders_give_one_line(tmp_path, damage, message):
    folder = tmp_path / "rec"
    _write(folder)
    damage(folder)
    with pytest.raises(RecordsError, match=message) as caught:
        read_manifest(folder)
    assert "\n" not in str(caught.value) and str(caught.value).strip()


def test_a_flipped_byte_fails_the_crc(tmp_path):
    folder = tmp_path / "rec"
    _write(folder)
    shard = folder / "shard-00002-of-00007.tfrecord"
    data = bytearray(shard.read_bytes())
    data[12 + 40] ^= 0xFF  # a pixel of the first record
    shard.write_bytes(bytes(data))
    with pytest.raises(RecordsError, match="record 0 fails its CRC"):
        list(read_records(folder))


def test_training_cli_reports_a_damaged_folder_in_one_line(tmp_path, capsys):
    pytest.importorskip("tensorflow")
    from cgan.training.cli import main

    folder = tmp_path / "rec"
    _write(folder, side=32)
    (folder / "shard-00001-of-00007.tfrecord").write_bytes(b"short")
    code = main(["--preset", "smoke", "--data", str(folder), "--run-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert err.startswith("cgan-train: error: ") and "truncated or damaged" in err


@pytest.mark.slow
def test_a_record_damaged_after_the_check_stops_training_in_one_line(tmp_path, capsys):
    """Sizes intact, bytes changed: found by the CRC while streaming, not before."""
    pytest.importorskip("tensorflow")
    from cgan.training.cli import main

    folder = tmp_path / "rec"
    _write(folder, side=32)
    for shard in folder.glob("shard-*.tfrecord"):
        data = bytearray(shard.read_bytes())
        data[12 + 40] ^= 0xFF  # a pixel of each shard's first record
        shard.write_bytes(bytes(data))
    argv = ["--preset", "smoke", "--data", str(folder), "--run-dir", str(tmp_path / "r")]
    code = main([*argv, "--steps", "3", "--batch-size", "8", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err, err
    assert err.startswith("cgan-train: error: damaged data in ") and "cgan-prepare" in err
    assert "corrupted record" in err


def test_loader_reads_the_manifest_only_and_checks_the_resolution(tmp_path):
    _write(tmp_path / "rec", side=32)
    data = load_dataset(str(tmp_path / "rec"), 32)
    assert isinstance(data, RecordSet)
    assert data.names == NAMES and len(data) == 100
    assert data.class_counts() == dict.fromkeys(NAMES, 25)
    with pytest.raises(TrainingError, match="holds 32x32 images: train with --resolution 32"):
        load_dataset(str(tmp_path / "rec"), 64)
    (tmp_path / "rec" / MANIFEST_NAME).unlink()  # shards alone: an unfinished folder
    with pytest.raises(RecordsError, match="unfinished"):
        load_dataset(str(tmp_path / "rec"), 32)


def _stream(manifest, start, batches, seed=3, buffer=32):
    from cgan.training.pipeline import make_record_dataset

    dataset = make_record_dataset(manifest, 7, seed, start_example=start, shuffle_buffer=buffer)
    pairs = [(images.numpy(), labels.numpy()) for images, labels in dataset.take(batches)]
    return np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs])


@pytest.mark.slow
def test_record_stream_is_deterministic_and_resumes_exactly(tmp_path):
    tf = pytest.importorskip("tensorflow")
    from cgan.training.pipeline import make_dataset, make_record_dataset

    images, labels = _write(tmp_path / "rec")
    manifest = read_manifest(tmp_path / "rec")
    streamed, streamed_labels = _stream(manifest, 0, 40)  # 280 examples: 2.8 epochs
    in_memory = make_dataset(images, labels.astype(np.int32), 7, seed=3)
    assert make_record_dataset(manifest, 7, 3).element_spec == in_memory.element_spec
    again = _stream(manifest, 0, 40)
    np.testing.assert_array_equal(again[0], streamed)
    tf.random.set_seed(99)  # TensorFlow's global seed must not change the order
    np.testing.assert_array_equal(_stream(manifest, 0, 40)[0], streamed)
    for start in (1, 95, 100, 133, 210):  # in an epoch, across a boundary, at one
        resumed, resumed_labels = _stream(manifest, start, 9)
        np.testing.assert_array_equal(resumed, streamed[start : start + 63], err_msg=str(start))
        np.testing.assert_array_equal(resumed_labels, streamed_labels[start : start + 63])
    pixels = np.rint((streamed + 1) * 127.5).astype(np.uint8)
    indices = np.array([_index(image) for image in pixels])
    epochs = [indices[e * 100 : (e + 1) * 100] for e in range(2)]
    assert all(sorted(epoch.tolist()) == list(range(100)) for epoch in epochs)
    assert not np.array_equal(epochs[0], epochs[1])  # reshuffled each epoch
    np.testing.assert_array_equal(streamed_labels, labels[indices])
    other_seed = _stream(manifest, 0, 14, seed=4)[1]
    assert not np.array_equal(other_seed, streamed_labels[:98])


def test_prepare_a_class_folder(tmp_path, capsys):
    source = tmp_path / "data"
    for name, colour in (("zebra", (10, 10, 10)), ("ant", (200, 0, 0))):
        for k in range(5):
            write_image(source / name / f"{k}.png", colour, size=(40, 30))
    (source / "ant" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    out = tmp_path / "out"
    code = prepare_main([str(source), str(out), "--resolution", "32", "--images-per-shard", "3"])
    assert code == 0
    err = capsys.readouterr().err
    assert "skipped 1 unreadable" in err and "10 images in 2 classes" in err
    manifest = read_manifest(out)
    assert manifest.names == ["ant", "zebra"] and len(manifest.shards) == 4
    colours = {label: image[0, 0].tolist() for image, label in read_records(out)}
    assert colours == {0: [200, 0, 0], 1: [10, 10, 10]}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_prepare_synthetic_matches_the_in_memory_shapes(tmp_path):
    out = tmp_path / "out"
    argv = ["synthetic", str(out), "--resolution", "32", "--classes", "3", "--per-class", "9"]
    assert prepare_main([*argv, "--seed", "5", "--quiet"]) == 0
    shapes = make_shapes(3, 9, 32, seed=5)
    pairs = zip(shapes.images, shapes.labels.tolist(), strict=True)
    expected = sorted((image.tobytes(), label) for image, label in pairs)
    assert sorted((image.tobytes(), label) for image, label in read_records(out)) == expected


@pytest.mark.parametrize(
    "case, message",
    [
        ("not_empty", "exists and is not an empty folder"),
        ("inside", "OUT must not be DATA or inside it"),
        ("missing", "does not exist"),
        ("records", "already a records folder"),
        ("classes", "the synthetic dataset has 1 to 10"),
    ],
)
def test_prepare_refuses_in_one_line(tmp_path, capsys, case, message):
    source = tmp_path / "data"
    write_image(source / "cat" / "a.png")
    out = tmp_path / "out"
    data = str(source)
    extra: list[str] = []
    if case == "not_empty":
        write_image(out / "keep.png")
    elif case == "inside":
        out = source / "records"
    elif case == "missing":
        data = str(tmp_path / "nowhere")
    elif case == "records":
        _write(tmp_path / "rec", side=32)
        data = str(tmp_path / "rec")
    else:
        data, extra = "synthetic", ["--classes", "11"]
    assert prepare_main([data, str(out), "--resolution", "32", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cgan-prepare: error: ") and message in err and "\n" not in err
    assert out.exists() == (case == "not_empty")


@pytest.mark.slow
def test_training_on_records_resumes_like_an_uninterrupted_run(tmp_path):
    pytest.importorskip("tensorflow")
    from cgan.training.config import load_config
    from cgan.training.loop import train
    from cgan.training.runtime import quiet_tensorflow

    from .helpers import assert_same_training_state, tiny_config

    quiet_tensorflow()
    folder = tmp_path / "rec"
    argv = ["synthetic", str(folder), "--resolution", "32", "--classes", "3", "--per-class", "7"]
    assert prepare_main([*argv, "--images-per-shard", "5", "--quiet"]) == 0
    overrides = dict(data=str(folder), steps=7, batch_size=6)  # 21 images: batches straddle
    straight = tmp_path / "straight"
    train(tiny_config(**overrides), straight, resume=False, progress=False)
    split = tmp_path / "split"
    first = train(tiny_config(**{**overrides, "steps": 4}), split, resume=False, progress=False)
    assert first.step == 4
    config = load_config(split)
    assert config.labels == ["red-disc", "green-square", "blue-triangle"]
    config.steps = 7
    assert train(config, split, resume=True, progress=False).step == 7
    assert_same_training_state(straight, split)


def test_prepare_offers_the_trainable_resolutions_without_importing_keras():
    import subprocess
    import sys

    from cgan.training.models.spec import RESOLUTIONS
    from cgan.training.prepare import RESOLUTIONS as PREPARE_RESOLUTIONS

    assert PREPARE_RESOLUTIONS == RESOLUTIONS
    probe = "import sys, cgan.training.prepare; print('keras' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.stdout.strip() == "False"


@pytest.mark.slow
@pytest.mark.parametrize("label", [7, -1])
def test_a_record_with_a_valid_checksum_and_a_label_out_of_range_is_one_line(
    tmp_path, capsys, label
):
    """The bytes are what the writer framed (the CRC holds), the label is not a class: the
    stream refuses it in one line instead of a traceback (7) or silent training (-1)."""
    pytest.importorskip("tensorflow")
    from cgan.common.records import masked_crc32c, payload_bytes
    from cgan.training.cli import main

    folder = tmp_path / "rec"
    _write(folder, side=32)
    payload = payload_bytes(32)
    for shard in folder.glob("shard-*.tfrecord"):
        data = bytearray(shard.read_bytes())
        data[12:16] = np.int32(label).astype("<i4").tobytes()  # the first record's label
        crc = masked_crc32c(bytes(data[12 : 12 + payload]))
        data[12 + payload : 16 + payload] = np.uint32(crc).astype("<u4").tobytes()
        shard.write_bytes(bytes(data))
    argv = ["--preset", "smoke", "--data", str(folder), "--run-dir", str(tmp_path / "r")]
    code = main([*argv, "--steps", "30", "--batch-size", "8", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err, err
    assert "a record label is outside the classes of records.json (0..3)" in err
