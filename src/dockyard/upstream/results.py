"""What verifying an external image reference yields: :class:`Resolved` or :class:`Failed`.

Both are plain values the catalog stores with a version ("checked at ..., digest ...,
platforms ...", or the failure's kind and user-facing message).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

FailureKind = Literal["not_found", "unauthorized", "rate_limited", "unreachable", "invalid", "refused"]


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Credentials:
    """A username and its secret (password or token) for one upstream registry."""

    username: str
    secret: str = field(repr=False)


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
    set when a rate-limited upstream said when to come back.
    """

    kind: FailureKind
    message: str
    status: int | None = None
    retry_after: float | None = None
    checked_at: datetime = field(default_factory=_now)

    @property
    def ok(self) -> Literal[False]:
        return False


Resolution = Resolved | Failed


class UpstreamFailure(Exception):
    """Raised inside the client to stop at the first failure; ``resolve`` returns ``failure``."""

    def __init__(self, failure: Failed) -> None:
        super().__init__(failure.message)
        self.failure = failure
