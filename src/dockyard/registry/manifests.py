"""Manifests and tags. Bytes are stored in the database exactly as received; the digest is
computed over those bytes and is what every response names."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from sqlalchemy import ColumnElement, delete, exists, func, select, update
from sqlalchemy.orm import aliased

from dockyard.auth.tables import repositories
from dockyard.cluster.cache import Generations, LookupCache
from dockyard.db.engine import Connection, Database
from dockyard.oci import mediatypes as mt
from dockyard.oci.digest import Digest
from dockyard.oci.errors import InvalidTag
from dockyard.oci.manifest import ParsedManifest, parse_manifest
from dockyard.oci.names import is_tag, validate_tag
from dockyard.registry import repositories as repos
from dockyard.registry.admission import ProposedPush, PushAdmission, TagGuard, admit_all, no_guard
from dockyard.registry.errors import (
    DigestMismatch,
    ManifestBlobUnknown,
    ManifestTooLarge,
    ManifestUnknown,
    PushRefused,
)
from dockyard.registry.events import Actor, EventBus, ManifestDeleted, ManifestPushed, TagDeleted
from dockyard.registry.tables import manifest_references, manifests, repository_blobs, tags


@dataclass(frozen=True)
class StoredManifest:
    digest: str
    media_type: str
    size: int
    content: bytes


@dataclass(frozen=True)
class PutResult:
    digest: Digest
    subject: str | None


def _reference_clause(reference: str) -> tuple[bool, str]:
    """(is_digest, value) for a manifest reference from a URL."""
    if ":" in reference:
        return True, Digest.parse(reference)
    validate_tag(reference)
    return False, reference


# Hot paths (GET/HEAD of a manifest): plain SQL, see Database.fetch_one.
_BY_TAG = """
    SELECT m.digest, m.media_type, m.size{content}
    FROM repositories r
    JOIN tags t ON t.repository_id = r.id
    JOIN manifests m ON m.repository_id = r.id AND m.digest = t.manifest_digest
    WHERE r.name = $1 AND t.name = $2
"""
_BY_DIGEST = """
    SELECT m.digest, m.media_type, m.size{content}
    FROM repositories r
    JOIN manifests m ON m.repository_id = r.id
    WHERE r.name = $1 AND m.digest = $2
