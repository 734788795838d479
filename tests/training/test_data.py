"""Datasets: synthetic shapes, class folders (labels, bad files, errors), shared CIFAR-10."""

from __future__ import annotations

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

    # A few images per class, linked rather than copied, keep the test fast.
    for class_dir in sorted((cifar10_dir / "test").iterdir()):
        (tmp_path / class_dir.name).mkdir()
        for image in sorted(class_dir.glob("*.jpg"))[:20]:
            (tmp_path / class_dir.name / image.name).symlink_to(image)
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
