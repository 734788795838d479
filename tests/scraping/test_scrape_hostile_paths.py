"""Hostile folders, manifests and settings: links out of the folders the user named, lines of
the wrong types, settings Scrapy would only choke on mid-run. Each is one line on stderr and
a non-zero exit (or a skipped, counted entry), and nothing outside is read, moved or changed.
"""

from __future__ import annotations

import io
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from cgan.common.errors import ScrapeError
from cgan.scraping.build import BuildOptions, build_dataset
from cgan.scraping.cli import main
from cgan.scraping.imagecheck import sha1_of
from cgan.scraping.items import parse_labels
from cgan.scraping.manifest import MANIFEST_NAME, Manifest, make_record
from cgan.scraping.runner import CrawlOptions, build_settings
from cgan.scraping.state import CrawlState
from cgan.scraping.verify import OFF_TOPIC, ImageDecision, VerifyOptions, find_images, move_rejected
from tests.scraping.crawl_folders import crawl_folder
from tests.scraping.fake_apis import make_jpeg
from tests.scraping.test_scrape_unreachable import _closed_port
from tests.scraping.test_scrape_verify import needs_network, needs_wordnet

OWN_NAME = "a" * 40 + ".jpg"  # a name the crawl's resume clean-up treats as its own file


def _crawl(cli: Callable[..., subprocess.CompletedProcess[str]], out: Path, *settings: str):
    """The reviewer's crawl: one label, wikimedia at a closed local port, no retries."""
    args = ["--labels", "cat", "--limit", "1", "--sources", "wikimedia", "--out", str(out)]
    args += ["-s", f"WIKIMEDIA_API_URL=http://127.0.0.1:{_closed_port()}/w/api.php"]
    for setting in ("RETRY_TIMES=0", "DOWNLOAD_TIMEOUT=2", *settings):
        args += ["-s", setting]
    return cli(args, timeout=60)


def _one_line(result: subprocess.CompletedProcess[str], fragment: str) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr[-3000:])
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cgan-scrape"), result.stderr[-3000:]
    assert fragment in lines[0], lines[0]
    return lines[0]


def _main_one_line(argv: list[str], capsys: pytest.CaptureFixture[str], fragment: str) -> None:
    """`cgan-scrape ARGV` in this process: exit 2 and one line naming `fragment`."""
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cgan-scrape"), lines
    assert fragment in lines[0], lines[0]


# --- the crawl's output folder ----------------------------------------------------------------


def test_crawl_refuses_a_class_folder_linked_out_and_deletes_nothing_there(cli, tmp_path):
    """The resume clean-up deletes unrecorded `<sha1>.jpg` files in class folders; through a
    link it would delete the user's own files elsewhere."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / OWN_NAME).write_bytes(b"the user's picture")
    out = tmp_path / "crawlout"
    out.mkdir()
    (out / "cat").symlink_to(victim, target_is_directory=True)

    _one_line(_crawl(cli, out), f"class folder {out / 'cat'} is a link out of {out}")
    assert (victim / OWN_NAME).read_bytes() == b"the user's picture"


def test_resume_clean_up_never_deletes_through_a_link(tmp_path):
    """The clean-up skips a linked class or `_` folder and leaves a linked file, while still
    dropping a real unrecorded file of its own (the crawl refuses a class folder linked out
    before it starts, above)."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / OWN_NAME).write_bytes(b"keep")
    out = tmp_path / "out"
    (out / "dog").mkdir(parents=True)
    (out / "dog" / OWN_NAME).symlink_to(elsewhere / OWN_NAME)
    orphan = out / "dog" / ("b" * 40 + ".jpg")
    orphan.write_bytes(b"left by a hard stop")
    (out / "_off_topic").symlink_to(elsewhere, target_is_directory=True)
    CrawlState(out.resolve(), max_distance=6)
    assert not orphan.exists()  # its own orphan is still removed
    assert (out / "dog" / OWN_NAME).is_symlink() and (elsewhere / OWN_NAME).read_bytes() == b"keep"

    (out / "cat").symlink_to(elsewhere, target_is_directory=True)
    CrawlState(out.resolve(), max_distance=6)
    assert (elsewhere / OWN_NAME).read_bytes() == b"keep"


