"""Import an uploaded archive in one pass: stream the blobs to a sink, then check them.

Tar members arrive in any order (docker save writes the layers before manifest.json), and
the bytes stream past once, so the import works in two phases:

1. Streaming. Each regular file is either kept in memory as metadata or written to the
   sink under its archive path:
   - kept: the well-known files (manifest.json, index.json, oci-layout, repositories;
     refused above ``max_metadata_file``), any JSON-looking file up to ``max_metadata_file``
     (configs, manifests, indexes) and any file up to ``SMALL_FILE`` bytes, while the total
     stays within ``max_metadata_total`` (past it, files stream to the sink instead);
   - streamed, sniffed from its first 512 bytes: an uncompressed tar (a docker-save layer)
     is compressed on the way (``layer_compression``, gzip by default) with
     ``LayerCompressor`` hashing its input (the diff_id); gzip/zstd blobs pass through as
     they are (their diff_id is computed on the side only with
     ``verify_compressed_diff_ids``, which costs a decompression); anything else passes
     through. The sink hashes what it stores.
2. Resolution, once the archive has ended: links are resolved, ``describe_archive`` reads
   the metadata, kept files that images use as blobs (configs, tiny layers) are written to
   the sink, and every expectation (declared digest, size, diff_id, content-addressed name)
   is checked against what streamed past. A mismatch raises ``DigestMismatch`` naming the
   layer and image; the caller then discards what the sink staged.

Hashing and compression run inline (zlib, zstd and hashlib release the GIL for large
buffers but this coroutine does not yield while they run): run imports in a worker, not
on the event loop that serves requests.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field

from dockyard.archive.compress import LayerCompressor, UncompressedHasher
from dockyard.archive.decompress import SNIFF_BYTES, Compression, sniff
from dockyard.archive.errors import ArchiveError, DigestMismatch, InvalidArchive, UnsafeArchive
from dockyard.archive.formats import (
    METADATA_NAMES,
    ArchiveDescription,
    BlobRef,
    describe_archive,
)
from dockyard.archive.safe_tar import (
    BLOCK,
    EntryKind,
    ReaderState,
    SafeTarReader,
    TarEntry,
    TarLimits,
    looks_like_tar,
)
from dockyard.archive.sink import BlobSink, BlobWriter
from dockyard.oci.digest import Digest

SMALL_FILE = 4096


@dataclass(frozen=True)
class ImportOptions:
    limits: TarLimits = field(default_factory=TarLimits)
    layer_compression: Compression = Compression.GZIP  # NONE keeps uncompressed layers as they are
    compression_level: int | None = None
    verify_compressed_diff_ids: bool = False
    max_metadata_file: int = 4 << 20
    max_metadata_total: int = 64 << 20


@dataclass(frozen=True)
class StoredBlob:
    path: str
    archive_digest: Digest  # sha256 of the bytes as they were in the archive
    archive_size: int
    digest: Digest  # sha256 of the bytes the sink holds: the registry blob digest
    size: int
    compression: Compression  # of the stored bytes; NONE for anything not compressed
    diff_id: Digest | None  # sha256 of the uncompressed tar, when known

    @property
    def transcoded(self) -> bool:
        return self.digest != self.archive_digest


@dataclass(frozen=True)
class ArchiveImport:
    description: ArchiveDescription
    blobs: Mapping[str, StoredBlob]  # canonical archive path -> what the sink holds
    metadata: Mapping[str, bytes]  # buffered JSON by canonical path (manifests, configs, ...)
    unreferenced: tuple[str, ...]  # sink names no image uses: the caller discards them
    warnings: tuple[str, ...]
    compression: Compression  # of the archive itself

    def stored(self, ref: BlobRef) -> StoredBlob:
        return self.blobs[ref.path]


@dataclass(frozen=True)
class ImportState:
    """An import between two tar entries of an uncompressed archive: enough to go on from
    ``reader.offset`` with a new source (the sink's own state is the sink's business)."""

    reader: ReaderState
    metadata: Mapping[str, bytes]
    stored: Mapping[str, StoredBlob]
    buffered: int  # metadata bytes kept in memory

    @property
    def offset(self) -> int:
        return self.reader.offset


# Called between entries with the archive offset and a function that takes the state there
# (call it at once, or not at all: the import goes on when the callback returns).
Boundary = Callable[[int, Callable[[], ImportState]], None]


async def import_archive(
    source: AsyncIterable[bytes],
    sink: BlobSink,
    options: ImportOptions | None = None,
    resume: ImportState | None = None,
    on_boundary: Boundary | None = None,
) -> ArchiveImport:
    """Stream ``source`` (a tar, gzip or zstd) into ``sink`` and describe and verify its images.

    ``resume``: ``source`` starts at ``resume.offset``, and the state says what came before.
    ``on_boundary`` is told of every point an uncompressed archive could be resumed from."""
    options = options or ImportOptions()
    importer = _Importer(sink, options)
    reader: SafeTarReader

    def boundary(offset: int) -> None:
        if on_boundary is not None:
            on_boundary(offset, lambda: importer.state(reader))

    reader = SafeTarReader(source, options.limits, resume.reader if resume else None, boundary)
    if resume is not None:
        importer.restore(resume)
    async for entry in reader:
        if entry.kind is EntryKind.FILE:
            await importer.take(entry)
    paths = {name: name for name in reader.files()} | dict(reader.links)
    description = describe_archive(importer.metadata, paths)
    used = description.blob_paths()
    for path in used:
        if path not in importer.stored:
            await importer.store(path, [importer.metadata[path]], _empty())
    await sink.flush()
    warnings = _verify(description, importer.stored)
    return ArchiveImport(
        description=description,
        blobs={path: importer.stored[path] for path in used},
        metadata=dict(importer.metadata),
        unreferenced=tuple(sorted(set(importer.stored) - set(used))),
        warnings=tuple(warnings),
        compression=reader.compression or Compression.NONE,
    )


async def _empty() -> AsyncIterator[bytes]:
    nothing: tuple[bytes, ...] = ()
    for chunk in nothing:
        yield chunk


class _Importer:
    def __init__(self, sink: BlobSink, options: ImportOptions) -> None:
        self.sink = sink
        self.options = options
        self.metadata: dict[str, bytes] = {}
        self.stored: dict[str, StoredBlob] = {}
        self._buffered = 0

    def state(self, reader: SafeTarReader) -> ImportState:
        return ImportState(reader.state(), dict(self.metadata), dict(self.stored), self._buffered)

    def restore(self, state: ImportState) -> None:
        self.metadata = dict(state.metadata)
        self.stored = dict(state.stored)
        self._buffered = state.buffered

    async def take(self, entry: TarEntry) -> None:
        chunks = aiter(entry.chunks())
        head: list[bytes] = []
        seen = 0
        while seen < BLOCK and seen < entry.size:
            chunk = await anext(chunks)
            head.append(chunk)
            seen += len(chunk)
        if self._keep(entry, b"".join(head)):
            self.metadata[entry.name] = b"".join(head + [chunk async for chunk in chunks])
            self._buffered += entry.size
            return
        await self.store(entry.name, head, chunks)

    def _keep(self, entry: TarEntry, head: bytes) -> bool:
        cap = self.options.max_metadata_file
        fits = self._buffered + entry.size <= self.options.max_metadata_total
        if entry.name in METADATA_NAMES:
            if entry.size > cap:
                raise UnsafeArchive(f"{entry.name} is {entry.size} bytes; at most {cap} are allowed")
            if not fits:
                raise UnsafeArchive(f"the archive's metadata exceeds {self.options.max_metadata_total} bytes")
            return True
        json_like = head.lstrip()[:1] in (b"{", b"[")
        return fits and (entry.size <= SMALL_FILE or (json_like and entry.size <= cap))

    async def store(self, path: str, head: list[bytes], rest: AsyncIterator[bytes]) -> StoredBlob:
        """Write one blob to the sink, compressing an uncompressed tar on the way."""
        first = b"".join(head)
        try:
            compression = sniff(first[:SNIFF_BYTES])
        except InvalidArchive:  # xz or bzip2: not a layer we can use, but a blob all the same
            compression = Compression.NONE
        is_tar = compression is Compression.NONE and looks_like_tar(first)
        compressor = None
        if is_tar and self.options.layer_compression is not Compression.NONE:
            compressor = LayerCompressor(
                self.options.layer_compression, self.options.compression_level, hash_output=False
            )
        side_hasher = None
        if compression is not Compression.NONE and self.options.verify_compressed_diff_ids:
            side_hasher = UncompressedHasher(compression, self.options.limits.max_total_size)
        writer = await self.sink.begin(path)
        written = 0
        try:
            async for chunk in _chain(head, rest):
                if side_hasher is not None:
                    side_hasher.update(chunk)
                out = compressor.update(chunk) if compressor is not None else chunk
                if out:
                    await writer.write(out)
                    written += len(out)
            if compressor is not None:
                tail = compressor.finish()
                if tail:
                    await writer.write(tail)
                    written += len(tail)
            digest, size = await writer.finish()
        except BaseException:
            await _abort(writer)
            raise
        if size != written:
            raise RuntimeError(f"the blob sink reported {size} bytes for {path}, but {written} were written")
        diff_id = side_hasher.finish() if side_hasher is not None else (digest if is_tar else None)
        if compressor is not None:
            result = compressor.result
            blob = StoredBlob(
                path,
                result.diff_id,
                result.uncompressed_size,
                digest,
                size,
                compressor.compression,
                result.diff_id,
            )
        else:
            blob = StoredBlob(path, digest, size, digest, size, compression, diff_id)
        self.stored[path] = blob
        return blob


async def _chain(head: list[bytes], rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    for chunk in head:
        yield chunk
    async for chunk in rest:
        yield chunk


async def _abort(writer: BlobWriter) -> None:
    with contextlib.suppress(Exception):  # the original error is the one to report
        await writer.abort()


def _verify(description: ArchiveDescription, stored: Mapping[str, StoredBlob]) -> list[str]:
    """Check every expectation; returns warnings for what could not be checked."""
    warnings: list[str] = []
    for exp in description.expectations:
        blob = stored[exp.path]
        actual: str | int | None
        if exp.check == "digest":
            if not str(exp.expected).startswith("sha256:"):
                raise InvalidArchive(
                    f"{exp.context}: only sha256 digests can be verified, not {exp.expected}"
                )
            actual = blob.archive_digest
        elif exp.check == "size":
            actual = blob.archive_size
        else:
            actual = blob.diff_id
            if actual is None:
                warnings.append(f"{exp.context}: the layer is compressed, so its diff_id was not verified")
                continue
        if actual != exp.expected:
            raise DigestMismatch(
                f"{exp.context} ({exp.path}): the archive declares {exp.check} {exp.expected}, "
                f"but the content has {actual}"
            )
    return warnings


__all__ = [
    "ArchiveError",
    "ArchiveImport",
    "ImportOptions",
    "ImportState",
    "StoredBlob",
    "import_archive",
]
