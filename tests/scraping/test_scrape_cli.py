"""The command line: bad input is one clear line and exit code 2; the dataset builder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from cgan.scraping.build import BuildError, BuildOptions, build_dataset
from tests.scraping.fake_apis import encode, make_image, make_jpeg, truncated


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], "give at least one label"),
        (["--labels"], "expected at least one argument"),
        (["--labels", ",,"], "no labels given"),
        (["--labels", "../etc"], "bad label"),
        (["--labels", "cat", "--limit", "0"], "must be at least 1"),
        (["--labels", "cat", "--limit", "lots"], "expected a whole number"),
        (["--labels", "cat", "--sources", "flickr"], "unknown source flickr"),
        (["--labels", "cat", "--sources", "pixabay"], "PIXABAY_API_KEY"),
        (["--labels", "cat", "-s", "NOEQUALS"], "expected NAME=VALUE"),
        (["--labels", "cat", "-s", "CONCURRENT_REQUESTS=many"], "expected a whole number"),
        (["--labels", "cat", "-s", "ROBOTSTXT_OBEY=perhaps"], "expected true or false"),
        (["--labels", "cat", "--bogus"], "unrecognized arguments"),
        (["build", "--src", "/nonexistent/scraped", "--out", "x"], "does not exist"),
        (["build", "--out", "x"], "--src"),
        (["build", "--src", ".", "--out", "x", "--size", "-4"], "must be 1 to 4096"),
        (["build", "--src", ".", "--out", "x", "--size", "100000"], "must be 1 to 4096"),
        (["build", "--src", ".", "--out", "x", "--size", "\u0663"], "expected a whole number"),
        (["--labels", "cat", "--limit", "9" * 5000], "expected a whole number"),
    ],
)
def test_bad_input_is_one_line_exit_2(cli, args, expected, tmp_path):
    args = [a if a != "x" else str(tmp_path / "x") for a in args]
    if args and args[0] != "build" and "--out" not in args:
        args += ["--out", str(tmp_path / "out")]
    result = cli(args, timeout=30)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cgan-scrape"), result.stderr
    assert expected in lines[0]


def test_unwritable_out_is_a_usage_error(cli, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    result = cli(["--labels", "cat", "--out", str(blocker / "sub")], timeout=30)
    assert result.returncode == 2 and "cannot write to --out" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_shows_examples(cli):
    result = cli(["--help"], timeout=30)
    assert result.returncode == 0 and "--labels cat,dog,horse --limit 500" in result.stdout
    build_help = cli(["build", "--help"], timeout=30)
    assert build_help.returncode == 0 and "--min-per-class 50" in build_help.stdout


def _scraped(root: Path) -> Path:
    src = root / "scraped"
    for n, (label, count) in enumerate((("cat", 5), ("dog", 3), ("horse", 1))):
        folder = src / label
        folder.mkdir(parents=True)
        for i in range(count):
            encode_to = folder / f"{label}{i}.jpg"
            encode_to.write_bytes(make_jpeg(n * 100 + i, (160 + i * 10, 120)))
    (src / "cat" / "broken.jpg").write_bytes(truncated(make_jpeg(1, (300, 300))))
    (src / "cat" / "small.png").write_bytes(encode(make_image(2, (20, 20)), "PNG"))
    (src / "cat" / "notes.txt").write_text("ignored")
    (src / ".jobs").mkdir()
    (src / "manifest.jsonl").write_text("")
    return src


def test_build_crops_resizes_and_drops_small_classes(tmp_path):
    src = _scraped(tmp_path)
    out = tmp_path / "data-32"
    reports = build_dataset(BuildOptions(src=src, out=out, size=32, min_per_class=3))
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["cat", "dog"]
    cat = sorted((out / "cat").glob("*.png"))
    assert len(cat) == 5
    for path in cat:
        with Image.open(path) as image:
            assert image.size == (32, 32) and image.mode == "RGB"
    assert reports["cat"].rejected == {"corrupt": 1, "too_small": 1}
    assert reports["horse"].dropped and not (out / "horse").exists()
    report = json.loads((out / "report.json").read_text())
    assert report["classes"]["cat"] == {
        "kept": 5,
        "rejected": 2,
        "reasons": {"corrupt": 1, "too_small": 1},
        "dropped": False,
    }
    assert report["kept_classes"] == ["cat", "dog"] and report["total_images"] == 8

    # Rebuilding over a previous build replaces it; a foreign folder is refused.
    build_dataset(BuildOptions(src=src, out=out, size=16, min_per_class=1, fmt="jpeg"))
    assert len(list((out / "horse").glob("*.jpg"))) == 1
    foreign = tmp_path / "precious"
    foreign.mkdir()
    (foreign / "thesis.txt").write_text("keep me")
    with pytest.raises(BuildError):
        build_dataset(BuildOptions(src=src, out=foreign, size=16))
    assert (foreign / "thesis.txt").exists()
    with pytest.raises(BuildError):
        build_dataset(BuildOptions(src=src, out=tmp_path / "none", size=16, min_per_class=99))
    assert not (tmp_path / "none").exists()


def test_build_cli_prints_a_table(cli, tmp_path):
    src = _scraped(tmp_path)
    out = tmp_path / "mine-64"
    result = cli(
        ["build", "--src", str(src), "--out", str(out), "--size", "64", "--min-per-class", "3"],
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "class" in result.stdout and "dropped" in result.stdout
    assert "dropping class 'horse'" in result.stderr
    assert (out / "report.json").is_file()


def test_two_crawls_into_one_folder_are_refused(cli, tmp_path):
    import fcntl

    jobs = tmp_path / "busy" / ".jobs"
    jobs.mkdir(parents=True)
    with (jobs / "lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = cli(["--labels", "cat", "--sources", "openverse", "--out", str(tmp_path / "busy")])
    assert result.returncode == 2 and "already writing" in result.stderr
    assert "Traceback" not in result.stderr


def test_train_and_val_builds_of_one_crawl_are_disjoint(cli, tmp_path):
    src = tmp_path / "scraped"
    for n, label in enumerate(("cat", "dog")):
        (src / label).mkdir(parents=True)
        for i in range(40):
            (src / label / f"{label}{i:02d}.jpg").write_bytes(make_jpeg(n * 100 + i, (40, 40)))
    built = {}
    for split in ("train", "val", "all"):
        out = tmp_path / f"mine-{split}"
        args = ["build", "--src", str(src), "--out", str(out), "--size", "16", "--quiet"]
        result = cli([*args, "--split", split, "--val-fraction", "0.25"], timeout=60)
        assert result.returncode == 0, result.stderr
        built[split] = {p.relative_to(out).as_posix() for p in out.glob("*/*.png")}
        assert json.loads((out / "report.json").read_text())["split"] == split
    assert not built["train"] & built["val"]
    assert built["train"] | built["val"] == built["all"] and len(built["all"]) == 80
    assert 10 <= len(built["val"]) <= 30  # about a quarter of 80, drawn per file name
    for bad in ("0", "1", "x"):
        result = cli(
            ["build", "--src", str(src), "--out", str(tmp_path / "o"), "--val-fraction", bad]
        )
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1


def test_class_folders_that_cannot_be_labels_are_refused_before_the_build(cli, tmp_path):
    src = tmp_path / "scraped"
    for label in ("Dog", "dog"):
        (src / label).mkdir(parents=True)
        (src / label / "a.jpg").write_bytes(make_jpeg(1, (40, 40)))
    out = tmp_path / "mine-16"
    result = cli(["build", "--src", str(src), "--out", str(out), "--size", "16"], timeout=60)
    assert result.returncode == 2
    assert "appears twice" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_links_out_of_the_crawl_are_skipped_and_reported(tmp_path):
    """A linked file or class folder that leaves --src is never read into the dataset; a
    link within the crawl is an ordinary image."""
    src = _scraped(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "pets").mkdir(parents=True)
    for i in range(3):
        (elsewhere / "pets" / f"p{i}.jpg").write_bytes(make_jpeg(50 + i, (160, 120)))
    (src / "dog" / "stolen.jpg").symlink_to(elsewhere / "pets" / "p0.jpg")
    (src / "dog" / "again.jpg").symlink_to(src / "dog" / "dog0.jpg")  # inside: fine
    (src / "pets").symlink_to(elsewhere / "pets", target_is_directory=True)
    out = tmp_path / "data-32"
    reports = build_dataset(BuildOptions(src=src, out=out, size=32, min_per_class=1))
    assert reports["dog"].rejected == {"link_out_of_src": 1}
    assert sorted(p.name for p in (out / "dog").iterdir()) == [
        "again.png", "dog0.png", "dog1.png", "dog2.png"
    ]  # fmt: skip
    assert reports["pets"].rejected == {"link_out_of_src": 3} and reports["pets"].dropped
    assert not (out / "pets").exists()
    report = json.loads((out / "report.json").read_text())
    assert report["classes"]["dog"]["reasons"] == {"link_out_of_src": 1}