def test_crawl_refuses_a_manifest_linked_out_and_leaves_it_whole(cli, tmp_path):
    """Resuming trims a partial last line of the manifest; through a link it would cut the
    last line of somebody else's file."""
    victim = tmp_path / "notes.txt"
    victim.write_text("first line\nlast line without a newline")
    out = tmp_path / "crawlout2"
    out.mkdir()
    (out / MANIFEST_NAME).symlink_to(victim)

    _one_line(_crawl(cli, out), f"{out / MANIFEST_NAME} is a link out of {out}")
    assert victim.read_text() == "first line\nlast line without a newline"


@pytest.mark.parametrize("name", [".jobs", "summary.json", "crawl.log", "shard.json"])
def test_crawl_refuses_any_state_file_linked_out(cli, tmp_path, name):
    """The lock, queues, summary, log and shard record are written too: a dangling link out
    would create a file there."""
    out = tmp_path / "out"
    out.mkdir()
    (out / name).symlink_to(tmp_path / "elsewhere" / name)
    _one_line(_crawl(cli, out), f"state file {out / name} is a link out of")
    assert not (tmp_path / "elsewhere").exists()


def test_a_manifest_link_out_is_refused_by_every_reader_and_writer(tmp_path):
    victim = tmp_path / "victim.jsonl"
    victim.write_text('{"url": "u", "status": "kept"}\n{"url": "cut')
    folder = tmp_path / "crawl"
    folder.mkdir()
    (folder / MANIFEST_NAME).symlink_to(victim)
    with pytest.raises(ScrapeError, match="is a link out of"):
        Manifest(folder / MANIFEST_NAME).load()
    (folder / MANIFEST_NAME).unlink()
    (folder / MANIFEST_NAME).symlink_to(tmp_path / "new.jsonl")  # dangling: open would create it
    with pytest.raises(ScrapeError, match="is a link out of"):
        Manifest(folder / MANIFEST_NAME).open()
    assert victim.read_text().endswith('"cut') and not (tmp_path / "new.jsonl").exists()


def test_manifest_lines_of_the_wrong_types_are_skipped_like_unreadable_ones(tmp_path):
    """`url` a list (unhashable), `path` a number, a bad perceptual hash, a deep nest: each
    used to stop a crawl or build with a traceback."""
    good = make_record(url="http://x/1.jpg", label="cat", status="kept", path="cat/1.jpg")
    bad = [
        {**good, "url": ["http://x/2.jpg"]},
        {**good, "url": "http://x/3.jpg", "path": 5},
        {**good, "url": "http://x/4.jpg", "label": {"cat": 1}},
        {**good, "url": "http://x/5.jpg", "phash": "not hex"},
        {**good, "url": "http://x/6.jpg", "status": None},
    ]
    path = tmp_path / MANIFEST_NAME
    lines = [json.dumps(good), *map(json.dumps, bad), "[" * 100_000]
    path.write_text("".join(line + "\n" for line in lines))
    manifest = Manifest(path)
    assert [r["url"] for r in manifest.load()] == ["http://x/1.jpg"]
    assert manifest.skipped_lines == len(bad) + 1


# --- crawl settings --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "fragment"),
    [
        ("LOG_FILE={nodir}/x.log", "no folder {nodir}; create it first"),
        ("LOG_FILE={out}", "is a folder, not a file"),
        ("ITEM_PIPELINES=oops", "-s ITEM_PIPELINES='oops': expected a JSON object"),
        ("ITEM_PIPELINES=[1]", "-s ITEM_PIPELINES='[1]': expected a JSON object"),
        ("RETRY_HTTP_CODES=[500,", "-s RETRY_HTTP_CODES='[500,': expected a JSON array"),
        ("DOWNLOAD_TIMEOUT=-1", "-s DOWNLOAD_TIMEOUT='-1': a time in seconds must be 0 or more"),
        ("DOWNLOAD_DELAY=-0.5", "-s DOWNLOAD_DELAY='-0.5': a time in seconds must be 0 or more"),
        ("RETRY_BACKOFF_BASE=nan", "must be 0 or more, and finite"),
    ],
)
def test_settings_scrapy_would_choke_on_are_refused_up_front(cli, tmp_path, setting, fragment):
    """Each used to end in a traceback, or (a negative timeout) in exit 0 saying the sources
    ran out of images."""
    out = tmp_path / "out"
    nodir = tmp_path / "nodir"
    setting = setting.format(nodir=nodir, out=out)
    fragment = fragment.format(nodir=nodir)
    _one_line(_crawl(cli, out, setting), fragment)
    assert not nodir.exists() and not (out / MANIFEST_NAME).exists()


