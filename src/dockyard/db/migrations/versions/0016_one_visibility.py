"""one visibility: an image's is its repository's; the per-version access column goes

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 08:10:00

Before: a repository's ``visibility`` (public, private) governed its internal versions, and
each external version had its own ``access`` (public; workspace: any member; private:
maintainers and owners only). After: one setting, the repository's visibility, for the image
of the same name and all its versions; every image has a repository row.

How each image's visibility is chosen, never widening what anyone outside the workspace
could see: the most restrictive of its repository's visibility (when it had one) and the
access of each of its *external* versions, read as ``public`` -> public, ``workspace`` and
``private`` -> private. So a public repository with a private external version becomes
private, and an image is public only if everything it showed was public. An image without a
repository (external only, or empty) gets one with that visibility (private when it had no
external version). The access values of internal versions are not read: they never decided
anything (the repository did).

Nothing is lost: every external version's old access is kept as a history event of its image
(``modified``, field ``access``, before and after, actor ``migration 0016``), and a changed or
created repository visibility as an image event (field ``visibility``) and an audit-log entry
(``repository.visibility``, actor kind ``system``). One change cannot be avoided and the
events flag it (``widened_in_workspace``): a ``private`` external version was for maintainers
and owners; a private image is seen by every member of the workspace (readers included), by
teams and robots with a role on the repository and by users granted access. The downgrade
puts the recorded values back.
"""

from __future__ import annotations

import json
import time
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

ACTOR = "migration 0016"
REASON = (
    "visibility is now one setting per image and its repository; the most restrictive of the "
    "repository's visibility and its external versions' access was kept"
)

images = sa.table(
    "images",
    sa.column("id", sa.Integer),
    sa.column("workspace_id", sa.Integer),
    sa.column("name", sa.String),
    sa.column("created_at", sa.Float),
)
versions = sa.table(
    "image_versions",
    sa.column("id", sa.Integer),
    sa.column("image_id", sa.Integer),
    sa.column("version", sa.String),
    sa.column("source", sa.String),
    sa.column("access", sa.String),
)
repositories = sa.table(
    "repositories",
    sa.column("id", sa.Integer),
    sa.column("name", sa.String),
    sa.column("created_at", sa.Float),
    sa.column("workspace_id", sa.Integer),
    sa.column("visibility", sa.String),
)
events = sa.table(
    "image_events",
    sa.column("id", sa.Integer),
    sa.column("image_id", sa.Integer),
    sa.column("version", sa.String),
    sa.column("at", sa.Float),
    sa.column("actor", sa.String),
    sa.column("kind", sa.String),
    sa.column("detail", sa.Text),
)
audit = sa.table(
    "audit_log",
    sa.column("at", sa.Float),
    sa.column("actor_kind", sa.String),
    sa.column("actor_name", sa.String),
    sa.column("action", sa.String),
    sa.column("workspace_id", sa.Integer),
    sa.column("target", sa.String),
    sa.column("detail", sa.Text),
)


def visibility_of(access: str) -> str:
    """What an old per-version access becomes: only ``public`` is public."""
    return "public" if access == "public" else "private"


def _event(
    image_id: int, version: str | None, field: str, before: Any, after: str, now: float
) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "fields": [field],
        "changes": {field: {"before": before, "after": after}},
        "reason": REASON,
    }
    if field == "access" and before == "private":
        # Maintainers and owners only, before; every member, teams, robots and grants now.
        detail["widened_in_workspace"] = True
    return {
        "image_id": image_id,
        "version": version,
        "at": now,
        "actor": ACTOR,
        "kind": "modified",
        "detail": json.dumps(detail, sort_keys=True),
    }


def upgrade() -> None:
    conn = op.get_bind()
    now = time.time()
    external: dict[int, list[tuple[str, str]]] = {}
    for image_id, version, access in conn.execute(
        sa.select(versions.c.image_id, versions.c.version, versions.c.access)
        .where(versions.c.source == "external")
        .order_by(versions.c.id)
    ):
        external.setdefault(image_id, []).append((version, access))
    found = conn.execute(
        sa.select(
            images.c.id,
            images.c.workspace_id,
            images.c.name,
            images.c.created_at,
            repositories.c.id,
            repositories.c.visibility,
        )
        .select_from(images.outerjoin(repositories, repositories.c.name == images.c.name))
        .order_by(images.c.id)
    ).all()
    new_events: list[dict[str, Any]] = []
    audited: list[dict[str, Any]] = []
    for image_id, workspace_id, name, created_at, repo_id, before in found:
        chosen = [visibility_of(access) for _, access in external.get(image_id, [])]
        if before is not None:
            chosen.append(before)
        after = "public" if chosen and all(v == "public" for v in chosen) else "private"
        if repo_id is None:
            conn.execute(
                repositories.insert().values(
                    name=name, created_at=created_at, workspace_id=workspace_id, visibility=after
                )
            )
        elif before != after:
            conn.execute(repositories.update().where(repositories.c.id == repo_id).values(visibility=after))
        if before != after:
            new_events.append(_event(image_id, None, "visibility", before, after, now))
            audited.append(
                {
                    "at": now,
                    "actor_kind": "system",
                    "actor_name": ACTOR,
                    "action": "repository.visibility",
                    "workspace_id": workspace_id,
                    "target": name,
                    "detail": json.dumps(
                        {"visibility": after, "before": before, "after": after, "reason": REASON},
                        sort_keys=True,
                    ),
                }
            )
        for version, access in external.get(image_id, []):
            new_events.append(_event(image_id, version, "access", access, after, now))
    if new_events:
        conn.execute(events.insert(), new_events)
    if audited:
        conn.execute(audit.insert(), audited)
    with op.batch_alter_table("image_versions", schema=None) as batch_op:
        batch_op.drop_column("access")


def downgrade() -> None:
    with op.batch_alter_table("image_versions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("access", sa.String(length=10), server_default="workspace", nullable=False)
        )
    conn = op.get_bind()
    # External versions: the access they had (kept by the upgrade), else their image's visibility.
    for image_id, visibility in conn.execute(
        sa.select(images.c.id, repositories.c.visibility).join(
            repositories, repositories.c.name == images.c.name
        )
    ):
        conn.execute(
            versions.update()
            .where(versions.c.image_id == image_id, versions.c.source == "external")
            .values(access="public" if visibility == "public" else "workspace")
        )
    kept = conn.execute(
        sa.select(events.c.id, events.c.image_id, events.c.version, events.c.detail).where(
            events.c.actor == ACTOR, events.c.version.is_not(None)
        )
    ).all()
    for _, image_id, version, detail in kept:
        before = json.loads(detail)["changes"]["access"]["before"]
        conn.execute(
            versions.update()
            .where(versions.c.image_id == image_id, versions.c.version == version)
            .values(access=before)
        )
