"""The one statement a personal access or robot token login reads: the token's row by the
SHA-256 of its secret, with its owner's state (user or robot and its workspace).

Plain SQL on the driver (:meth:`~dockyard.db.engine.Database.fetch_one`, one statement in its
own snapshot, so a revocation committed before it is seen): a token login is a hot path (a
token request per pull), and SQLAlchemy's per-statement cost was most of its price.
"""

from __future__ import annotations

from typing import Any

from dockyard.db.engine import Database

COLUMNS = (
    "id",
    "scopes",
    "expires_at",
    "revoked_at",
    "last_used_at",
    "user_id",
    "username",
    "is_admin",
    "disabled_at",
    "robot_id",
    "robot_name",
    "robot_disabled_at",
    "workspace_name",
)
_LOOKUP = """
SELECT t.id, t.scopes, t.expires_at, t.revoked_at, t.last_used_at, u.id, u.username, u.is_admin,
       u.disabled_at, r.id, r.name, r.disabled_at, w.name
FROM access_tokens t
LEFT JOIN users u ON u.id = t.user_id
LEFT JOIN robots r ON r.id = t.robot_id
LEFT JOIN workspaces w ON w.id = r.workspace_id
WHERE t.token_hash = $1
"""


async def find(db: Database, token_hash: str) -> dict[str, Any] | None:
    """The token's row by column name (:data:`COLUMNS`), or None for an unknown hash."""
    found = await db.fetch_one(_LOOKUP, token_hash)
    return None if found is None else dict(zip(COLUMNS, found, strict=True))
