"""Build definitions: create, edit (SAVE), upload the context files, read, list, history.

Who may do what (admins count as owners everywhere):

- see definitions, their builds and logs: any member of the workspace (reader and up);
  to anyone else a definition does not exist;
- create and edit: developer and up — the same right as pushing to the workspace, and a
  change is visible to the owners as "modified" with its author in the history;
- delete: maintainer and up;
- start and cancel builds: owners only (:mod:`dockyard.builds.service`), because a build
  pushes with the starter's rights.

The name is ``workspace/name``, the registry repository the build pushes to, so it is
unique across Dockyard like catalog image names.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterable
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import delete, select, update

from dockyard.auth import audit
from dockyard.auth.facts import workspace_role
from dockyard.auth.guard import find_workspace, require_deleter, require_user
from dockyard.auth.policy import Subject, role_at_least
from dockyard.auth.tables import workspaces
from dockyard.builds import spec as checks
from dockyard.builds.cleanup import remove_build_files
from dockyard.builds.contexts import StoredContext, context_path, store_context
from dockyard.builds.gitsource import check_git_url
from dockyard.builds.history import definition_changes
from dockyard.builds.reading import definition_view
from dockyard.builds.rights import DELETE, EDIT, NEEDED, Rights, needs_role
from dockyard.builds.spec import (
    DEFAULT_PLATFORM,
    DEFAULT_VERSION,
    GIT,
    LOCAL,
    NO_NETWORK,
    ContextKind,
    GitSource,
    Recipe,
)
from dockyard.builds.tables import build_definitions, build_events, build_runs
from dockyard.builds.targets import PushTarget, check_targets, require_profiles, targets_json, targets_of
from dockyard.builds.views import BuildEvent, DefinitionView, recipe_of
from dockyard.catalog import search_index
from dockyard.catalog.service import record_event as record_image_event
from dockyard.catalog.tables import images
from dockyard.db.engine import Connection, Database
from dockyard.errors import Conflict, Forbidden, Invalid, NotFound
from dockyard.oci.reference import parse_reference
from dockyard.outbound import OutboundPolicy, OutboundRefused, split_host_port
from dockyard.storage.base import PathNotFound, StorageDriver

_UNSET: Any = object()


@dataclass(frozen=True)
class DefinitionInput:
    context: ContextKind = LOCAL
    description: str = ""
    dockerfile: str | None = None
    git: GitSource | None = None
    build_args: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    platform: str = DEFAULT_PLATFORM
    version: str = DEFAULT_VERSION
    external_destination: str | None = None
    network: str = NO_NETWORK  # what RUN steps reach: none or egress
    push_targets: tuple[PushTarget, ...] = ()  # other registries, through registry profiles


@dataclass(frozen=True)
class DefinitionChanges:
    """Fields left ``None`` keep their value; an empty target or destination clears it."""

    name: str | None = None
    description: str | None = None
    context: ContextKind | None = None
    dockerfile: str | None = None
    git: GitSource | None = None
    build_args: dict[str, str] | None = None
    target: str | None = None
    platform: str | None = None
    version: str | None = None
    external_destination: str | None = None
    network: str | None = None
    push_targets: tuple[PushTarget, ...] | None = None  # () removes them all


async def record_event(conn: Connection, definition_id: int, actor: str, kind: str, **detail: Any) -> None:
    await conn.execute(
        build_events.insert().values(
            definition_id=definition_id,
            at=time.time(),
            actor=actor,
            kind=kind,
            detail=json.dumps(detail, sort_keys=True, default=str),
        )
    )


async def load(conn: Connection, actor: Subject, name: str, needed: str) -> tuple[Any, str]:
    """The definition row (with ``workspace_name``) and the actor's role, if at least ``needed``."""
    require_user(actor)
    row = (
        await conn.execute(
            select(build_definitions, workspaces.c.name.label("workspace_name"))
            .join(workspaces, workspaces.c.id == build_definitions.c.workspace_id)
            .where(build_definitions.c.name == name)
        )
    ).first()
    role = None if row is None else await workspace_role(conn, actor, row._mapping["workspace_id"])
    if row is None or role is None:
        raise NotFound(f"build definition {name!r} not found")
    if not role_at_least(role, needed):
        raise Forbidden(needs_role(needed, row._mapping["workspace_name"]))
    return row._mapping, role


