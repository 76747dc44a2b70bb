"""Rebuilding what was built here when its base is updated (catalog lineage).

A successful run notes the image its Dockerfile's final stage (or target) is built FROM
(``BuildService._succeeded``), which the catalog prefers as the version's base. A version built here is
rebuilt in one action (:meth:`Rebuilds.rebuild`, the image workspace's maintainers): a run of
the definition whose last successful run pushed the version's digest, for the same tag.
A definition with ``rebuild_on_base_update`` gets that run queued by itself when a newer base
is pushed (:meth:`Rebuilds.base_updated`, the catalog's hook), unless it has a run queued or
running already; it runs as the user who started the build it redoes (the base is pulled with
their rights), and the definition's history says it was queued for an updated base.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from dockyard.auth.policy import Subject
from dockyard.builds.definitions import load, record_event
from dockyard.builds.service import BuildService
from dockyard.builds.tables import build_definitions, build_runs
from dockyard.builds.views import RunView
from dockyard.catalog.access import Access
from dockyard.catalog.service import Catalog
from dockyard.catalog.tables import image_versions, images
from dockyard.db.engine import Connection, Database
from dockyard.errors import NotFound

log = logging.getLogger("dockyard.builds")

SYSTEM = "dockyard (base updated)"
UNFINISHED = ("queued", "running")
MAINTAINER = "maintainer"


@dataclass(frozen=True)
class RebuildSetting:
    definition: str
    rebuild_on_base_update: bool


async def _built_by(conn: Connection, name: str, digest: str | None) -> Any | None:
    """The definition of the image ``name`` (a definition builds the image of its own name)
    when its latest successful run pushed ``digest``. Never another image's definition: the
    same digest pushed elsewhere (a copy in another workspace) must not run its recipe."""
    if digest is None:
        return None
    return (
        await conn.execute(
            select(
                build_definitions,
                build_runs.c.id.label("run_id"),
                build_runs.c.started_by.label("run_started_by"),
                build_runs.c.started_by_id.label("run_started_by_id"),
            )
            .join(build_runs, build_runs.c.definition_id == build_definitions.c.id)
            .where(
                build_definitions.c.name == name,
                build_runs.c.digest == digest,
                build_runs.c.status == "succeeded",
            )
            .order_by(build_runs.c.id.desc())
            .limit(1)
        )
    ).first()


async def _busy(conn: Connection, definition_id: int) -> bool:
    found = await conn.execute(
        select(build_runs.c.id)
        .where(build_runs.c.definition_id == definition_id, build_runs.c.status.in_(UNFINISHED))
        .limit(1)
    )
    return found.first() is not None


class Rebuilds:
    def __init__(self, db: Database, catalog: Catalog, builds: BuildService) -> None:
        self.db = db
        self.catalog = catalog
        self.builds = builds

    async def rebuild(self, actor: Subject, name: str, version: str) -> RunView:
        """Queue a run of the definition that built ``name:version`` (maintainers of the image's
        workspace)."""
        seen = await self.catalog.version(actor, name, version)  # NotFound unless seen
        async with self.db.write() as conn:
            image = (await conn.execute(select(images.c.workspace_id).where(images.c.name == name))).scalar()
            workspace = name.split("/", 1)[0]
            await Access(conn, actor).require(int(image or 0), workspace, MAINTAINER)
            m = await _built_by(conn, name, seen.digest)
            if m is None:
                raise NotFound(f"{name}:{version} was not built here: there is no build to run again")
            run_id = await self.builds.create_run(
                conn, m._mapping, version, actor.name, actor.id if actor.kind == "user" else None
            )
        await self.builds.enqueue_run(run_id)
        return await self.builds.run(actor, run_id)

    async def base_updated(self, children: list[int]) -> None:
        """The catalog's hook: queue the rebuilds of the children whose definitions ask for it."""
        queued = []
        async with self.db.write() as conn:
            digests = await conn.execute(
                select(images.c.name, image_versions.c.digest, image_versions.c.version)
                .join(images, images.c.id == image_versions.c.image_id)
                .where(image_versions.c.id.in_(children))
            )
            seen: set[int] = set()
            for name, digest, version in digests.all():
                m = await _built_by(conn, name, digest)
                if m is None or not m.rebuild_on_base_update or m.id in seen or await _busy(conn, m.id):
                    continue
                seen.add(m.id)
                # as whoever started the build being redone: the base is pulled with their rights
                run_id = await self.builds.create_run(
                    conn, m._mapping, version, m.run_started_by, m.run_started_by_id
                )
                await record_event(conn, m.id, SYSTEM, "rebuild.queued", run_id=run_id, rebuilds=m.run_id)
                queued.append(run_id)
        for run_id in queued:
            await self.builds.enqueue_run(run_id)
        if queued:
            log.info("queued %d rebuild(s) of images whose base was updated", len(queued))

    async def setting(self, actor: Subject, name: str) -> RebuildSetting:
        async with self.db.read() as conn:
            m, _ = await load(conn, actor, name, "reader")
        return RebuildSetting(name, bool(m["rebuild_on_base_update"]))

    async def set_setting(self, actor: Subject, name: str, enabled: bool) -> RebuildSetting:
        """Whether the definition is rebuilt by itself when its base is updated (maintainers)."""
        async with self.db.write() as conn:
            m, _ = await load(conn, actor, name, MAINTAINER)
            if bool(m["rebuild_on_base_update"]) != enabled:
                await conn.execute(
                    update(build_definitions)
                    .where(build_definitions.c.id == m["id"])
                    .values(rebuild_on_base_update=enabled)
                )
                await record_event(
                    conn, m["id"], actor.name, "modified", changes={"rebuild_on_base_update": enabled}
                )
        return RebuildSetting(name, enabled)
