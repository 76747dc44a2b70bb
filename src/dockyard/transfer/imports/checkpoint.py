"""A checkpoint of a streaming archive import: where a new importer can take over.

Taken between two tar entries of an uncompressed archive (see
:class:`dockyard.archive.ingest.ImportState`), together with what the sink has
staged by then; stored as JSON in the session's folder (``checkpoint``), written atomically.
Every blob it names is already durable in ``blobs/<hex>`` (staged blobs are fsynced before
they are renamed there), so an importer started from it only needs the archive's bytes from
``offset`` on. Kept metadata (manifests, configs: small files) travels inside it, base64.

Whatever else is in the folder when a new importer starts from it was left by an import that
is gone (scratch files in ``staging/``, blobs staged after the checkpoint): nothing will use
it, and ``remove_leftovers`` deletes it.
"""

from __future__ import annotations

import base64
import contextlib
import json
from dataclasses import dataclass
from typing import Any

from dockyard.archive.decompress import Compression
from dockyard.archive.ingest import ImportState, StoredBlob
from dockyard.archive.safe_tar import ReaderState
from dockyard.oci.digest import Digest
from dockyard.storage.base import PathNotFound, StorageDriver
from dockyard.transfer.imports.sink import RegistrySink, SinkBlob, session_folder, staged_path

VERSION = 1


@dataclass(frozen=True)
class SinkState:
    by_name: dict[str, SinkBlob]
    written: int
    deduplicated: int


@dataclass(frozen=True)
class Checkpoint:
    state: ImportState
    sink: SinkState

    @property
    def offset(self) -> int:
        return self.state.offset


def checkpoint_path(archive_id: str) -> str:
    return f"{session_folder(archive_id)}/checkpoint"


async def load_checkpoint(storage: StorageDriver, archive_id: str) -> Checkpoint | None:
    """The session's stored checkpoint, or None (none stored, or from another version)."""
    try:
        data = await storage.get_content(checkpoint_path(archive_id))
    except PathNotFound:
        return None
    return decode(data)


async def remove_leftovers(
    storage: StorageDriver, archive_id: str, checkpoint: Checkpoint | None, dry_run: bool = False
) -> int:
    """Delete what imports that are gone left in the session's folder, keeping what
    ``checkpoint`` names (everything staged goes when there is none); how many files. The
    caller holds the session, and no import of it runs."""
    folder = session_folder(archive_id)
    keep = set()
    if checkpoint is not None:
        keep = {staged_path(folder, blob.digest) for blob in checkpoint.sink.by_name.values() if blob.staged}
    removed = 0
    for part in ("staging", "blobs"):
        try:
            paths = await storage.list(f"{folder}/{part}")
        except PathNotFound:
            continue
        for path in paths:
            if path in keep:
                continue
            if not dry_run:
                with contextlib.suppress(PathNotFound):
                    await storage.delete(path)
            removed += 1
    return removed


def sink_state(sink: RegistrySink) -> SinkState:
    return SinkState(dict(sink.by_name), sink.written, sink.deduplicated)


def restore_sink(sink: RegistrySink, state: SinkState) -> None:
    sink.by_name = dict(state.by_name)
    sink.by_digest = {blob.digest: blob for blob in state.by_name.values()}
    sink.written = state.written
    sink.deduplicated = state.deduplicated


def encode(checkpoint: Checkpoint) -> bytes:
    state = checkpoint.state
    reader = state.reader
    doc = {
        "version": VERSION,
        "reader": {
            "offset": reader.offset,
            "entries": reader.entries,
            "kinds": reader.kinds,
            "dirs": reader.dirs,
            "symlinks": reader.symlinks,
            "links": reader.links,
        },
        "metadata": {name: base64.b64encode(data).decode() for name, data in state.metadata.items()},
        "stored": [_stored_json(blob) for blob in state.stored.values()],
        "buffered": state.buffered,
        "sink": {
            "blobs": {name: [str(b.digest), b.size, b.staged] for name, b in checkpoint.sink.by_name.items()},
            "written": checkpoint.sink.written,
            "deduplicated": checkpoint.sink.deduplicated,
        },
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def decode(data: bytes) -> Checkpoint | None:
    """The checkpoint, or None when it is from another version of Dockyard (start over)."""
    doc = json.loads(data)
    if doc.get("version") != VERSION:
        return None
    r = doc["reader"]
    reader = ReaderState(r["offset"], r["entries"], r["kinds"], r["dirs"], r["symlinks"], r["links"])
    stored = [_stored_from_json(item) for item in doc["stored"]]
    state = ImportState(
        reader=reader,
        metadata={name: base64.b64decode(text) for name, text in doc["metadata"].items()},
        stored={blob.path: blob for blob in stored},
        buffered=doc["buffered"],
    )
    s = doc["sink"]
    by_name = {
        name: SinkBlob(Digest(digest), size, staged) for name, (digest, size, staged) in s["blobs"].items()
    }
    return Checkpoint(state, SinkState(by_name, s["written"], s["deduplicated"]))


def _stored_json(blob: StoredBlob) -> dict[str, Any]:
    return {
        "path": blob.path,
        "archive_digest": str(blob.archive_digest),
        "archive_size": blob.archive_size,
        "digest": str(blob.digest),
        "size": blob.size,
        "compression": blob.compression.value,
        "diff_id": str(blob.diff_id) if blob.diff_id is not None else None,
    }


def _stored_from_json(doc: dict[str, Any]) -> StoredBlob:
    return StoredBlob(
        path=doc["path"],
        archive_digest=Digest(doc["archive_digest"]),
        archive_size=doc["archive_size"],
        digest=Digest(doc["digest"]),
        size=doc["size"],
        compression=Compression(doc["compression"]),
        diff_id=Digest(doc["diff_id"]) if doc["diff_id"] is not None else None,
    )
