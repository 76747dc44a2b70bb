"""What is attached to a version without being one: its signatures, attestations and SBOMs.

Two ways of attaching exist and both are read (Harbor calls them a version's *accessories*):

- cosign's tags, in the version's repository, named after the digest they sign:
  ``sha256-<hex>.sig``, ``.att``, ``.sbom`` (the catalog never lists them as versions,
  :func:`.sync.is_digest_tag`);
- OCI 1.1 referrers: manifests whose ``subject`` is the version's digest, the same rows the
  registry answers ``GET /v2/<name>/referrers/<digest>`` from (``manifests.subject_digest``,
  indexed with the repository).

Lists attach them to a whole page at once (:func:`attach`): two queries per page whatever
its length, never one per version. Deleting a version deletes its accessories with it
(:func:`delete_accessories`, in the deletion's transaction) unless another tag still names
the digest they are attached to; a cosign tag an immutability rule protects stays (as retention
keeps it), and so does the manifest it names."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import TypeVar

from sqlalchemy import and_, delete, func, select, tuple_

from dockyard.auth.tables import repositories
from dockyard.catalog.views import Accessory, VersionView
from dockyard.db.engine import Connection
from dockyard.registry.tables import manifests, tags

SUFFIX_KINDS = {"sig": "signature", "att": "attestation", "sbom": "sbom"}
# Words in a referrer's artifactType that say what it is, the first that matches wins:
# cosign (application/vnd.dev.cosign.artifact.sig.v1+json), Notary v2
# (application/vnd.cncf.notary.signature), sigstore bundles, in-toto, SPDX and CycloneDX.
_ARTIFACT_WORDS = (
    ("signature", ("signature", ".sig.", "sigstore")),
    ("attestation", ("in-toto", "intoto", "attestation", "provenance", "slsa")),
    ("sbom", ("spdx", "cyclonedx", "sbom", "syft")),
)

V = TypeVar("V", bound=VersionView)


def kind_of_tag(tag: str) -> str:
    return SUFFIX_KINDS.get(tag.rsplit(".", 1)[-1], "other")


def kind_of_artifact(artifact_type: str | None) -> str:
    """signature, attestation, sbom or other, from a referrer's artifactType."""
    lowered = (artifact_type or "").lower()
    for kind, words in _ARTIFACT_WORDS:
        if any(word in lowered for word in words):
            return kind
    return "other"


def accessory_tags(digest: str) -> list[str]:
    """The cosign tags that name ``digest``'s signature, attestation and SBOM."""
    hex_ = digest.removeprefix("sha256:")
    return [f"sha256-{hex_}.{suffix}" for suffix in SUFFIX_KINDS]


async def accessories_of(
    conn: Connection, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], list[Accessory]]:
    """The accessories of each (repository, digest), oldest first; two queries in all."""
    wanted = sorted({(r, d) for r, d in keys if d.startswith("sha256:")})
    found: dict[tuple[str, str], list[Accessory]] = defaultdict(list)
    if not wanted:
        return found
    names = sorted({r for r, _ in wanted})
    by_tag = {(r, t): d for r, d in wanted for t in accessory_tags(d)}
    tagged = await conn.execute(
        select(
            repositories.c.name,
            tags.c.name,
            manifests.c.digest,
            manifests.c.media_type,
            manifests.c.size,
            manifests.c.artifact_type,
            tags.c.updated_at,
        )
        .select_from(
            tags.join(repositories, repositories.c.id == tags.c.repository_id).join(
                manifests,
                and_(
                    manifests.c.repository_id == tags.c.repository_id,
                    manifests.c.digest == tags.c.manifest_digest,
                ),
            )
        )
        .where(repositories.c.name.in_(names), tags.c.name.in_(sorted({t for _, t in by_tag})))
    )
    seen: set[tuple[str, str, str]] = set()
    for repo, tag, digest, media_type, size, artifact_type, at in tagged:
        subject = by_tag.get((repo, tag))
        if subject is None:
            continue
        seen.add((repo, subject, digest))
        found[(repo, subject)].append(
            Accessory(kind_of_tag(tag), digest, tag, artifact_type, media_type, int(size), at)
        )
    referrers = await conn.execute(
        select(
            repositories.c.name,
            manifests.c.subject_digest,
            manifests.c.digest,
            manifests.c.media_type,
            manifests.c.size,
            manifests.c.artifact_type,
            manifests.c.created_at,
        )
        .select_from(manifests.join(repositories, repositories.c.id == manifests.c.repository_id))
        .where(tuple_(repositories.c.name, manifests.c.subject_digest).in_(wanted))
        .order_by(manifests.c.created_at, manifests.c.digest)
    )
    for repo, subject, digest, media_type, size, artifact_type, at in referrers:
        if (repo, subject, digest) not in seen:  # a referrer cosign also tagged is listed once
            found[(repo, subject)].append(
                Accessory(
                    kind_of_artifact(artifact_type), digest, None, artifact_type, media_type, int(size), at
                )
            )
    for listed in found.values():
        listed.sort(key=lambda a: (a.pushed_at, a.digest))
    return found


async def attach(conn: Connection, views: list[V]) -> list[V]:
    """``views`` with their accessories (internal versions with a digest; two queries)."""
    keys = [(v.image, v.digest) for v in views if v.digest is not None and v.source == "internal"]
    if not keys:
        return views
    found = await accessories_of(conn, keys)
    return [
        dataclasses.replace(v, signatures=found.get((v.image, v.digest), [])) if v.digest else v
        for v in views
    ]


async def delete_accessories(
    conn: Connection, repository_id: int, digest: str, immutable: Callable[[str], str | None]
) -> list[str]:
    """Delete what is attached to ``digest`` in the repository (its cosign tags and the
    manifests they name, its referrers and their tags) unless a tag still names ``digest``;
    the digests of the manifests deleted. GC reclaims their blobs. A cosign tag an
    immutability rule protects (``immutable(tag)``: its pattern) stays, and so does the
    manifest it names, as retention keeps it: an immutable tag is never deleted implicitly."""
    still = await conn.execute(
        select(func.count())
        .select_from(tags)
        .where(tags.c.repository_id == repository_id, tags.c.manifest_digest == digest)
    )
    if still.scalar_one():
        return []
    hex_ = digest.removeprefix("sha256:")
    named = [
        tag
        for tag in [*accessory_tags(digest), f"sha256-{hex_}"]  # and the referrers fallback tag
        if immutable(tag) is None
    ]
    in_repo = tags.c.repository_id == repository_id
    tagged = {
        row[0]
        for row in await conn.execute(select(tags.c.manifest_digest).where(in_repo, tags.c.name.in_(named)))
    }
    await conn.execute(delete(tags).where(in_repo, tags.c.name.in_(named)))
    referrers = {
        row[0]
        for row in await conn.execute(
            select(manifests.c.digest).where(
                manifests.c.repository_id == repository_id, manifests.c.subject_digest == digest
            )
        )
    }
    # A manifest another tag still names (pushed under a name of its own) stays.
    kept = {
        row[0]
        for row in await conn.execute(
            select(tags.c.manifest_digest).where(in_repo, tags.c.manifest_digest.in_(tagged | referrers))
        )
    }
    gone = sorted((tagged | referrers) - kept)
    if gone:
        await conn.execute(
            delete(manifests).where(manifests.c.repository_id == repository_id, manifests.c.digest.in_(gone))
        )
    return gone
