"""What every command-line tool of the project shares: one-line errors and exit codes.

`run_command` is the only place that turns a `CganError` into `PROG: error: ...` with
its exit code and Ctrl-C into exit 130, so the five commands behave the same way.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from cgan.common.errors import CganError
from cgan.common.records import MAX_RESOLUTION

INTERRUPTED = 130


def error_line(prog: str, message: object) -> str:
    """`PROG: error: MESSAGE`, cut to its first line (an error is never a paragraph)."""
    return f"{prog}: error: {first_line(message)}"


def first_line(message: object, limit: int = 300) -> str:
    """The first non-empty line of `message` (an exception or text), at most `limit` chars."""
    text = str(message).strip() or type(message).__name__
    line = text.splitlines()[0].strip()
    return line if len(line) <= limit else line[: limit - 3] + "..."


def fail(prog: str, message: object, code: int = 2) -> int:
    """Print one error line on stderr and return `code` for main() to return."""
    print(error_line(prog, message), file=sys.stderr)
    return code


def run_command(prog: str, body: Callable[[], int | None]) -> int:
    """Run a command's body: its exit code, one line for a `CganError`, 130 for Ctrl-C."""
    try:
        return body() or 0
    except CganError as exc:
        return fail(prog, exc, exc.exit_code)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return INTERRUPTED


class OneLineArgumentParser(argparse.ArgumentParser):
    """Bad arguments give one line on stderr and exit code 2, not a usage dump; the
    description and the examples epilog are shown as written."""

    def __init__(self, **options: Any) -> None:
        options.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(**options)

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


# argparse `type=` converters: a bad value becomes the parser's one-line error.


_WHOLE = re.compile(r"[+-]?[0-9]{1,18}")
_DECIMAL = re.compile(r"[+-]?([0-9]{0,40}\.?[0-9]{0,40}([eE][+-]?[0-9]{1,4})?|inf|nan)", re.I)


def is_finite_number(value: object) -> bool:
    """Whether a value read from JSON is a finite number: not a bool, not NaN or Infinity
    (which JSON parsers give), not an integer too large for a float."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def number_converter(
    kind: type, accept: Callable[[Any], bool], requirement: str
) -> Callable[[str], Any]:
    """An argparse `type=` for int or float: ASCII digits only, then `accept` or one line."""
    what = "a whole number" if kind is int else "a number"

    def convert(text: str) -> Any:
        # ASCII only and not too long: int() and float() also take other scripts' digits
        # ('٣' is 3) and thousands of digits, which no option needs.
        pattern = _WHOLE if kind is int else _DECIMAL
        if not pattern.fullmatch(text.strip()):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text[:40]!r}")
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text[:40]!r}") from None
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        if not accept(value):
            raise argparse.ArgumentTypeError(f"{requirement}, got {value}")
        return value

    return convert


positive_int = number_converter(int, lambda v: v >= 1, "must be at least 1")
non_negative_int = number_converter(int, lambda v: v >= 0, "must not be negative")
non_negative_float = number_converter(float, lambda v: v >= 0, "must not be negative")
positive_float = number_converter(float, lambda v: v > 0, "must be positive")
# The side of a square image a command writes (the records format's limit too).
image_side = number_converter(
    int, lambda v: 1 <= v <= MAX_RESOLUTION, f"must be 1 to {MAX_RESOLUTION}"
)
# A number strictly between 0 and 1, such as a decay rate.
open_fraction = number_converter(float, lambda v: 0 < v < 1, "must be between 0 and 1")
