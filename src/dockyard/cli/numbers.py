"""Numbers on the command line: bounded and finite, or refused as a usage error that says why.

click's ``FloatRange`` lets NaN through (it compares false with both bounds) and ``inf`` past
an open bound; the request body then cannot be encoded as JSON and the command died with a
traceback. The bounds are the server's (``dockyard.api.v1.inputs``), repeated here so that
the CLI does not load the server's modules; a unit test keeps them equal.
"""

from __future__ import annotations

import math

import typer

MAX_ID = 2**31 - 1  # ids of requests, tokens and builds
MIN_DAYS = 120 / 86400  # the shortest grant or token: two minutes
MAX_GRANT_DAYS = 366
MAX_TOKEN_DAYS = 3650
MAX_SECONDS = 10 * 365 * 86400.0  # ten years, for periods such as a grace time


def finite(value: str | float, low: float, high: float, unit: str = "") -> float:
    """``value`` (as typed, or the default) as a float from ``low`` to ``high``; a usage error
    (exit status 2, with the option's name) otherwise."""
    try:
        number = float(value)
    except ValueError:
        raise typer.BadParameter(f"{str(value)[:30]!r} is not a number") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise typer.BadParameter(f"{str(value)[:30]!r} is not a number from {low:.4g} to {high:g}{unit}")
    return number


def grant_days(value: str | float) -> float:
    return finite(value, MIN_DAYS, MAX_GRANT_DAYS, " days (at least two minutes)")


def token_days(value: str | float) -> float:
    return finite(value, MIN_DAYS, MAX_TOKEN_DAYS, " days (at least two minutes)")


def seconds(value: str | float) -> float:
    return finite(value, 0, MAX_SECONDS, " seconds")
