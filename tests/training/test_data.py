"""Datasets: synthetic shapes, class folders (labels, bad files, errors), shared CIFAR-10."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from cgan.common.errors import TrainingError
from cgan.training.data import CIFAR10_LABELS, load_dataset
from cgan.training.shapes import make_shapes

from .helpers import write_image


def test_synthetic_is_deterministic_and_labelled():
    first = make_shapes(4, 5, 32, seed=3)
    second = make_shapes(4, 5, 32, seed=3)
    np.testing.assert_array_equal(first.images, second.images)
    assert first.images.shape == (20, 32, 32, 3) and first.images.dtype == np.uint8
    assert first.names == ["red-disc", "green-square", "blue-triangle", "yellow-cross"]
    assert first.class_counts() == dict.fromkeys(first.names, 5)


def test_folder_labels_are_sorted_folder_names_and_images_are_cropped(tmp_path):
    write_image(tmp_path / "zebra" / "a.png", (10, 10, 10), size=(60, 30))
    write_image(tmp_path / "ant" / "b.jpg", (200, 200, 200), size=(30, 30))
    write_image(tmp_path / "ant" / "c.webp", (200, 200, 200), size=(50, 80))
    (tmp_path / "ant" / "notes.txt").write_text("not an image, not counted")
    data = load_dataset(str(tmp_path), 32)
    assert data.names == ["ant", "zebra"]
    assert data.images.shape == (3, 32, 32, 3)
    assert data.labels.tolist() == [0, 0, 1]
    assert data.skipped == []


def test_unreadable_files_are_skipped_and_counted(tmp_path, capsys):
    write_image(tmp_path / "cat" / "good.png")
    write_image(tmp_path / "dog" / "good.png")
    (tmp_path / "cat" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (tmp_path / "dog" / "html.png").write_text("<html>not an image</html>")
    data = load_dataset(str(tmp_path), 32)
    assert len(data) == 2
    assert sorted(p.rsplit("/", 1)[-1] for p in data.skipped) == ["broken.jpg", "html.png"]
    assert "skipped 2 unreadable" in capsys.readouterr().err


@pytest.mark.parametrize(
    "layout, message",
    [
        ("missing", "does not exist"),
        ("empty", "has no class folders"),
        ("no_images", "has no image files"),
        ("unreadable_class", "no readable image"),
    ],
)
def test_folder_errors_are_clear(tmp_path, layout, message):
    root = tmp_path / "data"
    if layout != "missing":
        root.mkdir()
    if layout == "no_images":
        (root / "cat").mkdir()
        (root / "cat" / "readme.md").write_text("x")
    if layout == "unreadable_class":
        write_image(root / "cat" / "ok.png")
        (root / "dog").mkdir()
        (root / "dog" / "bad.jpg").write_bytes(b"garbage")
    with pytest.raises(TrainingError, match=message):
        load_dataset(str(root), 32)


def test_shared_cifar10_loads_a_few_batches(cifar10_dir, tmp_path):
    pytest.importorskip("tensorflow")
    from cgan.training.pipeline import make_dataset

    # A few images per class keep the test fast (copies: links out of a dataset are skipped).
    for class_dir in sorted((cifar10_dir / "test").iterdir()):
        (tmp_path / class_dir.name).mkdir()
        for image in sorted(class_dir.glob("*.jpg"))[:20]:
            shutil.copyfile(image, tmp_path / class_dir.name / image.name)
    data = load_dataset(str(tmp_path), 32)
    assert data.names == CIFAR10_LABELS  # sorted folder names: the canonical order
    batches = list(make_dataset(data.images, data.labels, 16, seed=0).take(3))
    for images, labels in batches:
        assert images.shape == (16, 32, 32, 3)
        assert float(images.numpy().min()) >= -1.0 and float(images.numpy().max()) <= 1.0
        assert set(labels.numpy().tolist()) <= set(range(10))


def test_pipeline_resumes_at_any_position():
    pytest.importorskip("tensorflow")
    from cgan.training.pipeline import make_dataset

    data = make_shapes(3, 7, 32, seed=0)  # 21 images: batches straddle epochs
    stream = np.concatenate(
        [labels.numpy() for _, labels in make_dataset(data.images, data.labels, 5, seed=4).take(9)]
    )
    resumed = np.concatenate(
        [
            labels.numpy()
            for _, labels in make_dataset(
                data.images, data.labels, 5, seed=4, start_example=15
            ).take(6)
        ]
    )
    np.testing.assert_array_equal(resumed, stream[15:45])
    per_epoch = [np.bincount(stream[e * 21 : (e + 1) * 21], minlength=3) for e in range(2)]
    assert all(counts.tolist() == [7, 7, 7] for counts in per_epoch)
    assert not np.array_equal(stream[:21], stream[21:42])  # reshuffled each epoch


def test_links_out_of_the_data_folder_are_not_read(tmp_path, capsys):
    """A linked file or class folder leaving the dataset is skipped with a note; a link
    within it is an ordinary image."""
    from cgan.training.data import load_folder

    root, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    for label, colour in (("red", (200, 0, 0)), ("blue", (0, 0, 200))):
        for i in range(2):
            write_image(root / label / f"{i}.png", colour)
    write_image(elsewhere / "secret" / "s.png", (0, 200, 0))
    (root / "red" / "stolen.png").symlink_to(elsewhere / "secret" / "s.png")
    (root / "red" / "twin.png").symlink_to(root / "red" / "0.png")
    (root / "secret").symlink_to(elsewhere / "secret", target_is_directory=True)
    data = load_folder(root, 8)
    assert data.names == ["blue", "red"] and data.class_counts() == {"blue": 2, "red": 3}
    assert not (data.images[..., 1] > 100).any()  # nothing green came in
    assert "skipped 2 link(s) to folders or files outside" in capsys.readouterr().err


def test_an_image_too_large_to_decode_is_skipped_from_its_header(tmp_path):
    """13,000 x 13,000 pixels (a 1-bit PNG of a few kB, valid: decoded, it would take
    about 500 MB as RGB): skipped as unreadable, told by its header."""
    from PIL import Image

    from cgan.training.data import decode_image, load_folder

    big = tmp_path / "data" / "a" / "big.png"
    big.parent.mkdir(parents=True)
    Image.new("1", (13_000, 13_000)).save(big)
    write_image(tmp_path / "data" / "a" / "small.png")
    assert decode_image(big, 32) is None
    data = load_folder(tmp_path / "data", 32)
    assert len(data) == 1 and data.skipped == [str(big)]
