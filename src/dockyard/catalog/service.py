"""The catalog's operations: list, show, register external images, change and delete
versions, history, policies. Pushes reach the catalog through :mod:`.sync`; verification
and resolution of references live in :mod:`.verify`."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from dockyard.auth.guard import find_workspace
from dockyard.auth.policy import Subject
from dockyard.auth.tables import repositories, workspaces
from dockyard.catalog.access import Access
from dockyard.catalog.accessories import attach
from dockyard.catalog.history import actor_name as actor_name
from dockyard.catalog.history import changes, setting_value
from dockyard.catalog.history import record_event as record_event
from dockyard.catalog.queries import ORDERS, SORTS, Condition, Filters, VersionPage, list_versions
from dockyard.catalog.queries import Page as Page  # where callers have always found them
from dockyard.catalog.queries import platform_matches as platform_matches
from dockyard.catalog.queries import search_images as search_images
from dockyard.catalog.sharing import (
    ACCESS,
    check_visibility_of,
    image_visibility,
    per_image,
)
from dockyard.catalog.tables import catalog_policies, image_events, image_versions, images
from dockyard.catalog.views import (
    EXTERNAL,
    KINDS,
    VISIBILITIES,
    ImageEvent,
    ImageView,
    VersionView,
    Warning,
    image_view,
    source_of,
    version_view,
)
from dockyard.db.engine import Connection, Database
from dockyard.errors import Conflict, Invalid, NotFound
from dockyard.oci.reference import ReferenceError, parse_reference
from dockyard.oci.reference import warnings as reference_warnings
from dockyard.registry.repositories import ensure_id

VERSION_MAX = 128


@dataclass(frozen=True)
class VersionSettings:
    kind: str | None = None
    # Deprecated: the image's visibility asked for per version ('public', 'workspace' or
    # 'private'); accepted only where it is, or makes, the whole image's (:func:`wanted_visibility`).
    access: str | None = None
    regions: list[str] | None = None
    cluster_compatibility: list[str] | None = None
    visibility: str | None = None  # the image's, 'public' or 'private': for a new image only

    def check(self) -> None:
        if self.kind is not None and self.kind not in KINDS:
            raise Invalid(f"type is 'tool' or 'bench', not {self.kind!r}")
        if self.access is not None and self.access not in ACCESS:
            raise Invalid(f"access is one of {', '.join(ACCESS)}, not {self.access!r}")
        if self.visibility is not None and self.visibility not in VISIBILITIES:
            raise Invalid(f"visibility is 'public' or 'private', not {self.visibility!r}")
        if self.access is not None and self.visibility is not None and ACCESS[self.access] != self.visibility:
            raise Invalid(
                f"access {self.access!r} and visibility {self.visibility!r} disagree; "
                "give visibility only (access is deprecated)"
            )
        for region in self.regions or []:
            if not region or len(region) > 64:
                raise Invalid("a region is a name of 1 to 64 characters")
        if self.kind is not None:
            check_bench_only(self.kind, self.cluster_compatibility or [])

    def wanted_visibility(self) -> str | None:
        """The image visibility the request asks for, if it asks for one."""
        return self.visibility or (None if self.access is None else ACCESS[self.access])


def check_bench_only(kind: str, clusters: list[str]) -> None:
    """Cluster compatibility describes where a benchmark runs: tool images have none."""
    if clusters and kind != "bench":
        raise Invalid(
            f"cluster_compatibility is for bench images only; a {kind} image cannot list clusters "
            f"({', '.join(clusters)}): set type to 'bench', or clear cluster_compatibility ([])"
        )


def check_version(version: str) -> None:
    if not version or len(version) > VERSION_MAX or not all(c.isalnum() or c in "._-" for c in version):
        raise Invalid(f"version {version[:80]!r} must be 1-{VERSION_MAX} letters, digits, '.', '_' or '-'")


async def create_image(
    conn: Connection, workspace_id: int, name: str, who: str, source: str, now: float, description: str = ""
) -> int:
    """A new image row and its first history event; its id."""
    image_id: int = (
        await conn.execute(
            images.insert()
            .values(
                workspace_id=workspace_id,
                name=name,
                description=description,
                created_at=now,
                created_by=who,
                updated_at=now,
                updated_by=who,
            )
            .returning(images.c.id)
        )
    ).scalar_one()
    await record_event(
        conn, image_id, who, "created", source=source, visibility=await image_visibility(conn, name)
    )
    return image_id


class Catalog:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- reading ------------------------------------------------------------------

    async def image_row(self, conn: Connection, name: str) -> Any:
        row = (
            await conn.execute(
                select(images, workspaces.c.name.label("workspace_name"), repositories.c.visibility)
                .join(workspaces, workspaces.c.id == images.c.workspace_id)
                .outerjoin(repositories, repositories.c.name == images.c.name)
                .where(images.c.name == name)
            )
        ).first()
        return row

    async def _view(self, conn: Connection, access: Access, row: Any) -> ImageView | None:
        m = row._mapping
        if not await access.sees(m["name"]):
            return None
        rows = (
            await conn.execute(
                select(image_versions)
                .where(image_versions.c.image_id == m["id"])
                .order_by(image_versions.c.id)
            )
        ).all()
        versions = [version_view(m["name"], r) for r in rows]
        versions = await attach(conn, versions)
        return image_view(m, versions, source_of(versions), await access.may_delete(m["workspace_id"]))

    async def get(self, actor: Subject, name: str) -> ImageView:
        async with self.db.read() as conn:
            row = await self.image_row(conn, name)
            view = None if row is None else await self._view(conn, Access(conn, actor), row)
        if view is None:
            raise NotFound(f"image {name!r} not found")
        return view

    async def version(self, actor: Subject, name: str, version: str) -> VersionView:
        for found in (await self.get(actor, name)).versions:
            if found.version == version:
                return found
        raise NotFound(f"image {name!r} has no version {version!r}")

    async def search(
        self,
        actor: Subject,
        *,
        workspace: str | None = None,
        source: str | None = None,
        kind: str | None = None,
        status: str | None = None,
        platform: str | None = None,
        query: str | None = None,
        limit: int = 50,
        offset: int = 0,
        condition: Condition | None = None,
    ) -> Page:
        """Images the actor may see, by name, with only the versions that match the filters
        (filtered, counted and paged in the database: :func:`.queries.search_images`)."""
        filters = Filters(workspace, source, kind, status, platform, query, condition)
        async with self.db.read() as conn:
            return await search_images(
                conn, actor, filters, limit, offset, now=time.time(), is_sqlite=self.db.is_sqlite
            )

    async def versions(
        self,
        actor: Subject,
        *,
        workspace: str | None = None,
        source: str | None = None,
        kind: str | None = None,
        status: str | None = None,
        platform: str | None = None,
        query: str | None = None,
        sort: str = "name",
        order: str = "asc",
        limit: int = 50,
        offset: int = 0,
        condition: Condition | None = None,
    ) -> VersionPage:
        """Every version the actor may see, one row each with its image's workspace and
        description, filtered, sorted (``sort`` one of :data:`.queries.SORTS`, ``order`` asc or
        desc; ties by image name, then version) and paged in the database. Empty filter values
        filter nothing."""
        if sort not in SORTS:
            raise Invalid(f"sort is one of {', '.join(SORTS)}, not {sort!r}")
        if order not in ORDERS:
            raise Invalid(f"order is asc or desc, not {order!r}")
        w, s, k, t, p, q = (v or None for v in (workspace, source, kind, status, platform, query))
        filters = Filters(w, s, k, t, p, q, condition)
        async with self.db.read() as conn:
            return await list_versions(
                conn,
                actor,
                filters,
                sort=sort,
                order=order,
                limit=limit,
                offset=offset,
                now=time.time(),
                is_sqlite=self.db.is_sqlite,
            )

    async def events(self, actor: Subject, name: str, limit: int = 200) -> list[ImageEvent]:
        await self.get(actor, name)  # visibility check
        async with self.db.read() as conn:
            row = await self.image_row(conn, name)
            rows = (
                (
                    await conn.execute(
                        select(image_events)
                        .where(image_events.c.image_id == row._mapping["id"])
                        .order_by(image_events.c.id.desc())
                        .limit(limit)
                    )
                )
                .mappings()
                .all()
            )
        return [
            ImageEvent(r["id"], r["at"], r["actor"], r["kind"], r["version"], json.loads(r["detail"]))
            for r in rows
        ]

    # --- external images ----------------------------------------------------------

    async def register_external(
        self,
        actor: Subject,
        workspace: str,
        reference: str,
        *,
        name: str | None = None,
        version: str | None = None,
        description: str = "",
        settings: VersionSettings | None = None,
        new_image: bool = True,
    ) -> VersionView:
        """Register ``reference`` as a version of ``workspace/name`` (name and version are
        taken from the reference when not given). ``new_image`` refuses an existing name.

        A new image gets its repository (the one setting of who sees it), with the visibility
        the settings ask for or else the workspace's default; a version added to an image
        takes the image's, and asking for another is refused (:func:`per_image`)."""
        settings = settings or VersionSettings()
        settings.check()
        check_bench_only(settings.kind or "tool", settings.cluster_compatibility or [])
        try:
            ref = parse_reference(reference)
        except ReferenceError as exc:
            raise Invalid(str(exc)) from None
        short = name or ref.suggested_name
        full = short if "/" in short and short.split("/", 1)[0] == workspace else f"{workspace}/{short}"
        version = version or ref.suggested_version
        check_version(version)
        found_warnings = [Warning(w.code, w.message) for w in reference_warnings(ref)]
        now = time.time()
        who = actor_name(actor)
        async with self.db.write() as conn:
            ws = await find_workspace(conn, workspace)
            access = Access(conn, actor)
            await access.require(ws.id, workspace, "developer")
            row = await self.image_row(conn, full)
            if row is not None and new_image:
                raise Conflict(
                    f"an image named {full!r} already exists; image names are unique across Dockyard. "
                    f"Choose another name, or add a version to it (POST /api/v1/images/{full}/versions)"
                )
            if row is None:
                if not new_image:
                    raise NotFound(f"image {full!r} not found")
                await self._repository_for(conn, full, settings.wanted_visibility())
                image_id = await create_image(conn, ws.id, full, who, EXTERNAL, now, description)
            else:
                image_id = row._mapping["id"]
                if row._mapping["workspace_id"] != ws.id:
                    raise Conflict(f"image {full!r} belongs to another workspace")
                await check_visibility_of(conn, full, settings.wanted_visibility())
            taken = (
                await conn.execute(
                    select(image_versions.c.id).where(
                        image_versions.c.image_id == image_id, image_versions.c.version == version
                    )
                )
            ).first()
            if taken is not None:
                raise Conflict(
                    f"image {full!r} already has a version {version!r}; choose another version name"
                )
            await conn.execute(
                image_versions.insert().values(
                    image_id=image_id,
                    version=version,
                    source=EXTERNAL,
                    kind=settings.kind or "tool",
                    regions=json.dumps(settings.regions or []),
                    cluster_compatibility=json.dumps(settings.cluster_compatibility or []),
                    status="unverified",
                    external_reference=ref.canonical,
                    digest=ref.digest,
                    warnings=json.dumps([w.__dict__ for w in found_warnings]),
                    created_at=now,
                    created_by=who,
                    updated_at=now,
                )
            )
            await conn.execute(
                update(images).where(images.c.id == image_id).values(updated_at=now, updated_by=who)
            )
            await record_event(conn, image_id, who, "version.added", version, reference=ref.canonical)
            added = (
                await conn.execute(
                    select(image_versions).where(
                        image_versions.c.image_id == image_id, image_versions.c.version == version
                    )
                )
            ).one()
        return version_view(full, added)

    async def _repository_for(self, conn: Connection, name: str, visibility: str | None) -> None:
        """The repository of a new external image (or an upload's): created (with the workspace's default
        visibility) unless a push made it already, then given ``visibility`` when asked for
        one, unless the repository was there with another (it is the same setting)."""
        existed = (await conn.execute(select(repositories.c.id).where(repositories.c.name == name))).first()
        repo_id = await ensure_id(self.db, conn, name)
        if visibility is None:
            return
        current = await image_visibility(conn, name)
        if existed is not None and current != visibility:
            raise per_image(name, current, visibility)
        await conn.execute(
            update(repositories).where(repositories.c.id == repo_id).values(visibility=visibility)
        )

    # --- changes ------------------------------------------------------------------

    async def writable(self, conn: Connection, actor: Subject, name: str, needed: str) -> tuple[int, int]:
        """(image id, workspace id) if the actor may see the image and has ``needed``."""
        row = await self.image_row(conn, name)
        access = Access(conn, actor)
        if row is None or await self._view(conn, access, row) is None:
            raise NotFound(f"image {name!r} not found")
        m = row._mapping
        await access.require(m["workspace_id"], m["workspace_name"], needed)
        return m["id"], m["workspace_id"]

    async def update_image(self, actor: Subject, name: str, description: str) -> ImageView:
        async with self.db.write() as conn:
            image_id, _ = await self.writable(conn, actor, name, "developer")
            before = (
                await conn.execute(select(images.c.description).where(images.c.id == image_id))
            ).scalar()
            if before != description:
                now = time.time()
                await conn.execute(
                    update(images)
                    .where(images.c.id == image_id)
                    .values(description=description, updated_at=now, updated_by=actor_name(actor))
                )
                await record_event(
                    conn,
                    image_id,
                    actor_name(actor),
                    "modified",
                    **changes({"description": (before, description)}),
                )
        return await self.get(actor, name)

    async def prepare_upload(self, name: str, visibility: str | None) -> None:
        """Before an upload (whose pusher may push to ``name``) links its first blob: a new
        repository is created with the ``visibility`` asked for, so it is never more visible
        than that, and its image's "created" event says so; an existing one with another
        visibility is refused before anything is pushed (it is the whole image's setting)."""
        if visibility is not None:
            async with self.db.write() as conn:
                await self._repository_for(conn, name, visibility)

    async def update_version(
        self, actor: Subject, name: str, version: str, settings: VersionSettings
    ) -> VersionView:
        settings.check()
        values: dict[str, Any] = {}
        if settings.kind is not None:
            values["kind"] = settings.kind
        if settings.regions is not None:
            values["regions"] = json.dumps(settings.regions)
        if settings.cluster_compatibility is not None:
            values["cluster_compatibility"] = json.dumps(settings.cluster_compatibility)
        async with self.db.write() as conn:
            image_id, _ = await self.writable(conn, actor, name, "developer")
            row = (
                await conn.execute(
                    select(image_versions).where(
                        image_versions.c.image_id == image_id, image_versions.c.version == version
                    )
                )
            ).first()
            if row is None:
                raise NotFound(f"image {name!r} has no version {version!r}")
            await check_visibility_of(conn, name, settings.wanted_visibility())
            check_bench_only(
                settings.kind or row.kind,
                json.loads(row.cluster_compatibility)
                if settings.cluster_compatibility is None
                else settings.cluster_compatibility,
            )
            compared = {
                field: (setting_value(field, row._mapping[field]), setting_value(field, value))
                for field, value in values.items()
            }
            diff = {field: pair for field, pair in compared.items() if pair[0] != pair[1]}
            if diff:
                now = time.time()
                await conn.execute(
                    update(image_versions)
                    .where(image_versions.c.id == row.id)
                    .values(updated_at=now, **values)
                )
                await conn.execute(
                    update(images)
                    .where(images.c.id == image_id)
                    .values(updated_at=now, updated_by=actor_name(actor))
                )
                await record_event(conn, image_id, actor_name(actor), "modified", version, **changes(diff))
            changed = (await conn.execute(select(image_versions).where(image_versions.c.id == row.id))).one()
        return version_view(name, changed)

    # --- policies -----------------------------------------------------------------

    async def amd64_workspaces(self, names: list[str]) -> set[str]:
        """Those of the workspaces ``names`` whose policy requires linux/amd64."""
        if not names:
            return set()
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(workspaces.c.name)
                .join(catalog_policies, catalog_policies.c.workspace_id == workspaces.c.id)
                .where(workspaces.c.name.in_(names), catalog_policies.c.require_amd64.is_(True))
            )
            return {row[0] for row in rows}

    async def require_amd64(self, conn: Connection, workspace_id: int) -> bool:
        row = (
            await conn.execute(
                select(catalog_policies.c.require_amd64).where(
                    catalog_policies.c.workspace_id == workspace_id
                )
            )
        ).first()
        return bool(row[0]) if row is not None else False

    async def set_policy(self, actor: Subject, workspace: str, require_amd64: bool) -> bool:
        async with self.db.write() as conn:
            ws = await find_workspace(conn, workspace)
            await Access(conn, actor).require(ws.id, workspace, "owner")
            stmt = self.db.insert(catalog_policies).values(workspace_id=ws.id, require_amd64=require_amd64)
            await conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["workspace_id"], set_={"require_amd64": require_amd64}
                )
            )
        return require_amd64

    async def get_policy(self, actor: Subject, workspace: str) -> bool:
        async with self.db.read() as conn:
            ws = await find_workspace(conn, workspace)
            await Access(conn, actor).require(ws.id, workspace, "reader")
            return await self.require_amd64(conn, ws.id)
