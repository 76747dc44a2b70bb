"""What verifying an external image reference yields: :class:`Resolved` or :class:`Failed`.

Both are plain values the catalog stores with a version ("checked at ..., digest ...,
platforms ...", or the failure's kind and user-facing message).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

MAX_RETRY_AFTER = 3600.0  # an upstream's "come back in ..." is believed up to an hour, no more

# What went wrong, as a machine-readable ``reason`` (problem+json on /api, the catalog's
# status_reason prefix, the CLI): not_found (``detail`` says repository, tag or manifest),
# unauthorized (no or wrong credentials; ``profile`` names the registry profile to fix),
# forbidden, rate_limited (``retry_after``), unreachable (``detail``: dns, connect or
# timeout), tls (certificate or handshake), upstream_error (a 5xx); invalid (the upstream's
# answer cannot be used) and refused (the outbound policy forbids the destination).
FailureKind = Literal[
    "not_found",
    "unauthorized",
    "forbidden",
    "rate_limited",
    "unreachable",
    "tls",
    "upstream_error",
    "invalid",
    "refused",
]
FAILURE_KINDS: tuple[FailureKind, ...] = (
    "not_found",
    "unauthorized",
    "forbidden",
    "rate_limited",
    "unreachable",
    "tls",
    "upstream_error",
    "invalid",
    "refused",
)


def _now() -> datetime:
    return datetime.now(UTC)


def clamp_retry_after(value: object) -> float | None:
    """An upstream's ``Retry-After`` (seconds) as Dockyard passes it on: between 0 and
    :data:`MAX_RETRY_AFTER` (10**12 seconds, or a date in the year 9999, is an hour); None
    for what is no number (NaN, text, a bool). Negative means now: 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        seconds = float(value)
    except (ValueError, OverflowError):
        return None
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


@dataclass(frozen=True)
class Credentials:
    """A username and its secret (password or token) for one upstream registry."""

    username: str
    secret: str = field(repr=False)
    profile: str | None = None  # the registry profile they come from, named in failures


@dataclass(frozen=True)
class Resolved:
    """The upstream serves the reference.

    ``compressed_size`` is what a pull of one platform downloads (config + layers, as
    stored): for an index, the ``linux/amd64`` image's, else the first platform's;
    ``platform_sizes`` has it for every platform. Images whose config is not an image
    config (OCI artifacts) have no platform, and their size is the manifest's own sum.
    """

    digest: str
    media_type: str
    platforms: list[str]
    compressed_size: int
    platform_sizes: dict[str, int]
    is_index: bool
    checked_at: datetime = field(default_factory=_now)

    @property
    def ok(self) -> Literal[True]:
        return True


@dataclass(frozen=True)
class Failed:
    """The reference could not be verified; ``message`` tells the user why and what to do.

    ``status`` is the upstream's HTTP status when it answered; ``retry_after`` (seconds) is
    set when a rate-limited upstream said when to come back. ``detail`` narrows the kind
    (``repository``/``tag``/``manifest`` for not_found, ``dns``/``connect``/``timeout`` for
    unreachable); ``profile`` names the registry profile whose credentials were used.
    """

    kind: FailureKind
    message: str
    status: int | None = None
    retry_after: float | None = None
    checked_at: datetime = field(default_factory=_now)
    detail: str | None = None
    profile: str | None = None

    def __post_init__(self) -> None:
        # Every answer built from a Failed (the cache's 429, problem+json, the catalog) sees
        # the clamped value: an upstream cannot make clients wait for years, nor crash one.
        object.__setattr__(self, "retry_after", clamp_retry_after(self.retry_after))

    @property
    def reason(self) -> FailureKind:
        """The machine-readable reason (the ``reason`` member of problem+json answers)."""
        return self.kind

    @property
    def ok(self) -> Literal[False]:
        return False


Resolution = Resolved | Failed


class UpstreamFailure(Exception):
    """Raised inside the client to stop at the first failure; ``resolve`` returns ``failure``."""

    def __init__(self, failure: Failed) -> None:
        super().__init__(failure.message)
        self.failure = failure
