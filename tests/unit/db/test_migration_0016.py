"""Migration 0016 (one visibility per image and repository) on real SQLite and PostgreSQL: a
catalog written by the 0015 schema, with every kind of disagreement between a repository's
visibility and its external versions' access, is upgraded without widening what anyone outside
a workspace sees, keeps every old value in the image history, and downgrades back to it."""

from __future__ import annotations

import json
from typing import Any

from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from dockyard.db.engine import Database
from dockyard.db.migrate import alembic_config

BEFORE = "0015"  # the revision this migration follows
THIS = "0016"

# image: (its repository's visibility or None for no repository row, [(version, source, access)])
CATALOG: dict[str, tuple[str | None, list[tuple[str, str, str]]]] = {
    # a public repository with a private external version: private, the most restrictive wins
    "lab/opened": (
        "public",
        [("1", "internal", "workspace"), ("2", "external", "public"), ("3", "external", "private")],
    ),
    # a private repository with a public external version: stays private
    "lab/closed": ("private", [("1", "external", "public")]),
    # external only, versions that disagree: a private repository is made
    "lab/mixed": (None, [("1", "external", "public"), ("2", "external", "workspace")]),
    # external only, all public: a public repository is made
    "lab/open": (None, [("1", "external", "public"), ("2", "external", "public")]),
    # internal only, public: unchanged (an internal version's access never decided anything)
    "lab/pushed": ("public", [("1", "internal", "private")]),
    # no versions, no repository: private
    "lab/empty": (None, []),
}
EXPECTED = {
    "lab/opened": "private",
    "lab/closed": "private",
    "lab/mixed": "private",
    "lab/open": "public",
    "lab/pushed": "public",
    "lab/empty": "private",
}


def _migrate(connection: Connection, revision: str, down: bool = False) -> None:
    (command.downgrade if down else command.upgrade)(alembic_config(connection), revision)


def _fill(connection: Connection) -> None:
    connection.execute(
        text("INSERT INTO workspaces (id, name, kind, created_at) VALUES (1, 'lab', 'org', 1)")
    )
    for image_id, (name, (repository, versions)) in enumerate(CATALOG.items(), start=1):
        connection.execute(
            text(
                "INSERT INTO images (id, workspace_id, name, created_at, updated_at) "
                "VALUES (:id, 1, :name, 5, 5)"
            ),
            {"id": image_id, "name": name},
        )
        if repository is not None:
            connection.execute(
                text(
                    "INSERT INTO repositories (name, created_at, workspace_id, visibility) "
                    "VALUES (:name, 3, 1, :visibility)"
                ),
                {"name": name, "visibility": repository},
            )
        for version, source, access in versions:
            connection.execute(
                text(
                    "INSERT INTO image_versions (image_id, version, source, access, status, created_at, "
                    "updated_at) VALUES (:image, :version, :source, :access, 'unverified', 5, 5)"
                ),
                {"image": image_id, "version": version, "source": source, "access": access},
            )


def _rows(connection: Connection, sql: str) -> list[Any]:
    return list(connection.execute(text(sql)).all())


def _columns(connection: Connection) -> set[str]:
    return {column["name"] for column in inspect(connection).get_columns("image_versions")}


async def test_the_most_restrictive_wins_and_every_old_value_is_kept(empty_database_url: str) -> None:
    db = Database(empty_database_url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(_migrate, BEFORE)
            await conn.run_sync(_fill)
        async with db.engine.begin() as conn:
            await conn.run_sync(_migrate, THIS)
        async with db.engine.connect() as conn:
            assert "access" not in await conn.run_sync(_columns)
            repositories = await conn.run_sync(
                _rows, "SELECT name, visibility, workspace_id, created_at FROM repositories ORDER BY name"
            )
            events = await conn.run_sync(
                _rows,
                "SELECT images.name, image_events.version, image_events.actor, image_events.kind, "
                "image_events.detail FROM image_events JOIN images ON images.id = image_events.image_id "
                "ORDER BY images.name, image_events.version",
            )
            audited = await conn.run_sync(
                _rows,
                "SELECT actor_kind, actor_name, action, workspace_id, target, detail "
                "FROM audit_log ORDER BY target",
            )
        # Every image has its repository, with the visibility that widens nothing; a repository
        # made here is the image's age and in its workspace.
        assert {name: visibility for name, visibility, _, _ in repositories} == EXPECTED
        assert {(name, ws, at) for name, _, ws, at in repositories if CATALOG[name][0] is None} == {
            ("lab/mixed", 1, 5.0),
            ("lab/open", 1, 5.0),
            ("lab/empty", 1, 5.0),
        }
        assert {actor for _, _, actor, _, _ in events} == {"migration 0016"}
        assert {kind for _, _, _, kind, _ in events} == {"modified"}
        changes = {
            (name, version): (
                json.loads(detail)["changes"],
                json.loads(detail).get("widened_in_workspace", False),
            )
            for name, version, _, _, detail in events
        }
        assert changes == {
            # the image's visibility, where it changed or the repository was made
            ("lab/opened", None): ({"visibility": {"before": "public", "after": "private"}}, False),
            ("lab/mixed", None): ({"visibility": {"before": None, "after": "private"}}, False),
            ("lab/open", None): ({"visibility": {"before": None, "after": "public"}}, False),
            ("lab/empty", None): ({"visibility": {"before": None, "after": "private"}}, False),
            # every external version's old access, before and after
            ("lab/opened", "2"): ({"access": {"before": "public", "after": "private"}}, False),
            ("lab/opened", "3"): ({"access": {"before": "private", "after": "private"}}, True),
            ("lab/closed", "1"): ({"access": {"before": "public", "after": "private"}}, False),
            ("lab/mixed", "1"): ({"access": {"before": "public", "after": "private"}}, False),
            ("lab/mixed", "2"): ({"access": {"before": "workspace", "after": "private"}}, False),
            ("lab/open", "1"): ({"access": {"before": "public", "after": "public"}}, False),
            ("lab/open", "2"): ({"access": {"before": "public", "after": "public"}}, False),
        }
        assert [(kind, actor, action, ws, target) for kind, actor, action, ws, target, _ in audited] == [
            ("system", "migration 0016", "repository.visibility", 1, name)
            for name in ("lab/empty", "lab/mixed", "lab/open", "lab/opened")
        ]
        assert json.loads(audited[3][5])["before"] == "public"

        # Down again: each external version gets its old access back.
        async with db.engine.begin() as conn:
            await conn.run_sync(_migrate, BEFORE, True)
        async with db.engine.connect() as conn:
            restored = await conn.run_sync(
                _rows,
                "SELECT images.name, image_versions.version, image_versions.source, image_versions.access "
                "FROM image_versions JOIN images ON images.id = image_versions.image_id",
            )
        assert {
            (name, version): access for name, version, source, access in restored if source == "external"
        } == {
            (name, version): access
            for name, (_, versions) in CATALOG.items()
            for version, source, access in versions
            if source == "external"
        }
    finally:
        await db.dispose()
