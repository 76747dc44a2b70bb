"""What a rule decides on, read in SQL: the tags of its scope with their push and last-pull
times, and the untagged manifests that nothing holds."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, select

from dockyard.auth.tables import repositories
from dockyard.db.engine import Connection
from dockyard.registry.manifests import unheld
from dockyard.registry.tables import manifest_pulls, manifests, tags
from dockyard.retention.rules import RuleSpec, TagFact, UntaggedFact


def _scope(workspace_id: int, spec: RuleSpec) -> list[Any]:
    where: list[Any] = [repositories.c.workspace_id == workspace_id]
    if spec.repository is not None:
        where.append(repositories.c.name == spec.repository)
    return where


async def tag_facts(conn: Connection, workspace_id: int, spec: RuleSpec) -> list[TagFact]:
    stmt = (
        select(
            repositories.c.name,
            tags.c.name,
            tags.c.manifest_digest,
            tags.c.updated_at,
            manifest_pulls.c.last_pulled_at,
        )
        .select_from(
            tags.join(repositories, repositories.c.id == tags.c.repository_id).outerjoin(
                manifest_pulls,
                and_(
                    manifest_pulls.c.repository_id == tags.c.repository_id,
                    manifest_pulls.c.digest == tags.c.manifest_digest,
                ),
            )
        )
        .where(*_scope(workspace_id, spec))
    )
    return [TagFact(r[0], r[1], r[2], float(r[3]), r[4]) for r in await conn.execute(stmt)]


async def untagged_facts(conn: Connection, workspace_id: int, spec: RuleSpec) -> list[UntaggedFact]:
    stmt = (
        select(repositories.c.name, manifests.c.digest, manifests.c.created_at)
        .select_from(manifests.join(repositories, repositories.c.id == manifests.c.repository_id))
        .where(*_scope(workspace_id, spec), unheld())
    )
    return [UntaggedFact(r[0], r[1], float(r[2])) for r in await conn.execute(stmt)]