def _checked(data: DefinitionInput, protocols: list[str]) -> dict[str, Any]:
    """Column values for ``data``, every field checked."""
    if data.context not in (LOCAL, GIT):
        raise Invalid("the context is 'local' (a Dockerfile and uploaded files) or 'git'")
    values: dict[str, Any] = {
        "description": data.description[:4000],
        "context": data.context,
        "build_args": json.dumps(checks.check_build_args(data.build_args), sort_keys=True),
        "target": checks.check_target(data.target),
        "platform": checks.check_platform(data.platform),
        "version": checks.check_version(data.version),
        "external_destination": checks.check_destination(data.external_destination),
        "network": checks.check_network(data.network),
        "push_targets": targets_json(check_targets(data.push_targets)),
        "dockerfile": None,
        "git_url": None,
        "git_ref": None,
        "git_directory": "",
        "dockerfile_path": "Dockerfile",
    }
    if data.context == LOCAL:
        if data.dockerfile is None:
            raise Invalid("a local context needs a Dockerfile")
        values["dockerfile"] = checks.check_dockerfile(data.dockerfile)
    else:
        if data.git is None:
            raise Invalid("a git context needs a repository URL and a ref")
        git = checks.check_git(data.git, protocols)
        values.update(
            git_url=git.url, git_ref=git.ref, git_directory=git.directory, dockerfile_path=git.dockerfile
        )
    return values


def _recipe(values: dict[str, Any], context_digest: str | None) -> Recipe:
    return recipe_of({**values, "context_digest": context_digest})


def _input_of(m: Any) -> DefinitionInput:
    git = None
    if m["context"] == GIT:
        git = GitSource(m["git_url"], m["git_ref"], m["git_directory"], m["dockerfile_path"])
    return DefinitionInput(
        context=m["context"],
        description=m["description"],
        dockerfile=m["dockerfile"],
        git=git,
        build_args=json.loads(m["build_args"]),
        target=m["target"],
        platform=m["platform"],
        version=m["version"],
        external_destination=m["external_destination"],
        network=m["network"],
        push_targets=tuple(targets_of(m["push_targets"])),
    )