def test_list_and_dict_settings_given_as_json_reach_scrapy_parsed(tmp_path):
    """`-s RETRY_HTTP_CODES=[500,502]` is a list of numbers, not the strings '[500' and '502]'
    that Scrapy's comma split would make; commas alone still work."""
    overrides = {
        "RETRY_HTTP_CODES": "[500, 502]",
        "SPIDER_MODULES": "a,b",
        "DOWNLOAD_SLOTS": '{"example.org": {"delay": 2}}',
    }
    options = CrawlOptions(parse_labels(["cat"]), 1, tmp_path, ["wikimedia"], overrides)
    settings = build_settings(options)
    assert settings.getlist("RETRY_HTTP_CODES") == [500, 502]
    assert settings.getlist("SPIDER_MODULES") == ["a", "b"]
    assert settings.getdict("DOWNLOAD_SLOTS") == {"example.org": {"delay": 2}}


# --- verify ------------------------------------------------------------------------------------


def test_verify_skips_and_reports_images_linked_out_of_src(tmp_path):
    """Judged images are what --move-rejected moves: a class folder or file linked out of
    --src must never be among them."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for i in range(2):
        (elsewhere / f"p{i}.jpg").write_bytes(make_jpeg(70 + i))
    src = tmp_path / "vsrc"
    (src / "cat").mkdir(parents=True)
    (src / "cat" / "c0.jpg").write_bytes(make_jpeg(1))
    (src / "cat" / "stolen.jpg").symlink_to(elsewhere / "p0.jpg")
    (src / "cat" / "again.jpg").symlink_to(src / "cat" / "c0.jpg")  # inside: an image
    (src / "dog").symlink_to(elsewhere, target_is_directory=True)
    log = io.StringIO()
    found = find_images(src, log)
    assert found == {"cat": [src / "cat" / "again.jpg", src / "cat" / "c0.jpg"]}
    assert (
        log.getvalue()
        == f"cgan-scrape verify: skipped 2 link(s) to folders or files outside {src}\n"
    )


def test_move_rejected_checks_every_label_folder_before_the_first_move(tmp_path):
    """A `--move-rejected` label folder linked out is refused before any image has moved,
    not halfway through."""
    src = tmp_path / "vsrc"
    for label in ("cat", "dog"):
        (src / label).mkdir(parents=True)
        (src / label / "x.jpg").write_bytes(make_jpeg(3))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    rejected = src / "_off"
    rejected.mkdir()
    (rejected / "dog").symlink_to(elsewhere, target_is_directory=True)
    decisions = [ImageDecision(f"{label}/x.jpg", label, OFF_TOPIC) for label in ("cat", "dog")]
    options = VerifyOptions(src=src, move_rejected=rejected, progress=False)
    with pytest.raises(ScrapeError, match="is a link out of --move-rejected"):
        move_rejected(decisions, options)
    assert (src / "cat" / "x.jpg").is_file() and not (rejected / "cat").exists()
    assert list(elsewhere.iterdir()) == []


@pytest.mark.slow
@needs_network
@needs_wordnet
def test_a_read_only_verify_ignores_a_manifest_link_and_a_move_refuses_it(cli, tmp_path):
    """Without --move-rejected verify never writes the manifest, so a link there is not its
    business; a move appends to the manifest, so it is refused before anything moves."""
    src = tmp_path / "vsrc"
    (src / "dog").mkdir(parents=True)
    (src / "dog" / "x.jpg").write_bytes(make_jpeg(4))
    victim = tmp_path / "elsewhere.jsonl"
    victim.write_text("somebody's line without a newline")
    (src / MANIFEST_NAME).symlink_to(victim)
    read_only = cli(["verify", "--src", str(src), "--quiet"], timeout=300)
    assert read_only.returncode == 0, read_only.stderr[-3000:]
    moving = cli(
        ["verify", "--src", str(src), "--quiet", "--move-rejected", str(src / "_off")], timeout=300
    )
    _one_line(moving, "is a link out of")
    assert (src / "dog" / "x.jpg").is_file() and not (src / "_off").exists()
    assert victim.read_text() == "somebody's line without a newline"


# --- build -------------------------------------------------------------------------------------


def _built(root: Path) -> Path:
    """A previous build in `root/B` (a folder the build may replace)."""
    src = root / "scraped"
    (src / "cat").mkdir(parents=True)
    for i in range(2):
        (src / "cat" / f"c{i}.jpg").write_bytes(make_jpeg(10 + i, (60, 60)))
    out = root / "B"
    build_dataset(BuildOptions(src=src, out=out, size=16, progress=False))
    return out


def test_build_refuses_a_single_src_inside_out_and_keeps_it(tmp_path, capsys):
    """Replacing --out used to delete the crawl inside it, exit 0."""
    out = _built(tmp_path)
    crawl = out / "mycrawl"
    (crawl / "dog").mkdir(parents=True)
    (crawl / "dog" / "d.jpg").write_bytes(make_jpeg(3, (60, 60)))
    argv = ["build", "--src", str(crawl), "--out", str(out), "--size", "16", "--quiet"]
    _main_one_line(argv, capsys, f"--src {crawl} is inside --out {out}")
    assert (crawl / "dog" / "d.jpg").is_file()
    argv = ["build", "--src", str(tmp_path / "scraped"), "--out", str(tmp_path / "scraped" / "x")]
    _main_one_line(argv, capsys, "--out must not be --src")


@pytest.mark.parametrize(
    ("flag", "value", "fragment"),
    [
        ("--out", "afile", "is a file, not a folder"),
        ("--report", "rdir", "is a folder; give a file name"),
        ("--report", "afile/r.json", "afile is a file, not a folder"),
        ("--report", "scraped/report.json", "must not be inside --src"),
    ],
)
def test_build_refuses_an_unusable_out_or_report_before_building(
    tmp_path, capsys, flag, value, fragment
):
    """A traceback used to come after the dataset had already been replaced."""
    out = _built(tmp_path)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    (tmp_path / "afile").write_text("not a folder")
    (tmp_path / "rdir").mkdir()
    target = str(tmp_path / value)
    argv = ["build", "--src", str(tmp_path / "scraped"), "--out", str(out), "--size", "32"]
    argv += ["--quiet", flag, target] if flag == "--report" else ["--quiet"]
    if flag == "--out":
        argv[argv.index(str(out))] = target
    _main_one_line(argv, capsys, fragment)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before  # the old build stays
    assert json.loads((out / "report.json").read_text())["size"] == 16
    assert (tmp_path / "afile").read_text() == "not a folder"
    assert not (tmp_path / "scraped" / "report.json").exists()


def test_merge_skips_manifest_paths_that_leave_the_crawl_folder(tmp_path):
    """A hand-made line must not pull a file from outside --src into the dataset."""
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = make_jpeg(99)
    (outside / "secret.png").write_bytes(secret)
    a = crawl_folder(tmp_path, "a", [("red", "openverse", make_jpeg(1))])
    b = crawl_folder(tmp_path, "b", [("red", "reddit", make_jpeg(2))])
    hostile = [
        make_record(
            url="https://e/1", label="red", status="kept", path="red/../../outside/secret.png"
        ),
        make_record(url="https://e/2", label="..", status="kept", path="../outside/secret.png"),
        make_record(
            url="https://e/3", label="red", status="kept", path=str(outside / "secret.png")
        ),
        {"url": ["https://e/4"], "label": "red", "status": "kept", "path": "red/x.jpg"},
        {"url": "https://e/5", "label": "red", "status": "kept", "path": 5},
    ]
    with (a / MANIFEST_NAME).open("a") as fh:
        fh.writelines(json.dumps(row) + "\n" for row in hostile)
    out = tmp_path / "merged"
    reports = build_dataset(BuildOptions(src=[a, b], out=out, size=32, progress=False))
    assert reports["red"].kept == 2 and sorted(reports) == ["red"]
    assert {p.stem for p in (out / "red").iterdir()} == {sha1_of(make_jpeg(s)) for s in (1, 2)}
    report = json.loads((out / "report.json").read_text())
    assert report["merge"]["skipped_lines"] == {"path_out_of_src": 3}
