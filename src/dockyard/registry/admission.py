"""Push admission: a policy that layers above the registry may hand in, consulted before a
manifest is stored.

The registry sits below the catalog and never imports it; :mod:`dockyard.app` wires the
catalog's policy in (``ManifestService.admit_with``). A policy answers with the reason for a
refusal, or ``None`` to admit; the registry turns a refusal into the spec's ``DENIED`` (403),
so docker, podman and skopeo show the reason to whoever pushed.

A policy is consulted before the write, outside its transaction: two pushes of a new tag can
both be admitted. A tag that must not move (an immutable tag) is therefore also guarded where
it is written: the policy's :class:`TagGuard` names the refusal, and the registry writes the tag
only when it is absent or already names the pushed manifest, in one conditional statement of
the push's transaction (the database's unique key decides between concurrent pushes), and
answers the refusal otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from dockyard.oci.manifest import ParsedManifest


@dataclass(frozen=True)
class ProposedPush:
    """A manifest about to be stored: what was sent, already parsed and checked to be valid.

    The blobs and child manifests it names may not be linked yet (the registry checks them
    after admission, with its own errors)."""

    repository: str
    tag: str | None  # None for a push by digest
    digest: str
    content: bytes
    manifest: ParsedManifest


class PushAdmission(Protocol):
    async def __call__(self, push: ProposedPush) -> str | None:
        """The reason to refuse ``push`` (a sentence for the user that says what to do
        instead), or ``None`` to admit it. Must not write anything."""
        ...


async def admit_all(push: ProposedPush) -> str | None:
    """The do-nothing policy (a registry without a catalog above it)."""
    return None


class TagGuard(Protocol):
    async def __call__(self, repository: str, tag: str) -> str | None:
        """The refusal to answer if ``repository:tag`` already names another manifest when the
        push writes it (the tag may not move), or ``None``: the tag may move. Must not write."""
        ...


async def no_guard(repository: str, tag: str) -> str | None:
    """Every tag may move (a registry without a catalog above it)."""
    return None
