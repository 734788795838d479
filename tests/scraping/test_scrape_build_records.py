"""`cgan-scrape build --format records`: the kept images as a records folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from cgan.common.records import STAGING_NAME, read_manifest, read_records
from cgan.scraping.build import BuildOptions, build_dataset
from cgan.scraping.cli import main
from cgan.scraping.imagecheck import sha1_of
from cgan.scraping.manifest import MANIFEST_NAME
from tests.scraping.crawl_folders import crawl_folder
from tests.scraping.fake_apis import make_jpeg

COLOURS = {"cat": (200, 30, 30), "dog": (30, 200, 30), "horse": (30, 30, 200)}


def _scraped(root: Path, counts: dict[str, int]) -> Path:
    """Plain-coloured pictures, one colour per label, plus a broken file."""
    src = root / "scraped"
    for label, count in counts.items():
        (src / label).mkdir(parents=True)
        for i in range(count):
            picture = Image.new("RGB", (90 + i, 70), COLOURS[label])
            picture.save(src / label / f"{label}{i}.png")
    (src / "cat" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    return src


def test_build_writes_records_and_drops_small_classes(tmp_path, capsys):
    src = _scraped(tmp_path, {"cat": 6, "dog": 4, "horse": 1})
    out = tmp_path / "data-records"
    argv = ["build", "--src", str(src), "--out", str(out), "--size", "32", "--quiet"]
    assert main([*argv, "--format", "records", "--min-per-class", "3"]) == 0
    assert "10 images in 2 classes at 32x32" in capsys.readouterr().out
    manifest = read_manifest(out)
    assert manifest.names == ["cat", "dog"]  # horse dropped, dog's label moved down
    assert manifest.class_counts == {"cat": 6, "dog": 4}
    assert not (out / STAGING_NAME).exists() and not (out / "cat").exists()
    for image, label in read_records(out):
        assert image.shape == (32, 32, 3)
        np.testing.assert_array_equal(image[16, 16], COLOURS[manifest.names[label]])
    report = json.loads((out / "report.json").read_text())
    assert report["format"] == "records" and report["kept_classes"] == ["cat", "dog"]
    assert report["classes"]["cat"]["reasons"] == {"corrupt": 1}

    # A rebuild replaces a previous records build; nothing is left beside it.
    assert main([*argv, "--format", "records"]) == 0
    assert read_manifest(out).names == ["cat", "dog", "horse"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data-records", "scraped"]


def test_merged_build_as_records_lists_every_kept_image(tmp_path):
    shared = make_jpeg(7)
    found = lambda label, body: (label, "openverse", body)  # noqa: E731
    first = [found("cat", shared), found("cat", make_jpeg(1)), found("dog", make_jpeg(2))]
    a = crawl_folder(tmp_path, "a", first)
    b = crawl_folder(tmp_path, "b", [found("cat", shared), found("dog", make_jpeg(3))])
    out = tmp_path / "merged"
    options = BuildOptions(src=[a, b], out=out, size=32, fmt="records", progress=False)
    reports = build_dataset(options)
    assert reports["cat"].kept == 2 and reports["dog"].kept == 2  # the shared copy merged
    assert read_manifest(out).class_counts == {"cat": 2, "dog": 2}
    rows = [json.loads(line) for line in (out / MANIFEST_NAME).read_text().splitlines()]
    kept = [("cat", shared), ("cat", make_jpeg(1)), ("dog", make_jpeg(2)), ("dog", make_jpeg(3))]
    expected = sorted(f"{label}/{sha1_of(body)}" for label, body in kept)
    assert sorted(row["path"] for row in rows) == expected
    assert {row["src"] for row in rows} == {str(a), str(b)}
