"""The registry's refusals: what its services raise when a push, pull or delete cannot be done.

They carry no HTTP status and no spec code: ``str(error)`` is the message for the user, and
the data an answer needs (an upload's offset, the digest a manifest lacks) are attributes.
Each edge translates them once: the /v2 edge into spec error codes in
:mod:`dockyard.registry.http.errors`, the API into problem documents in
:mod:`dockyard.api.problems`. Each subclasses the general error of :mod:`dockyard.errors` it
is a case of, so a caller that treats "not found" alike may catch that one.
"""

from __future__ import annotations

from dockyard.errors import Conflict, DomainError, Forbidden, Invalid, NotFound


class RegistryRefusal(DomainError):
    """Base class of the registry's refusals, for a caller that gives up on any of them."""


class NameUnknown(RegistryRefusal, NotFound):
    """No repository of that name."""


class BlobUnknown(RegistryRefusal, NotFound):
    """The repository does not serve the blob, or its bytes are gone from storage."""


class BlobBeingCollected(RegistryRefusal):
    """Garbage collection is deleting the blob right now; the same push succeeds on a retry."""


class BlobUploadUnknown(RegistryRefusal, NotFound):
    """No upload session of that id in the repository (never started, finished or cancelled)."""


class UploadRangeInvalid(RegistryRefusal, Conflict):
    """A chunk that does not continue the upload, or another request is writing to it: the
    client resumes from ``offset``, the bytes the session ``upload_id`` of ``repository`` holds."""

    def __init__(self, message: str, repository: str, upload_id: str, offset: int) -> None:
        super().__init__(message)
        self.repository = repository
        self.upload_id = upload_id
        self.offset = offset


class SizeMismatch(RegistryRefusal, Invalid):
    """The body's length differs from the length the request declared."""


class DigestMismatch(RegistryRefusal, Invalid):
    """Content whose digest is not the one the client named."""


class ManifestUnknown(RegistryRefusal, NotFound):
    """No manifest of that tag or digest in the repository (or none the client accepts)."""


class ManifestTooLarge(RegistryRefusal, Invalid):
    """A manifest over the registry's size limit."""


class ManifestBlobUnknown(RegistryRefusal, Conflict):
    """A manifest that refers to a blob or manifest (``digest``) the repository lacks."""

    def __init__(self, message: str, digest: str) -> None:
        super().__init__(message)
        self.digest = digest


class PushRefused(RegistryRefusal, Forbidden):
    """The push admission policy refused the manifest for ``repository`` (and ``tag``)."""

    def __init__(self, message: str, repository: str, tag: str | None) -> None:
        super().__init__(message)
        self.repository = repository
        self.tag = tag


def human_bytes(size: int) -> str:
    """``size`` bytes in binary units to three significant digits: ``300 MiB``, ``1.25 GiB``,
    ``1008 KiB`` (two sizes a quota message compares must not both round to ``1 MiB``)."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            if unit == "B":
                return f"{size} B"
            digits = 2 if value < 10 else 1 if value < 100 else 0
            shown = f"{value:.{digits}f}"
            return (shown.rstrip("0").rstrip(".") if digits else shown) + f" {unit}"
        value /= 1024
    raise AssertionError("unreachable")


class QuotaExceeded(DomainError):
    """Not a :class:`RegistryRefusal` (an import gives up on those as a blob gone missing).

    Storing ``adding`` more bytes would take ``workspace`` past its ``limit``; it stores ``used``."""

    def __init__(self, workspace: str, used: int, adding: int, limit: int, what: str = "this blob") -> None:
        self.workspace = workspace
        self.used = used
        self.adding = adding
        self.limit = limit
        if adding:
            numbers = (
                f"would use {human_bytes(used + adding)} of its {human_bytes(limit)} quota "
                f"({what} {human_bytes(adding)}, stored {human_bytes(used)})"
            )
        else:  # refused before anything is sent: it is over already
            numbers = f"stores {human_bytes(used)}, over its {human_bytes(limit)} quota"
        super().__init__(
            f"quota exceeded: workspace {workspace} {numbers}; delete images it no longer needs, or "
            "ask an administrator for a larger quota"
        )

    def numbers(self) -> dict[str, int]:
        return {"used_bytes": self.used, "adding_bytes": self.adding, "limit_bytes": self.limit}
