"""Where imported blobs go: a caller-provided store, keyed by archive path while importing.

The import does not know which member of a tar is a layer until it has read the metadata,
which docker save writes after the layers. So every blob-like member is written to the
sink as it streams past, under its archive path; ``finish`` returns the sha256 and size of
exactly the bytes written, which the import then checks against what the manifests declare.

Contract for implementations (the registry's sink writes into an upload area, a test sink
into memory):

- ``begin`` may be called again only after the previous writer finished or aborted.
- a finished blob is staged, not published: the caller promotes the blobs the import
  result references and discards the rest (``ArchiveImport.unreferenced``), and on any
  error discards everything staged for this import. Deduplication (the digest is already
  stored) is the sink's business at ``finish``.
- ``abort`` drops a partly written blob; it must not raise if called after a failure.
"""

from __future__ import annotations

from typing import Protocol

from dockyard.oci.digest import Digest


class BlobWriter(Protocol):
    async def write(self, data: bytes) -> None: ...

    async def finish(self) -> tuple[Digest, int]:
        """Seal the blob; returns the sha256 digest and size of the bytes written."""
        ...

    async def abort(self) -> None: ...


class BlobSink(Protocol):
    async def begin(self, name: str) -> BlobWriter:
        """Start the blob found at archive path ``name``."""
        ...

    async def flush(self) -> None:
        """Wait until every finished blob is stored (a sink may store them in the background
        while the next streams in); raise what failed."""
        ...
