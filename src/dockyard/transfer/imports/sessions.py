"""Archive upload sessions as the database holds them, and as the API shows them."""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from dockyard.auth.tables import workspaces
from dockyard.cluster.siblings import sibling_socket
from dockyard.db.engine import Connection
from dockyard.jobs.queue import active_with_key
from dockyard.transfer.imports.holders import parse_holder
from dockyard.transfer.imports.live import LEASE_STALE
from dockyard.transfer.imports.results import ArchiveImageInfo, images_of
from dockyard.transfer.tables import archive_uploads

RECEIVING, IMPORTING, DONE, FAILED = "receiving", "importing", "done", "failed"
STALE = 30.0  # an import whose heartbeat is older than this has died with its process
FINISH_JOB = "archive.finish"  # the durable job that finishes an import (see .finishing)


def finish_key(archive_id: str) -> str:
    """The dedupe key of the session's finishing job: one is active at a time."""
    return f"{FINISH_JOB}:{archive_id}"


class TooLarge(Exception):
    """The archive is over the size limit, or the workspace over its quota."""


class OffsetMismatch(Exception):
    """A chunk does not start where the upload is; ``offset`` is where it is."""

    def __init__(self, offset: int, message: str) -> None:
        super().__init__(message)
        self.offset = offset


@dataclass(frozen=True)
class ArchiveStatus:
    id: str
    workspace: str
    state: str  # receiving, importing, done, failed
    offset: int  # bytes received
    size: int | None  # the archive's size, when declared or complete
    processed: int  # bytes of the archive imported so far
    reason: str | None  # why it failed
    layer_compression: str
    created_by: str
    created_at: float
    updated_at: float
    format: str | None = None  # docker-save, docker-save-blobs, oci-layout (once imported)
    compression: str | None = None  # of the archive itself (once imported)
    images: list[ArchiveImageInfo] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    bytes_written: int | None = None  # blob bytes staged by the import
    bytes_deduplicated: int | None = None  # blob bytes already stored, not written again


@dataclass(frozen=True)
class Session:
    id: str
    workspace_id: int
    workspace: str
    user_id: int
    created_by: str
    state: str
    size: int | None
    processed: int
    layer_compression: str
    reason: str | None
    result: dict[str, Any] | None
    created_at: float
    updated_at: float
    resume_offset: int = 0
    generation: int = 0
    holder: str | None = None
    finishing: bool = False  # a finishing job is on the queue: it hands the import on


def stale(s: Session) -> bool:
    """An import whose process died with it (its heartbeat stopped), with no finishing job
    left to hand it on."""
    return s.state == IMPORTING and not s.finishing and s.updated_at < time.time() - STALE


async def load_session(conn: Connection, archive_id: str) -> Session | None:
    """The session's row, or None (also for an id that is not a UUID)."""
    try:
        uuid.UUID(archive_id)
    except ValueError:
        return None
    stmt = (
        select(
            archive_uploads,
            workspaces.c.name.label("workspace_name"),
            active_with_key(finish_key(archive_id)).label("finishing"),
        )
        .join(workspaces, workspaces.c.id == archive_uploads.c.workspace_id)
        .where(archive_uploads.c.id == archive_id)
    )
    row = (await conn.execute(stmt)).first()
    if row is None:
        return None
    m = row._mapping
    return Session(
        id=m["id"],
        workspace_id=m["workspace_id"],
        workspace=m["workspace_name"],
        user_id=m["user_id"],
        created_by=m["created_by"],
        state=m["state"],
        size=m["size"],
        processed=m["processed"],
        layer_compression=m["layer_compression"],
        reason=m["reason"],
        result=json.loads(m["result"]) if m["result"] else None,
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        resume_offset=m["resume_offset"],
        generation=m["generation"],
        holder=m["holder"],
        finishing=bool(m["finishing"]),
    )


def interrupted(offset: int) -> str:
    """Why an importing session is receiving again."""
    return (
        "the import was interrupted (the server stopped); send the archive from "
        f"offset {offset} and complete the upload again"
    )


def status_of(s: Session) -> ArchiveStatus:
    """What the API shows of a session: its offset falls back to the checkpoint when the
    import that held it is gone."""
    state, reason, processed = s.state, s.reason, s.processed
    if state == RECEIVING:
        # The import that took the bytes past the checkpoint is gone with its process.
        if s.processed != s.resume_offset and s.updated_at < time.time() - LEASE_STALE:
            processed = s.resume_offset
        offset = processed
    elif stale(s):
        state, processed = RECEIVING, s.resume_offset
        reason = interrupted(processed)
        offset = processed
    elif state == IMPORTING:
        offset = s.processed
    else:
        offset = s.size or 0
    result = s.result or {}
    return ArchiveStatus(
        id=s.id,
        workspace=s.workspace,
        state=state,
        offset=offset,
        size=s.size,
        processed=processed,
        reason=reason,
        layer_compression=s.layer_compression,
        created_by=s.created_by,
        created_at=s.created_at,
        updated_at=s.updated_at,
        format=result.get("format"),
        compression=result.get("compression"),
        images=[image.info(i) for i, image in enumerate(images_of(s.result))],
        warnings=list(result.get("warnings", [])),
        bytes_written=result.get("written"),
        bytes_deduplicated=result.get("deduplicated"),
    )


def sibling_holding(s: Session, me: str, run_dir: Path) -> Path | None:
    """The socket of the live sibling process (this host, not ``me``) whose import holds the
    receiving session ``s``, if there is one."""
    if s.state != RECEIVING or not s.holder or s.holder == me or s.updated_at < time.time() - LEASE_STALE:
        return None
    holder = parse_holder(s.holder)
    if holder is None:
        return None
    host, pid, _instance = holder
    if host != socket.gethostname() or pid == os.getpid():  # the same pid: a restarted server
        return None
    return sibling_socket(run_dir, pid)