class BuildDefinitions:
    def __init__(
        self,
        db: Database,
        storage: StorageDriver,
        git_protocols: list[str],
        context_max_bytes: int,
        *,
        outbound: OutboundPolicy,
    ) -> None:
        self.db = db
        self.storage = storage
        self.git_protocols = git_protocols
        self.context_max_bytes = context_max_bytes
        self.outbound = outbound

    async def _reachable(self, git_url: str | None, destination: str | None) -> None:
        """Refuse now a repository or registry the server may not connect to (builds check again
        when they connect). Outside any transaction: it may wait for DNS."""
        if git_url:
            try:
                await check_git_url(git_url, self.outbound)
            except OutboundRefused as exc:
                raise Invalid(f"cannot clone {git_url[:200]}: {exc.message}") from None
        if destination:
            host, port = split_host_port(parse_reference(destination).api_host)
            try:
                await self.outbound.check(host, port)
            except OutboundRefused as exc:
                raise Invalid(f"cannot push to {destination}: {exc.message}") from None

    async def create(
        self, actor: Subject, workspace: str, name: str, data: DefinitionInput
    ) -> DefinitionView:
        values = _checked(data, self.git_protocols)
        await self._reachable(values["git_url"], values["external_destination"])
        full = checks.full_name(workspace, name)
        content_hash = _recipe(values, None).content_hash()
        now, who = time.time(), actor.name
        async with self.db.write() as conn:
            require_user(actor)
            ws = await find_workspace(conn, workspace)
            if not role_at_least(await workspace_role(conn, actor, ws.id), NEEDED[EDIT]):
                raise Forbidden(needs_role(NEEDED[EDIT], workspace))
            await self._name_free(conn, full, ws.id)
            await require_profiles(conn, ws.id, workspace, targets_of(values["push_targets"]))
            definition_id = (
                await conn.execute(
                    build_definitions.insert()
                    .values(
                        workspace_id=ws.id,
                        name=full,
                        content_hash=content_hash,
                        created_at=now,
                        created_by=who,
                        updated_at=now,
                        updated_by=who,
                        **values,
                    )
                    .returning(build_definitions.c.id)
                )
            ).scalar_one()
            await record_event(conn, definition_id, who, "created", content_hash=content_hash)
            await search_index.set_dockerfile(conn, full, values["dockerfile"])
        return await self.get(actor, full)

    async def _name_free(
        self, conn: Connection, name: str, workspace_id: int, own_id: int | None = None
    ) -> None:
        taken = (
            await conn.execute(select(build_definitions.c.id).where(build_definitions.c.name == name))
        ).first()
        if taken is not None and taken[0] != own_id:
            raise Conflict(
                f"a build definition named {name!r} already exists; names are unique across Dockyard"
            )
        image = (await conn.execute(select(images.c.workspace_id).where(images.c.name == name))).first()
        if image is not None and image[0] != workspace_id:
            raise Conflict(f"the image name {name!r} belongs to another workspace")

    async def update(self, actor: Subject, name: str, changes: DefinitionChanges) -> DefinitionView:
        if changes.git is not None or changes.external_destination:
            async with self.db.read() as conn:
                await load(conn, actor, name, NEEDED[EDIT])  # who may not edit learns nothing more
            git_url = destination = None
            with contextlib.suppress(Invalid):  # bad input is reported below, with the rest
                git_url = checks.check_git(changes.git, self.git_protocols).url if changes.git else None
            with contextlib.suppress(Invalid):
                destination = checks.check_destination(changes.external_destination)
            await self._reachable(git_url, destination)
        async with self.db.write() as conn:
            m, role = await load(conn, actor, name, NEEDED[EDIT])
            current = _input_of(m)
            wanted = replace(
                current,
                **{k: v for k, v in changes.__dict__.items() if v is not None and k != "name"},
            )
            if changes.target == "":
                wanted = replace(wanted, target=None)
            if changes.external_destination == "":
                wanted = replace(wanted, external_destination=None)
            values = _checked(wanted, self.git_protocols)
            new_name = name if changes.name is None else checks.full_name(m["workspace_name"], changes.name)
            if new_name != name:
                await self._name_free(conn, new_name, m["workspace_id"], m["id"])
                values["name"] = new_name
            content_hash = _recipe(values, m["context_digest"]).content_hash()
            changed = sorted(k for k, v in values.items() if m[k] != v)
            if "push_targets" in changed:  # only a profile of the workspace itself
                await require_profiles(
                    conn, m["workspace_id"], m["workspace_name"], targets_of(values["push_targets"])
                )
            if not changed:
                return await definition_view(conn, m["id"], Rights(conn, role))
            await conn.execute(
                update(build_definitions)
                .where(build_definitions.c.id == m["id"])
                .values(
                    content_hash=content_hash,
                    revision=m["revision"] + 1,
                    updated_at=time.time(),
                    updated_by=actor.name,
                    **values,
                )
            )
            detail: dict[str, Any] = {
                "fields": changed,
                "content_hash": content_hash,
                "changes": definition_changes(m, values, changed),
            }
            if new_name != name:
                detail["renamed_from"] = name
                await search_index.forget_dockerfile(conn, name)
            await record_event(conn, m["id"], actor.name, "modified", **detail)
            await search_index.set_dockerfile(conn, new_name, values.get("dockerfile", m["dockerfile"]))
            return await definition_view(conn, m["id"], Rights(conn, role))

    async def upload_context(self, actor: Subject, name: str, source: AsyncIterable[bytes]) -> DefinitionView:
        """Replace the definition's files with an uploaded tar (checked; see :mod:`.contexts`)."""
        async with self.db.read() as conn:
            m, _ = await load(conn, actor, name, NEEDED[EDIT])
        if m["context"] != LOCAL:
            raise Conflict("only a local context has uploaded files; this one builds from git")
        stored = await store_context(self.storage, m["id"], source, self.context_max_bytes)
        return await self.replace_context(actor, name, stored, _UNSET, {"files": stored.files})

    async def replace_context(
        self, actor: Subject, name: str, stored: StoredContext, based_on: Any, detail: dict[str, Any]
    ) -> DefinitionView:
        """Make ``stored`` the definition's files. Unless ``based_on`` is ``_UNSET`` (a whole
        upload), it is the digest the change started from: a change made meanwhile is a
        ``Conflict``, and the same files again change nothing."""
        async with self.db.write() as conn:
            m, role = await load(conn, actor, name, NEEDED[EDIT])
            if based_on is not _UNSET:
                if m["context_digest"] != based_on:
                    raise Conflict("the context files changed meanwhile; try again")
                if stored.digest == based_on:
                    return await definition_view(conn, m["id"], Rights(conn, role))
            recipe = replace(_recipe(dict(m), None), context_digest=stored.digest)
            content_hash = recipe.content_hash()
            await conn.execute(
                update(build_definitions)
                .where(build_definitions.c.id == m["id"])
                .values(
                    context_digest=stored.digest,
                    context_size=stored.size,
                    content_hash=content_hash,
                    revision=m["revision"] + 1,
                    updated_at=time.time(),
                    updated_by=actor.name,
                )
            )
            await record_event(
                conn,
                m["id"],
                actor.name,
                "modified",
                fields=["files"],
                size=stored.size,
                context_digest=stored.digest,
                content_hash=content_hash,
                **detail,
            )
            view = await definition_view(conn, m["id"], Rights(conn, role))
        await self._drop_unused_contexts(m["id"], keep=stored.digest)
        return view

    async def _drop_unused_contexts(self, definition_id: int, keep: str) -> None:
        """Remove older uploads that no queued or running build still needs."""
        async with self.db.read() as conn:
            specs = (
                await conn.execute(
                    select(build_runs.c.spec).where(
                        build_runs.c.definition_id == definition_id,
                        build_runs.c.status.in_(["queued", "running"]),
                    )
                )
            ).all()
        needed = {keep} | {json.loads(s[0])["recipe"].get("context_digest") for s in specs}
        paths = {context_path(definition_id, d) for d in needed if d}
        try:
            for path in await self.storage.list(f"builds/contexts/{definition_id}"):
                if path not in paths and path.endswith(".tar"):
                    await self.storage.delete(path)
        except PathNotFound:
            return

    async def get(self, actor: Subject, name: str) -> DefinitionView:
        async with self.db.read() as conn:
            m, role = await load(conn, actor, name, "reader")
            return await definition_view(conn, m["id"], Rights(conn, role))

    async def in_workspace(self, actor: Subject, workspace: str) -> list[DefinitionView]:
        async with self.db.read() as conn:
            require_user(actor)
            ws = await find_workspace(conn, workspace)
            role = await workspace_role(conn, actor, ws.id)
            if role is None:
                raise Forbidden(f"this needs a role in workspace {workspace!r}")
            ids = (
                await conn.execute(
                    select(build_definitions.c.id)
                    .where(build_definitions.c.workspace_id == ws.id)
                    .order_by(build_definitions.c.name)
                )
            ).all()
            rights = Rights(conn, role)
            return [await definition_view(conn, row[0], rights) for row in ids]

    async def history(self, actor: Subject, name: str, limit: int = 200) -> list[BuildEvent]:
        async with self.db.read() as conn:
            m, _ = await load(conn, actor, name, "reader")
            rows = (
                (
                    await conn.execute(
                        select(build_events)
                        .where(build_events.c.definition_id == m["id"])
                        .order_by(build_events.c.id.desc())
                        .limit(limit)
                    )
                )
                .mappings()
                .all()
            )
        return [BuildEvent(r["id"], r["at"], r["actor"], r["kind"], json.loads(r["detail"])) for r in rows]

    async def delete(self, actor: Subject, name: str, client_ip: str | None = None) -> None:
        """Delete a definition, its runs and events (maintainers); audited, and recorded in the
        history of the image it builds."""
        require_deleter(actor)
        async with self.db.write() as conn:
            m, _ = await load(conn, actor, name, NEEDED[DELETE])
            active = (
                await conn.execute(
                    select(build_runs.c.id).where(
                        build_runs.c.definition_id == m["id"], build_runs.c.status.in_(["queued", "running"])
                    )
                )
            ).first()
            if active is not None:
                raise Conflict(f"build {active[0]} of {name!r} is still queued or running; cancel it first")
            run_ids = [
                r[0]
                for r in (
                    await conn.execute(select(build_runs.c.id).where(build_runs.c.definition_id == m["id"]))
                ).all()
            ]
            await conn.execute(
                delete(build_definitions).where(build_definitions.c.id == m["id"])
            )  # runs, events too
            await search_index.forget_dockerfile(conn, name)
            await audit.record(
                conn,
                actor,
                "build_definition.delete",
                workspace_id=m["workspace_id"],
                target=name,
                client_ip=client_ip,
                detail={"runs": len(run_ids)},
            )
            image = (await conn.execute(select(images.c.id).where(images.c.name == name))).first()
            if image is not None:
                await record_image_event(
                    conn, image[0], actor.name, "build_definition.deleted", runs=len(run_ids)
                )
        await remove_build_files(self.storage, [m["id"]], run_ids)


async def definition_holdings(conn: Connection, workspace_id: int) -> list[str]:
    """The workspace's build definitions, one line each (what a workspace deletion lists)."""
    rows = await conn.execute(
        select(build_definitions.c.name)
        .where(build_definitions.c.workspace_id == workspace_id)
        .order_by(build_definitions.c.name)
    )
    return [f"build definition {row[0]}" for row in rows]
