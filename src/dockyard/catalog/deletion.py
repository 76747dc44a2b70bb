"""Deleting what was created: a version, an image with all its versions and tags (its
registry repository goes with it), and what a workspace still holds.

Who may: as in Harbor (project maintainers and admins delete repositories and artifacts,
developers only push) and Quay (repository admins), a version or an image is deleted by the
workspace's maintainers and owners, and by platform admins (who count as owners). A reader or
developer is refused (403) when they may see the image, and told it does not exist (404)
otherwise.

Every delete is audited (``image.delete``, ``version.delete``), told to the workspace's
webhooks (``version.deleted``, ``repository.deleted``, in the same transaction) and recorded in the image's
history: a version's deletion as an event of the image, an image's deletion in
``image_deletions`` with the history it had, which the image's history keeps showing (also
once the name is used again; deleting frees the name, see :mod:`.admission`).

The registry stays consistent in the same transaction: a deleted internal version's tag is
gone, and so are its signatures, attestations and SBOMs (cosign's tags and the OCI referrers,
:mod:`.accessories`) unless another tag still names its digest; a deleted image's repository
row goes with its manifests, tags and blob links (foreign-key cascades), the workspace's quota
gives back the blobs no other repository of it links, and the per-repository caches are
invalidated once it committed.
The bytes stay until the garbage collector finds them unreferenced
(:mod:`dockyard.registry.gc`)."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import delete, select

from dockyard.auth import audit
from dockyard.auth.guard import require_deleter
from dockyard.auth.policy import Subject
from dockyard.auth.tables import repositories
from dockyard.catalog.access import DELETER, Access
from dockyard.catalog.accessories import delete_accessories
from dockyard.catalog.immutability import load_rules
from dockyard.catalog.service import Catalog, actor_name, record_event
from dockyard.catalog.tables import image_deletions, image_events, image_versions, images
from dockyard.catalog.views import EXTERNAL, ImageEvent
from dockyard.cluster.cache import Generations
from dockyard.db.engine import Connection, Database
from dockyard.errors import NotFound
from dockyard.registry import repositories as repos
from dockyard.registry.quotas import linked_digests, release
from dockyard.registry.tables import tags
from dockyard.webhooks.outbox import record


async def workspace_holdings(conn: Connection, workspace_id: int) -> list[str]:
    """Catalog images and registry repositories the workspace still holds, one line each."""
    held = [
        f"image {row[0]}"
        for row in await conn.execute(
            select(images.c.name).where(images.c.workspace_id == workspace_id).order_by(images.c.name)
        )
    ]
    imaged = {line.removeprefix("image ") for line in held}
    held += [
        f"repository {row[0]}"
        for row in await conn.execute(
            select(repositories.c.name)
            .where(repositories.c.workspace_id == workspace_id)
            .order_by(repositories.c.name)
        )
        if row[0] not in imaged
    ]
    return held


class Deletions:
    def __init__(self, db: Database, catalog: Catalog, generations: Generations) -> None:
        self.db = db
        self.catalog = catalog
        self.generations = generations

    async def _image(self, conn: Connection, actor: Subject, name: str) -> Any:
        """The image's row if the actor may delete it (404 when unseen, 403 without the role)."""
        require_deleter(actor)
        image_id, _ = await self.catalog.writable(conn, actor, name, DELETER)
        row = (await conn.execute(select(images).where(images.c.id == image_id))).one()
        return row._mapping

    async def delete_version(
        self, actor: Subject, name: str, version: str, client_ip: str | None = None
    ) -> None:
        """Delete one version: an external one from the catalog, an internal one with its tag."""
        who = actor_name(actor)
        async with self.db.write() as conn:
            image = await self._image(conn, actor, name)
            row = (
                await conn.execute(
                    select(image_versions).where(
                        image_versions.c.image_id == image["id"], image_versions.c.version == version
                    )
                )
            ).first()
            if row is None:
                raise NotFound(f"image {name!r} has no version {version!r}")
            await conn.execute(delete(image_versions).where(image_versions.c.id == row.id))
            untagged, attached = 0, []
            repo = (await conn.execute(select(repositories.c.id).where(repositories.c.name == name))).first()
            if row.source != EXTERNAL and repo is not None:
                untagged = (
                    await conn.execute(
                        delete(tags).where(tags.c.repository_id == repo[0], tags.c.name == version)
                    )
                ).rowcount
                if row.digest:
                    protected = await load_rules(conn, image["workspace_id"])
                    attached = await delete_accessories(conn, repo[0], row.digest, protected.rule_for)
            detail: dict[str, Any] = {
                "source": row.source,
                "digest": row.digest,
                "reference": row.external_reference,
            }
            if attached:
                detail["accessories"] = attached
            await record_event(conn, image["id"], who, "version.deleted", version, **detail)
            await audit.record(
                conn,
                actor,
                "version.delete",
                workspace_id=image["workspace_id"],
                target=f"{name}:{version}",
                client_ip=client_ip,
                detail={**detail, "tags": untagged},
            )
            data = {"repository": name, "version": version, "actor": who, **detail}
            await record(
                conn, image["workspace_id"], "version.deleted", f"{name}:{version}", data, ordering_key=name
            )
        await self.generations.changed(name)

    async def delete_image(self, actor: Subject, name: str, client_ip: str | None = None) -> list[str]:
        """Delete the image, every version (internal or external) and its registry repository
        (manifests, tags); the versions deleted."""
        who = actor_name(actor)
        async with self.db.write() as conn:
            image = await self._image(conn, actor, name)
            gone = await self._remove(conn, image["id"], image["workspace_id"], name, who)
            await audit.record(
                conn,
                actor,
                "image.delete",
                workspace_id=image["workspace_id"],
                target=name,
                client_ip=client_ip,
                detail={"versions": gone},
            )
            data = {"repository": name, "versions": gone, "actor": who}
            await record(conn, image["workspace_id"], "repository.deleted", name, data, ordering_key=name)
        await self.generations.changed(name)
        return gone

    async def delete_repository(self, actor: Subject, name: str, client_ip: str | None = None) -> None:
        """Delete a registry repository: its image when the catalog has one, else the bare
        repository (artifacts only), with the same rule."""
        async with self.db.read() as conn:
            has_image = (await conn.execute(select(images.c.id).where(images.c.name == name))).first()
        if has_image is not None:
            await self.delete_image(actor, name, client_ip)
            return
        async with self.db.write() as conn:
            require_deleter(actor)
            row = (
                await conn.execute(
                    select(repositories.c.id, repositories.c.workspace_id).where(repositories.c.name == name)
                )
            ).first()
            access = Access(conn, actor)
            if row is None or row[1] is None or not await access.may_pull(name):
                raise NotFound(f"repository {name!r} not found")
            await access.require(row[1], name.split("/", 1)[0], DELETER)
            # The row first, then what it links: a push holding its share lock may still link
            # a blob, which the quota must give back too (lock order: repository, then quota).
            if not await repos.lock_exclusive(conn, row[0]):
                raise NotFound(f"repository {name!r} not found")
            linked = await linked_digests(conn, name)
            await conn.execute(delete(repositories).where(repositories.c.id == row[0]))
            await release(conn, row[1], linked)
            await audit.record(
                conn, actor, "repository.delete", workspace_id=row[1], target=name, client_ip=client_ip
            )
            data = {"repository": name, "versions": [], "actor": actor_name(actor)}
            await record(conn, row[1], "repository.deleted", name, data, ordering_key=name)
        await self.generations.changed(name)

    async def _remove(
        self, conn: Connection, image_id: int, workspace_id: int, name: str, who: str
    ) -> list[str]:
        versions = [
            row[0]
            for row in await conn.execute(
                select(image_versions.c.version)
                .where(image_versions.c.image_id == image_id)
                .order_by(image_versions.c.version)
            )
        ]
        history = [
            dict(r)
            for r in (
                await conn.execute(
                    select(
                        image_events.c.at,
                        image_events.c.actor,
                        image_events.c.kind,
                        image_events.c.version,
                        image_events.c.detail,
                    )
                    .where(image_events.c.image_id == image_id)
                    .order_by(image_events.c.id)
                )
            ).mappings()
        ]
        await conn.execute(
            image_deletions.insert().values(
                workspace_id=workspace_id,
                image_name=name,
                at=time.time(),
                actor=who,
                detail=json.dumps({"versions": versions}),
                history=json.dumps(history),
            )
        )
        repo = (await conn.execute(select(repositories.c.id).where(repositories.c.name == name))).first()
        # Hold the repository row before reading its links, so that a blob a push links
        # meanwhile is given back too (lock order: repository, then quota row).
        linked = (
            await linked_digests(conn, name) if repo and await repos.lock_exclusive(conn, repo[0]) else []
        )
        await conn.execute(delete(repositories).where(repositories.c.name == name))
        await release(conn, workspace_id, linked)
        await conn.execute(delete(images).where(images.c.id == image_id))
        return versions

    async def events(self, actor: Subject, name: str, limit: int = 200) -> list[ImageEvent]:
        """The image's history, newest first, with the lives it had before being deleted: each
        deletion is an ``image.deleted`` event followed by what happened before it. Readers of
        the workspace (and admins) see a deleted image's history."""
        async with self.db.read() as conn:
            exists = await self.catalog.image_row(conn, name)
            rows = (
                await conn.execute(
                    select(image_deletions)
                    .where(image_deletions.c.image_name == name)
                    .order_by(image_deletions.c.id.desc())
                    .limit(limit)
                )
            ).all()
            # Past lives are for the members of the workspace they lived in (and admins), even
            # when the name lives again in a repository anyone may read.
            access = Access(conn, actor)
            rows = [r for r in rows if access.subject.is_admin or await access.role(r.workspace_id)]
            if exists is None and not rows:
                raise NotFound(f"image {name!r} not found")
        found = [] if exists is None else await self.catalog.events(actor, name, limit)
        number = 0  # past lives' events have no row id of their own: numbered downwards
        for row in rows:
            detail = json.loads(row.detail)
            number -= 1
            found.append(ImageEvent(number, row.at, row.actor, "image.deleted", None, detail))
            for past in reversed(json.loads(row.history)):
                number -= 1
                found.append(
                    ImageEvent(
                        number,
                        past["at"],
                        past["actor"],
                        past["kind"],
                        past["version"],
                        json.loads(past["detail"]),
                    )
                )
        return found[:limit]
