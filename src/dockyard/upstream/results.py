"""What verifying an external image reference yields: :class:`Resolved` or :class:`Failed`.

Both are plain values the catalog stores with a version ("checked at ..., digest ...,
platforms ...", or the failure's kind and user-facing message).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

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
