"""Argument types of the ``local`` command. They import nothing heavy, so building the parser stays fast."""

from __future__ import annotations

import argparse
import math


def fraction(text: str) -> float:
    """Parse a fraction from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; pass a fraction from 0 to 1") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is out of range; pass a fraction from 0 to 1")
    return value


def port(text: str) -> int:
    """Parse a TCP port number, where 0 means any free port."""
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port; pass a number from 0 to 65535")
    return int(text)


def positive_seconds(text: str) -> float:
    """Parse a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds; pass for example 600") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive, finite number of seconds; pass for example 600")
    return value
