"""What builds keep outside the database, removed with the rows that name it: a definition's
uploaded contexts and its runs' logs in storage (:mod:`.contexts`), when the definition is
deleted (:meth:`.definitions.BuildDefinitions.delete`) and when a forced workspace deletion
takes its definitions with it (:func:`workspace_build_files`, wired by :mod:`dockyard.app`)."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable

from sqlalchemy import select

from dockyard.builds.contexts import log_path
from dockyard.builds.tables import build_definitions, build_runs
from dockyard.db.engine import Connection
from dockyard.storage.base import PathNotFound, StorageDriver
from dockyard.tenancy.workspaces import Cleanup


async def remove_build_files(storage: StorageDriver, definition_ids: list[int], run_ids: list[int]) -> None:
    """Delete the stored contexts of ``definition_ids`` and the logs of ``run_ids`` (gone already
    or never written is fine)."""
    paths = [f"builds/contexts/{d}" for d in definition_ids] + [log_path(run_id) for run_id in run_ids]
    for path in paths:
        with contextlib.suppress(PathNotFound):
            await storage.delete(path)


def workspace_build_files(storage: StorageDriver) -> Cleanup:
    """The workspace deletion's cleanup of build contexts and logs (the rows go by cascade)."""

    async def collect(conn: Connection, workspace_id: int) -> Callable[[], Awaitable[None]]:
        definitions = select(build_definitions.c.id).where(build_definitions.c.workspace_id == workspace_id)
        definition_ids = [row[0] for row in await conn.execute(definitions)]
        run_ids = [
            row[0]
            for row in await conn.execute(
                select(build_runs.c.id).where(build_runs.c.definition_id.in_(definitions.scalar_subquery()))
            )
        ]

        async def remove() -> None:
            await remove_build_files(storage, definition_ids, run_ids)

        return remove

    return collect
