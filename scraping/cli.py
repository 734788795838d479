"""``cgan-scrape``: gather labelled images, then build a training dataset.

Input is validated before Scrapy is imported, so mistakes are reported in
one line (exit code 2) without a traceback or a slow start.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from inference.cliutil import OneLineArgumentParser, non_negative_float, positive_int
from scraping.labels import LabelSpec, parse_labels

KNOWN_SOURCES = ("openverse", "wikimedia", "reddit", "pixabay")
DEFAULT_SOURCES = "openverse,wikimedia,reddit,pixabay"
PROG = "cgan-scrape"

CRAWL_EXAMPLES = f"""\
examples:
  {PROG} --labels cat,dog,horse --limit 500 --out data/mine
  {PROG} --labels cat dog --sources openverse,wikimedia --limit 200 --out data/pets
  {PROG} --labels "red_fox=red fox,cat" --limit 100 --out data/mine --min-size 256
  PIXABAY_API_KEY=... {PROG} --labels cat --sources pixabay --limit 50 --out data/mine
  {PROG} --labels cat --limit 50 --out data/mine -s DOWNLOAD_DELAY=1 -s CONCURRENT_REQUESTS=4

Run the same command again to resume an interrupted crawl: URLs already in
OUT/manifest.jsonl are never downloaded twice. Then build a dataset:
  {PROG} build --src data/mine --out data/mine-64 --size 64 --min-per-class 50
"""

BUILD_EXAMPLES = f"""\
examples:
  {PROG} build --src data/mine --out data/mine-64 --size 64 --min-per-class 50
  {PROG} build --src data/mine --out data/mine-128 --size 128 --format jpeg --quality 92
  python -m scraping build --src data/mine --out data/mine-32 --size 32   # same, no script needed
"""


def fail(message: str) -> NoReturn:
    """Print one error line and exit with the usage-error status."""
    print(f"{PROG}: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), value


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
        default=DEFAULT_SOURCES,
        help=f"comma separated, from {', '.join(KNOWN_SOURCES)} (default: all; "
        "pixabay needs PIXABAY_API_KEY and is skipped without it)",
    )
    filters = parser.add_argument_group("filters")
    filters.add_argument(
        "--min-size", type=positive_int, help="minimum width and height in px (default 128)"
    )
    filters.add_argument(
        "--max-mb", type=non_negative_float, help="maximum file size (default 15)"
    )
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
        help="Scrapy log level on stderr (default INFO)",
    )
    return parser


def build_parser() -> argparse.ArgumentParser:
    """Options of ``cgan-scrape build``."""
    parser = OneLineArgumentParser(
        prog=f"{PROG} build",
        description="Make a training-ready class-folder dataset from scraped folders: "
        "centre crop, resize, drop small classes, report per class.",
        epilog=BUILD_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--src", type=Path, required=True, help="scraped folder (<label>/ images)")
    parser.add_argument("--out", type=Path, required=True, help="dataset folder to (re)create")
    parser.add_argument("--size", type=positive_int, default=64, help="side in px (default 64)")
    parser.add_argument(
        "--min-per-class",
        type=positive_int,
        default=1,
        help="drop classes with fewer usable images (default 1)",
    )
    parser.add_argument("--format", choices=["png", "jpeg"], default="png", help="default png")
    parser.add_argument("--quality", type=positive_int, default=95, help="JPEG quality")
    parser.add_argument(
        "--allow-upscale", action="store_true", help="keep images smaller than --size"
    )
    parser.add_argument("--report", type=Path, help="also write the JSON report here")
    return parser


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        fail(f"cannot write to --out {out}: {exc.strerror or exc}")


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
    values.update(dict(args.overrides))
    return values


def _sources(text: str, has_key: bool) -> tuple[list[str], str | None]:
    """Validated source names, and a notice when pixabay has to be left out."""
    names = list(dict.fromkeys(name.strip().lower() for name in text.split(",") if name.strip()))
    if not names:
        fail("--sources is empty")
    unknown = [name for name in names if name not in KNOWN_SOURCES]
    if unknown:
        fail(f"unknown source {', '.join(unknown)}; choose from {', '.join(KNOWN_SOURCES)}")
    notice = None
    if "pixabay" in names and not has_key:
        names.remove("pixabay")
        if not names:
            fail("pixabay needs an API key: set PIXABAY_API_KEY (free at pixabay.com/api/docs)")
        notice = (
            f"{PROG}: pixabay skipped: set PIXABAY_API_KEY to use it "
            "(free key at https://pixabay.com/api/docs/)"
        )
    return names, notice


def run_crawl_command(argv: Sequence[str]) -> int:
    """Validate crawl options, then hand over to Scrapy."""
    args = crawl_parser().parse_args(argv)
    if not args.labels:
        fail("give at least one label, e.g. --labels cat,dog,horse")
    try:
        labels: list[LabelSpec] = parse_labels(args.labels)
    except ValueError as exc:
        fail(str(exc))
    overrides = _overrides(args)
    has_key = bool(overrides.get("PIXABAY_API_KEY", os.environ.get("PIXABAY_API_KEY", "")).strip())
    sources, notice = _sources(args.sources, has_key)
    _check_writable(args.out)

    from scraping.runner import CrawlError, CrawlOptions, build_settings, run_crawl

    options = CrawlOptions(
        labels=labels,
        limit=args.limit,
        out=args.out,
        sources=sources,
        overrides=overrides,
        resume=not args.no_resume,
        retry_failed=args.retry_failed,
    )
    try:
        settings = build_settings(options)
        if notice:
            print(notice, file=sys.stderr)
        return run_crawl(options, settings)
    except CrawlError as exc:
        fail(str(exc))


def run_build_command(argv: Sequence[str]) -> int:
    """Validate build options and build the dataset."""
    args = build_parser().parse_args(argv)
    if not args.src.is_dir():
        fail(f"--src {args.src} does not exist or is not a folder")
    _check_writable(args.out.parent)

    from scraping.build import BuildError, BuildOptions, build_dataset, render_report

    options = BuildOptions(
        src=args.src,
        out=args.out,
        size=args.size,
        min_per_class=args.min_per_class,
        fmt=args.format,
        quality=min(args.quality, 100),
        allow_upscale=args.allow_upscale,
        report=args.report,
    )
    try:
        reports = build_dataset(options)
    except BuildError as exc:
        fail(str(exc))
    print(render_report(reports))
    kept = [name for name, report in reports.items() if not report.dropped]
    total = sum(reports[name].kept for name in kept)
    print(f"{total} images in {len(kept)} classes at {args.size}x{args.size} -> {args.out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: ``cgan-scrape [crawl] ...`` or ``cgan-scrape build ...``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "build":
            return run_build_command(argv[1:])
        if argv and argv[0] == "crawl":
            argv = argv[1:]
        return run_crawl_command(argv)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
