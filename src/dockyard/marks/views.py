"""The marks of what the caller already sees: a page of images or versions gets them in two
queries (:func:`annotate_images`, :func:`annotate_versions`), never one per version."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import TypeVar

from sqlalchemy import and_, select

from dockyard.auth.policy import Subject
from dockyard.catalog.tables import image_versions, images
from dockyard.catalog.views import ImageView, Marks, VersionView
from dockyard.catalog.visibility import resolve
from dockyard.db.engine import Connection, Database
from dockyard.marks.conditions import USER, VERSION_MARKS, build_run_of, version_has
from dockyard.marks.tables import signature_checks, workspace_marks

V = TypeVar("V", bound=VersionView)
_SIGNATURE_ORDER = ("verified", "invalid", "unverified", "none")


async def _version_marks(
    conn: Connection, subject: Subject, names: Sequence[str]
) -> tuple[dict[str, str], dict[tuple[str, str], Marks]]:
    """Each image's workspace mark, and each (image, version)'s marks."""
    if not names:
        return {}, {}
    viewer = await resolve(conn, subject, time.time())
    wanted = sorted(set(names))
    owners = await conn.execute(
        select(images.c.name, workspace_marks.c.mark)
        .outerjoin(workspace_marks, workspace_marks.c.workspace_id == images.c.workspace_id)
        .where(images.c.name.in_(wanted))
    )
    workspace = {name: mark or USER for name, mark in owners}
    flags = [version_has(mark, viewer).label(mark) for mark in VERSION_MARKS if mark != "signed"]
    rows = await conn.execute(
        select(
            images.c.name,
            image_versions.c.version,
            build_run_of().label("build_run"),
            signature_checks.c.state,
            signature_checks.c.key_id,
            *flags,
        )
        .select_from(
            image_versions.join(images, images.c.id == image_versions.c.image_id).outerjoin(
                signature_checks,
                and_(
                    signature_checks.c.version_id == image_versions.c.id,
                    signature_checks.c.digest == image_versions.c.digest,
                ),
            )
        )
        .where(images.c.name.in_(wanted))
    )
    found = {}
    for row in rows:
        m = row._mapping
        state = m["state"] or "none"
        shown = [workspace[m["name"]]]
        shown += [mark for mark in VERSION_MARKS if (state == "verified" if mark == "signed" else m[mark])]
        found[(m["name"], m["version"])] = Marks(
            shown, state, m["key_id"] if state == "verified" else None, m["build_run"]
        )
    return workspace, found


def _image_marks(workspace_mark: str, versions: list[Marks]) -> Marks:
    held = {mark for marks in versions for mark in marks.marks}
    shown = [workspace_mark, *(mark for mark in VERSION_MARKS if mark in held)]
    states = {marks.signature for marks in versions}
    signature = next((s for s in _SIGNATURE_ORDER if s in states), "none")
    return Marks(shown, signature)


async def annotate_versions(conn: Connection, subject: Subject, views: list[V]) -> list[V]:
    """``views`` (versions the subject sees) with their marks."""
    _, found = await _version_marks(conn, subject, [v.image for v in views])
    return [dataclasses.replace(v, marks=found.get((v.image, v.version))) for v in views]


async def annotate_images(conn: Connection, subject: Subject, views: list[ImageView]) -> list[ImageView]:
    """``views`` (images the subject sees) with their marks and their versions'."""
    workspace, found = await _version_marks(conn, subject, [v.name for v in views])
    by_image: dict[str, list[Marks]] = {}
    for (name, _), marks in found.items():
        by_image.setdefault(name, []).append(marks)
    annotated = []
    for image in views:
        versions = [dataclasses.replace(v, marks=found.get((v.image, v.version))) for v in image.versions]
        # The image's marks: its workspace's and those of any of its versions, listed or not.
        marks = _image_marks(workspace.get(image.name, USER), by_image.get(image.name, []))
        annotated.append(dataclasses.replace(image, versions=versions, marks=marks))
    return annotated


async def image_marks(conn: Connection, subject: Subject, names: Sequence[str]) -> dict[str, Marks]:
    """The marks of the images named (which the subject sees), as :func:`annotate_images` gives
    them: for a page of search results, in the same two queries."""
    workspace, found = await _version_marks(conn, subject, names)
    by_image: dict[str, list[Marks]] = {}
    for (name, _), marks in found.items():
        by_image.setdefault(name, []).append(marks)
    return {name: _image_marks(mark, by_image.get(name, [])) for name, mark in workspace.items()}


class MarkViews:
    """The marks added to the catalog's answers (the API's image and version views)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def images(self, subject: Subject, views: list[ImageView]) -> list[ImageView]:
        async with self.db.read() as conn:
            return await annotate_images(conn, subject, views)

    async def of_images(self, subject: Subject, names: Sequence[str]) -> dict[str, Marks]:
        async with self.db.read() as conn:
            return await image_marks(conn, subject, names)

    async def versions(self, subject: Subject, views: list[V]) -> list[V]:
        async with self.db.read() as conn:
            return await annotate_versions(conn, subject, views)
