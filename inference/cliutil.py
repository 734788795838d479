"""Command-line conventions every stage's CLI shares (lives in the base install)."""

from __future__ import annotations

import argparse
import math
import sys
from typing import NoReturn


def fail(prog: str, message: object, code: int = 2) -> int:
    """Report an error as one line on stderr; returns the exit code for main() to return."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    return code


class OneLineArgumentParser(argparse.ArgumentParser):
    """Bad arguments give one line on stderr and exit code 2, not a usage dump."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


# argparse `type=` converters: a bad value becomes the parser's one-line error.


def positive_int(text: str) -> int:
    value = _number(text, int, "a whole number")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = _number(text, int, "a whole number")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def non_negative_float(text: str) -> float:
    value = _number(text, float, "a number")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def positive_float(text: str) -> float:
    value = _number(text, float, "a number")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def open_fraction(text: str) -> float:
    """A number strictly between 0 and 1, such as a decay rate."""
    value = _number(text, float, "a number")
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def _number(text: str, kind: type, what: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value
