"""What an image's history says of a change: the fields that changed, each with its value before
and after (``modified`` events), as the API, the CLI and the web UI show them."""

from __future__ import annotations

import json
import time
from typing import Any

from dockyard.auth.policy import Subject
from dockyard.catalog import search_index
from dockyard.catalog.tables import image_events
from dockyard.db.engine import Connection

LIST_SETTINGS = ("regions", "cluster_compatibility")  # stored as JSON text, shown as lists


def changes(diff: dict[str, tuple[Any, Any]]) -> dict[str, Any]:
    """A ``modified`` event's detail: the fields that changed, and each one's value before and after."""
    return {
        "fields": sorted(diff),
        "changes": {
            field: {"before": before, "after": after} for field, (before, after) in sorted(diff.items())
        },
    }


def setting_value(field: str, stored: Any) -> Any:
    """A version setting as the API shows it."""
    return json.loads(stored) if field in LIST_SETTINGS and stored is not None else stored


def actor_name(subject: Subject) -> str:
    return subject.name or "anonymous"


async def record_event(
    conn: Connection, image_id: int, actor: str, kind: str, version: str | None = None, **detail: Any
) -> None:
    await conn.execute(
        image_events.insert().values(
            image_id=image_id,
            version=version,
            at=time.time(),
            actor=actor,
            kind=kind,
            detail=json.dumps(detail, sort_keys=True, default=str),
        )
    )
    await search_index.refresh(conn, image_id)  # every catalog change is an event
