"""A checkpoint of a streaming archive import: where a new importer can take over.

Taken between two tar entries of an uncompressed archive (see
:class:`dockyard.transfer.archives.ingest.ImportState`), together with what the sink has
staged by then; stored as JSON in the session's folder (``checkpoint``), written atomically.
Every blob it names is already durable in ``blobs/<hex>`` (staged blobs are fsynced before
they are renamed there), so an importer started from it only needs the archive's bytes from
``offset`` on. Kept metadata (manifests, configs: small files) travels inside it, base64.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from dockyard.oci.digest import Digest
from dockyard.transfer.archives.decompress import Compression
from dockyard.transfer.archives.ingest import ImportState, StoredBlob
from dockyard.transfer.archives.safe_tar import ReaderState
from dockyard.transfer.import_sink import RegistrySink, SinkBlob

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
