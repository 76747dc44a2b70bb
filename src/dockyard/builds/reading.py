"""A definition as its reader sees it: its recipe, its status against the last successful
build (built, not built, modified), its latest builds, and what the reader may not do."""

from __future__ import annotations

from sqlalchemy import select

from dockyard.auth.tables import workspaces
from dockyard.builds.rights import Rights
from dockyard.builds.spec import Recipe
from dockyard.builds.tables import build_definitions, build_runs
from dockyard.builds.targets import targets_of
from dockyard.builds.views import BUILT, MODIFIED, NOT_BUILT, SUCCEEDED, DefinitionView, recipe_of, run_view
from dockyard.db.engine import Connection


async def definition_view(conn: Connection, definition_id: int, rights: Rights) -> DefinitionView:
    m = (
        (
            await conn.execute(
                select(build_definitions, workspaces.c.name.label("workspace_name"))
                .join(workspaces, workspaces.c.id == build_definitions.c.workspace_id)
                .where(build_definitions.c.id == definition_id)
            )
        )
        .mappings()
        .one()
    )
    runs = (
        select(build_runs).where(build_runs.c.definition_id == definition_id).order_by(build_runs.c.id.desc())
    )
    last = (await conn.execute(runs.limit(1))).mappings().first()
    success = (await conn.execute(runs.where(build_runs.c.status == SUCCEEDED).limit(1))).mappings().first()
    if success is None:
        status = NOT_BUILT
    else:
        status = BUILT if success["content_hash"] == m["content_hash"] else MODIFIED
    recipe: Recipe = recipe_of(m)
    return DefinitionView(
        id=m["id"],
        name=m["name"],
        workspace=m["workspace_name"],
        description=m["description"],
        recipe=recipe,
        context_size=m["context_size"],
        version=m["version"],
        external_destination=m["external_destination"],
        content_hash=m["content_hash"],
        revision=m["revision"],
        status=status,
        created_at=m["created_at"],
        created_by=m["created_by"],
        updated_at=m["updated_at"],
        updated_by=m["updated_by"],
        last_build=None if last is None else run_view(last, m["name"]),
        last_success=None if success is None else run_view(success, m["name"]),
        my_role=rights.role,
        refused=await rights.refused(m),
        push_targets=targets_of(m["push_targets"]),
    )
