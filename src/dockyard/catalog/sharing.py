"""An image's visibility, which is its repository's: one setting, public or private, for the
image and all its versions, internal or external (``repositories.visibility``; who it lets
see is :mod:`.access`). Changed on the repository (``tenancy.Repositories.set_visibility``)
or on the image (the same call), recorded here in the image's history, audited there.

The former per-version ``access`` (public, workspace, private) is gone: migration 0016 folded
it into the repository's visibility, the most restrictive value winning, and kept each old
value as a history event. Requests that still send one are accepted only where it is the
image's (:func:`check_visibility_of`)."""

from __future__ import annotations

import time

from sqlalchemy import select, update

from dockyard.auth.policy import Subject
from dockyard.auth.tables import repositories
from dockyard.catalog.history import actor_name, changes, record_event
from dockyard.catalog.tables import image_versions, images
from dockyard.catalog.views import PRIVATE, PUBLIC
from dockyard.db.engine import Connection
from dockyard.errors import Conflict, PrivateUpstream

# What a request's former per-version ``access`` means for the image's one visibility (the
# mapping migration 0016 used): only ``public`` is public.
ACCESS = {"public": PUBLIC, "workspace": PRIVATE, "private": PRIVATE}


def per_image(name: str, visibility: str, wanted: str) -> Conflict:
    """The refusal of a per-version visibility that is not the image's."""
    return Conflict(
        f"visibility is a setting of the whole image and its repository, not of one version: "
        f"{name!r} and all its versions are {visibility}. To make them {wanted}, a maintainer "
        f"changes the image's visibility (PUT /api/v1/images/{name}/visibility, "
        f"'dockyard image visibility {name} {wanted}', or the image page)"
    )


async def record_visibility(conn: Connection, actor: Subject, name: str, before: str, after: str) -> None:
    """A repository's visibility changed: the image of its name (if any) records it in its
    history, before and after (``tenancy.Repositories.on_visibility`` calls this)."""
    image_id = (await conn.execute(select(images.c.id).where(images.c.name == name))).scalar()
    if image_id is not None and after == PUBLIC:
        private = (
            await conn.execute(
                select(image_versions.c.external_reference)
                .where(image_versions.c.image_id == image_id, image_versions.c.private_upstream.is_(True))
                .limit(1)
            )
        ).scalar()
        if private is not None:
            raise PrivateUpstream(private_upstream_message(name, str(private).split("/", 1)[0]))
    if image_id is not None:
        await conn.execute(
            update(images)
            .where(images.c.id == image_id)
            .values(updated_at=time.time(), updated_by=actor_name(actor))
        )
        await record_event(
            conn, image_id, actor_name(actor), "modified", **changes({"visibility": (before, after)})
        )


def private_upstream_message(name: str, host: str) -> str:
    return (
        f"{name!r} cannot be public: its upstream {host} refuses anonymous pulls, and the image is "
        f"reached with the workspace's registry profile for {host}, whose credentials must not serve "
        "everyone. Keep the image private and grant access inside Dockyard, or use an image that "
        "the upstream serves anonymously"
    )


async def check_visibility_of(conn: Connection, name: str, wanted: str | None) -> None:
    """Refuse a per-version visibility (or former ``access``) other than the image's."""
    if wanted is not None:
        current = await image_visibility(conn, name)
        if wanted != current:
            raise per_image(name, current, wanted)


async def image_visibility(conn: Connection, name: str) -> str:
    """The visibility of the image ``name``: its repository's (private without one)."""
    found = (
        await conn.execute(select(repositories.c.visibility).where(repositories.c.name == name))
    ).scalar()
    return str(found or PRIVATE)
