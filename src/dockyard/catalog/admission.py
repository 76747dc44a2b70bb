"""What the catalog refuses at push time (the registry's push admission, wired in
:mod:`dockyard.app`):

- a tag push onto an *external* version of the same name: the push would silently turn a
  reference to another registry into bytes stored here (except the push that completes the
  version's import by URL, :mod:`.imports`, the one path that converts it);
- in a workspace whose policy requires linux/amd64, a tagged image without that platform
  (artifacts such as signatures and SBOMs are not images, and untagged pushes are not
  versions: both are admitted);
- a push that would move an immutable tag (:mod:`.immutability`) to another manifest.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from dockyard.auth.tables import workspaces
from dockyard.catalog.immutability import immutable_refusal, load_rules, tag_target
from dockyard.catalog.imports import allows_import
from dockyard.catalog.inspect import AMD64_HELP, ContentSource, has_amd64, inspect_manifest
from dockyard.catalog.tables import catalog_policies, image_versions, images
from dockyard.catalog.views import EXTERNAL
from dockyard.db.engine import Connection, Database
from dockyard.registry.admission import ProposedPush

log = logging.getLogger("dockyard.catalog")


def external_refusal(repository: str, tag: str, reference: str) -> str:
    return (
        f"{repository}:{tag} is an external version in the catalog, a reference to {reference}; "
        f"a push may not replace it. Push another tag, or remove the external version first "
        f"(DELETE /api/v1/images/{repository}/versions/{tag}, as a maintainer) and push again"
    )


def amd64_refusal(workspace: str) -> str:
    return f"the workspace {workspace!r} requires linux/amd64: {AMD64_HELP}"


class PushPolicy:
    """The catalog's :class:`dockyard.registry.admission.PushAdmission`."""

    def __init__(self, db: Database, source: ContentSource) -> None:
        self.db = db
        self.source = source

    async def __call__(self, push: ProposedPush) -> str | None:
        if push.tag is None:
            return None
        workspace = push.repository.split("/", 1)[0]
        async with self.db.read() as conn:
            external = (
                await conn.execute(
                    select(image_versions.c.external_reference)
                    .join(images, images.c.id == image_versions.c.image_id)
                    .where(
                        images.c.name == push.repository,
                        image_versions.c.version == push.tag,
                        image_versions.c.source == EXTERNAL,
                    )
                )
            ).first()
            required = (
                await conn.execute(
                    select(catalog_policies.c.require_amd64)
                    .join(workspaces, workspaces.c.id == catalog_policies.c.workspace_id)
                    .where(workspaces.c.name == workspace)
                )
            ).first()
            moved = await self._moves_immutable(conn, push, workspace)
            importing = external is not None and await allows_import(
                conn, push.repository, push.tag, push.digest
            )
        if external is not None and not importing:
            return external_refusal(push.repository, push.tag, str(external[0]))
        if moved is not None:
            return moved
        if required is None or not required[0]:
            return None
        try:
            facts = await inspect_manifest(self.source, push.repository, push.digest, push.manifest)
        except Exception as exc:  # a blob or child not pushed yet: the registry refuses it itself
            log.info("push of %s:%s not checked for linux/amd64: %s", push.repository, push.tag, exc)
            return None
        if facts.is_image and not has_amd64(facts.platforms):
            return amd64_refusal(workspace)
        return None

    async def _moves_immutable(self, conn: Connection, push: ProposedPush, workspace: str) -> str | None:
        """The refusal when the push would move an immutable tag, else None."""
        assert push.tag is not None
        refusal = await _immutable(conn, push.repository, push.tag)
        if refusal is None:
            return None
        current = await tag_target(conn, push.repository, push.tag)
        if current is None or current == push.digest:
            return None
        return refusal

    async def keep_immutable(self, repository: str, tag: str) -> str | None:
        """The registry's :class:`dockyard.registry.admission.TagGuard`: the refusal for
        ``repository:tag`` when it is immutable, which the registry answers should the tag
        name another manifest by the time the push writes it (two first pushes racing)."""
        async with self.db.read() as conn:
            return await _immutable(conn, repository, tag)


async def _immutable(conn: Connection, repository: str, tag: str) -> str | None:
    """The refusal a push moving ``repository:tag`` gets when a rule makes it immutable, else None."""
    workspace = repository.split("/", 1)[0]
    ws = (await conn.execute(select(workspaces.c.id).where(workspaces.c.name == workspace))).first()
    if ws is None:
        return None
    pattern = (await load_rules(conn, ws[0])).rule_for(tag)
    return None if pattern is None else immutable_refusal(repository, tag, pattern, workspace)