"""
_GET_BY_TAG = _BY_TAG.format(content=", m.content")
_GET_BY_DIGEST = _BY_DIGEST.format(content=", m.content")


def unheld() -> ColumnElement[bool]:
    """A ``manifests`` row nothing holds: no tag names it, no index of its repository lists it,
    and it is no referrer of a manifest still there (retention's "untagged" and its re-check)."""
    parent = aliased(manifests)
    subject = aliased(manifests)
    untagged = ~exists().where(
        tags.c.repository_id == manifests.c.repository_id, tags.c.manifest_digest == manifests.c.digest
    )
    not_a_child = ~exists().where(
        manifest_references.c.kind == "manifest",
        manifest_references.c.digest == manifests.c.digest,
        parent.c.id == manifest_references.c.manifest_id,
        parent.c.repository_id == manifests.c.repository_id,
    )
    subject_gone = manifests.c.subject_digest.is_(None) | ~exists().where(
        subject.c.repository_id == manifests.c.repository_id, subject.c.digest == manifests.c.subject_digest
    )
    return untagged & not_a_child & subject_gone


class ManifestService:
    def __init__(self, db: Database, events: EventBus, max_bytes: int, generations: Generations) -> None:
        self.db = db
        self.events = events
        self.max_bytes = max_bytes
        self.generations = generations
        self._cache: LookupCache[StoredManifest] = LookupCache(
            generations, size_of=lambda m: len(m.content) + 200
        )
        self._admission: PushAdmission = admit_all
        self._guard: TagGuard = no_guard

    def admit_with(self, policy: PushAdmission, guard: TagGuard = no_guard) -> None:
        """Consult ``policy`` before storing each manifest, and ``guard`` for the tags that may
        not move where the tag is written (wired by the composition root)."""
        self._admission = policy
        self._guard = guard

    async def get(self, repository: str, reference: str) -> StoredManifest:
        """The manifest (with its bytes) a tag or digest names; served from the cache when valid."""
        generation, cached = self._cache.get(repository, reference)
        if cached is not None:
            return cached
        try:
            by_digest, value = _reference_clause(reference)
        except InvalidTag as exc:
            # No manifest can have that tag, so it is unknown: the spec allows only 404 here.
            raise ManifestUnknown(f"manifest {reference[:150]!r} is unknown: {exc.message}") from None
        row = await self.db.fetch_one(_GET_BY_DIGEST if by_digest else _GET_BY_TAG, repository, value)
        if row is None:
            raise ManifestUnknown(f"manifest {reference!r} is unknown in {repository!r}")
        found = StoredManifest(row[0], row[1], int(row[2]), bytes(row[3]))
        self._cache.put(repository, reference, generation, found)
        return found

    async def put(
        self,
        repository: str,
        reference: str,
        data: bytes,
        content_type: str | None,
        *,
        actor: Actor | None,
        mirrored: bool = False,
    ) -> PutResult:
        """Store ``data`` as the manifest ``reference`` (a tag or the digest) names; ``actor``
        pushed it (the event says so). ``mirrored``: a copy of an upstream's manifest kept by a
        pull-through cache, stored before its blobs are (they follow on first pull), so neither
        admission nor the check that its blobs are linked applies."""
        if len(data) > self.max_bytes:
            raise ManifestTooLarge(f"manifest is {len(data)} bytes; the limit is {self.max_bytes}")
        digest = Digest.of(data)
        tag: str | None = None
        if is_tag(reference):
            tag = reference
        else:
            expected = Digest.parse(reference) if ":" in reference else None
            if expected is None:
                validate_tag(reference)
            elif Digest.of(data, expected.algorithm) != expected:
                raise DigestMismatch(f"manifest digest does not match {expected}")
            else:
                digest = expected
        parsed = parse_manifest(data, content_type)
        if not mirrored:
            refusal = await self._admission(ProposedPush(repository, tag, str(digest), data, parsed))
            if refusal is not None:
                raise PushRefused(refusal, repository, tag)
        kept = None if tag is None or mirrored else await self._guard(repository, tag)
        now = time.time()
        async with self.db.write() as conn:
            repo_id = await repos.ensure_id(self.db, conn, repository)
            if not mirrored:
                await self._check_references(conn, repo_id, parsed, now)
            await self._insert(conn, repo_id, digest, data, parsed, now)
            if tag is not None:
                await self._tag(conn, repo_id, tag, digest, now, kept, repository)
            pushed = ManifestPushed(repository, digest, parsed.media_type, tag, len(data), actor)
            await self.events.record(conn, pushed)
        await self.generations.changed(repository)
        await self.events.emit(pushed)
        return PutResult(digest, parsed.subject.digest if parsed.subject else None)

    async def _tag(
        self,
        conn: Connection,
        repo_id: int,
        tag: str,
        digest: Digest,
        now: float,
        kept: str | None,
        repository: str,
    ) -> None:
        """Point ``tag`` at ``digest``; a tag that may not move (``kept``, the refusal) is only
        created or left where it is, in one statement: of concurrent first pushes, the first
        to insert wins and the others wait on the unique key, then see it and are refused."""
        stmt = self.db.insert(tags).values(
            repository_id=repo_id, name=tag, manifest_digest=digest, updated_at=now
        )
        if kept is None:
            await conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["repository_id", "name"],
                    set_={"manifest_digest": digest, "updated_at": now},
                )
            )
            return
        written = await conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["repository_id", "name"],
                set_={"updated_at": now},
                where=tags.c.manifest_digest == digest,
            ).returning(tags.c.name)
        )
        if written.first() is None:
            raise PushRefused(kept, repository, tag)

    async def _check_references(
        self, conn: Connection, repo_id: int, parsed: ParsedManifest, now: float
    ) -> None:
        blob_digests = {d.digest for d in parsed.blob_references}
        if blob_digests:
            # Touching the links is also the existence check, and keeps GC from removing
            # a link this manifest is about to rely on.
            result = await conn.execute(
                update(repository_blobs)
                .where(
                    repository_blobs.c.repository_id == repo_id, repository_blobs.c.digest.in_(blob_digests)
                )
                .values(touched_at=now)
            )
            if result.rowcount != len(blob_digests):
                found = {
                    row[0]
                    for row in await conn.execute(
                        select(repository_blobs.c.digest).where(
                            repository_blobs.c.repository_id == repo_id,
                            repository_blobs.c.digest.in_(blob_digests),
                        )
                    )
                }
                missing = sorted(blob_digests - found)
                raise ManifestBlobUnknown(
                    f"the repository has no blob {missing[0]}; push the blobs before the manifest", missing[0]
                )
        child_digests = {d.digest for d in parsed.manifests}
        if child_digests:
            found = {
                row[0]
                for row in await conn.execute(
                    select(manifests.c.digest).where(
                        manifests.c.repository_id == repo_id, manifests.c.digest.in_(child_digests)
                    )
                )
            }
            missing = sorted(child_digests - found)
            if missing:
                raise ManifestBlobUnknown(
                    f"the repository has no manifest {missing[0]}; push the index's manifests first",
                    missing[0],
                )

    async def _insert(
        self,
        conn: Connection,
        repo_id: int,
        digest: Digest,
        data: bytes,
        parsed: ParsedManifest,
        now: float,
    ) -> None:
        # Pushing the same bytes again counts as a fresh push for GC's grace period (a
        # multi-platform push re-sends old children by digest just before their index).
        refreshed = await conn.execute(
            update(manifests)
            .where(manifests.c.repository_id == repo_id, manifests.c.digest == digest)
            .values(created_at=now)
        )
        if refreshed.rowcount:
            return
        stmt = self.db.insert(manifests).values(
            repository_id=repo_id,
            digest=digest,
            media_type=parsed.media_type,
            content=data,
            size=len(data),
            artifact_type=parsed.referrer_artifact_type,
            subject_digest=parsed.subject.digest if parsed.subject else None,
            annotations=json.dumps(parsed.annotations) if parsed.annotations else None,
            created_at=now,
        )
        inserted = (
            await conn.execute(
                stmt.on_conflict_do_nothing(index_elements=["repository_id", "digest"]).returning(
                    manifests.c.id
                )
            )
        ).first()
        if inserted is None:
            return  # pushed at the same moment by another request
        references = [
            {"manifest_id": inserted[0], "kind": "blob", "digest": d.digest} for d in parsed.blob_references
        ]
        references += [
            {"manifest_id": inserted[0], "kind": "manifest", "digest": d.digest} for d in parsed.manifests
        ]
        unique = list({(r["kind"], r["digest"]): r for r in references}.values())
        if unique:
            await conn.execute(manifest_references.insert(), unique)

    async def delete(
        self,
        repository: str,
        reference: str,
        *,
        actor: Actor | None,
        expect_digest: str | None = None,
        only_if_unheld: bool = False,
    ) -> bool:
        """Delete a tag, or a manifest (and its tags) by digest; ``actor`` did it (the event says so).

        Conditional deletes (retention's) hold the repository exclusively, as GC does, so no
        push lands between the check and the delete: ``expect_digest`` deletes the tag only while
        it still names that digest; ``only_if_unheld`` deletes the manifest only while nothing
        holds it (:func:`unheld`). False, with nothing deleted, when the condition no longer holds.
        """
        by_digest, value = _reference_clause(reference)
        conditional = expect_digest is not None or only_if_unheld
        async with self.db.write() as conn:
            repo_id = await repos.require_id(conn, repository, for_write=not conditional)
            if conditional and not await repos.lock_exclusive(conn, repo_id):
                return False
            if not by_digest:
                where = [tags.c.repository_id == repo_id, tags.c.name == value]
                if expect_digest is not None:
                    where.append(tags.c.manifest_digest == expect_digest)
                result = await conn.execute(delete(tags).where(*where))
                if result.rowcount == 0:
                    if conditional:
                        return False
                    raise ManifestUnknown(f"tag {value!r} is unknown in {repository!r}")
            else:
                where = [manifests.c.repository_id == repo_id, manifests.c.digest == value]
                if only_if_unheld:
                    where.append(unheld())
                else:
                    await conn.execute(
                        delete(tags).where(tags.c.repository_id == repo_id, tags.c.manifest_digest == value)
                    )
                result = await conn.execute(delete(manifests).where(*where))
                if result.rowcount == 0:
                    if conditional:
                        return False
                    raise ManifestUnknown(f"manifest {value} is unknown in {repository!r}")
            deleted = (
                ManifestDeleted(repository, value, actor)
                if by_digest
                else TagDeleted(repository, value, actor)
            )
            await self.events.record(conn, deleted)
        await self.generations.changed(repository)
        await self.events.emit(deleted)
        return True

    def _bytewise(self, column: ColumnElement[str]) -> ColumnElement[str]:
        """Lexical (byte) order for listings whatever the database's collation; SQLite's is already."""
        return column if self.db.is_sqlite else column.collate("C")

    async def tags(self, repository: str, n: int | None, last: str | None) -> list[str]:
        async with self.db.read() as conn:
            repo_id = await repos.require_id(conn, repository)
            name = self._bytewise(tags.c.name)
            stmt = select(tags.c.name).where(tags.c.repository_id == repo_id)
            if last:
                stmt = stmt.where(name > last)
            stmt = stmt.order_by(name)
            if n is not None:
                stmt = stmt.limit(n)
            return [row[0] for row in await conn.execute(stmt)]

    async def catalog(
        self, n: int | None, last: str | None, visible: ColumnElement[bool] | None = None
    ) -> list[str]:
        """Repository names in byte order, ``n`` after ``last``; only rows matching ``visible``."""
        name = self._bytewise(repositories.c.name)
        stmt = select(repositories.c.name)
        if visible is not None:
            stmt = stmt.where(visible)
        if last:
            stmt = stmt.where(name > last)
        stmt = stmt.order_by(name)
        if n is not None:
            stmt = stmt.limit(n)
        async with self.db.read() as conn:
            return [row[0] for row in await conn.execute(stmt)]

    async def referrers(
        self, repository: str, subject: Digest, artifact_type: str | None
    ) -> list[dict[str, object]]:
        async with self.db.read() as conn:
            repo_id = await repos.require_id(conn, repository)
            if artifact_type and not mt.is_media_type(artifact_type):
                # Every stored artifactType is a media type, so nothing matches; the database is
                # not asked about a value it may not even hold (a NUL, an overlong string).
                return []
            stmt = select(
                manifests.c.media_type,
                manifests.c.digest,
                manifests.c.size,
                manifests.c.artifact_type,
                manifests.c.annotations,
            ).where(manifests.c.repository_id == repo_id, manifests.c.subject_digest == subject)
            if artifact_type:
                stmt = stmt.where(manifests.c.artifact_type == artifact_type)
            rows = (await conn.execute(stmt.order_by(manifests.c.created_at, manifests.c.digest))).all()
        descriptors: list[dict[str, object]] = []
        for media_type, digest, size, atype, notes in rows:
            descriptor: dict[str, object] = {"mediaType": media_type, "digest": digest, "size": int(size)}
            if atype:
                descriptor["artifactType"] = atype
            if notes:
                descriptor["annotations"] = json.loads(notes)
            descriptors.append(descriptor)
        return descriptors

    async def count(self) -> int:
        async with self.db.read() as conn:
            return int((await conn.execute(select(func.count()).select_from(manifests))).scalar_one())
