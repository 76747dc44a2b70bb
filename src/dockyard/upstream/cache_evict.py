"""Eviction of a pull-through cache over its size limit, least recently pulled first.

Run by GC (:meth:`GarbageCollector.evict_with`) before it marks and sweeps. For each cache
workspace using more than its limit (the quota ledger's ``used_bytes``: each blob once), its
manifests are taken in order of their last pull (``manifest_pulls``, else when stored) and
deleted one by one, with their tags, until what the deletions free is enough to get under the
limit. A blob frees its bytes only when no remaining manifest of the workspace names it, so
shared base layers keep the images that share them cheap. The sweep that follows in the same
GC run unlinks what no manifest names any more (after the usual grace period) and gives the
bytes back to the workspace.
"""

from __future__ import annotations

import contextlib

from sqlalchemy import func, select

from dockyard.auth.tables import repositories
from dockyard.db.engine import Connection, Database
from dockyard.registry.errors import ManifestUnknown
from dockyard.registry.manifests import ManifestService
from dockyard.registry.quotas import Ledger
from dockyard.registry.tables import blobs, manifest_pulls, manifest_references, manifests
from dockyard.upstream.tables import cache_workspaces


class CacheEviction:
    def __init__(self, db: Database, ledger: Ledger, manifests: ManifestService) -> None:
        self.db = db
        self.ledger = ledger
        self.manifests = manifests

    async def __call__(self, dry_run: bool) -> list[str]:
        """Evict until every cache is under its limit; the evicted ``repo@digest`` (a dry run
        only names them)."""
        async with self.db.read() as conn:
            limits = (
                await conn.execute(select(cache_workspaces.c.workspace_id, cache_workspaces.c.limit_bytes))
            ).all()
            plans: list[str] = []
            for workspace_id, limit in limits:
                _own, used = await self.ledger.own(conn, int(workspace_id))
                if used > int(limit):
                    plans += await self._plan(conn, int(workspace_id), used - int(limit))
        if not dry_run:
            for entry in plans:
                repository, _, digest = entry.partition("@")
                with contextlib.suppress(ManifestUnknown):  # deleted meanwhile
                    await self.manifests.delete(repository, digest, actor=None)
        return plans

    async def _plan(self, conn: Connection, workspace_id: int, excess: int) -> list[str]:
        last = func.coalesce(manifest_pulls.c.last_pulled_at, manifests.c.created_at)
        order = (
            await conn.execute(
                select(manifests.c.id, repositories.c.name, manifests.c.digest)
                .select_from(
                    manifests.join(repositories, repositories.c.id == manifests.c.repository_id).outerjoin(
                        manifest_pulls,
                        (manifest_pulls.c.repository_id == manifests.c.repository_id)
                        & (manifest_pulls.c.digest == manifests.c.digest),
                    )
                )
                .where(repositories.c.workspace_id == workspace_id)
                .order_by(last, manifests.c.id)
            )
        ).all()
        references = (
            await conn.execute(
                select(manifest_references.c.manifest_id, manifest_references.c.digest, blobs.c.size)
                .select_from(
                    manifest_references.join(manifests, manifests.c.id == manifest_references.c.manifest_id)
                    .join(repositories, repositories.c.id == manifests.c.repository_id)
                    .join(blobs, blobs.c.digest == manifest_references.c.digest)
                )
                .where(repositories.c.workspace_id == workspace_id, manifest_references.c.kind == "blob")
            )
        ).all()
        named: dict[int, set[str]] = {}
        holders: dict[str, int] = {}
        sizes: dict[str, int] = {}
        for manifest_id, digest, size in references:
            if digest not in named.setdefault(int(manifest_id), set()):
                named[int(manifest_id)].add(digest)
                holders[digest] = holders.get(digest, 0) + 1
            sizes[digest] = int(size)
        freed, evicted = 0, []
        for manifest_id, repository, digest in order:
            if freed >= excess:
                break
            for blob in named.get(int(manifest_id), ()):
                holders[blob] -= 1
                if holders[blob] == 0:
                    freed += sizes[blob]
            evicted.append(f"{repository}@{digest}")
        return evicted
