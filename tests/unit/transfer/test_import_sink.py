"""The registry's import sink over the memory driver: staging, deduplication by comparing
against stored blobs (and falling back to staging when the bytes differ), discarding."""

from __future__ import annotations

import gzip
import os

from dockyard.oci.digest import Digest
from dockyard.registry.paths import blob_path
from dockyard.storage.base import PathNotFound
from dockyard.storage.memory import MemoryDriver
from dockyard.transfer.archives.ingest import import_archive
from dockyard.transfer.import_sink import RegistrySink, staged_path
from tests.unit.transfer.archives.factories import (
    FakeImage,
    chunked,
    docker_save_old,
    layer_tar,
    oci_multiplatform,
    tar_bytes,
)

FOLDER = "archives/test"


async def _store(storage: MemoryDriver, data: bytes) -> Digest:
    digest = Digest.of(data)
    await storage.put_content(blob_path(digest), data)
    return digest


def _sink(storage: MemoryDriver, stored: set[Digest]) -> RegistrySink:
    async def is_stored(digest: Digest) -> bool:
        return digest in stored

    return RegistrySink(storage, FOLDER, is_stored)


async def _files(storage: MemoryDriver, prefix: str) -> list[str]:
    try:
        return await storage.list(prefix)
    except PathNotFound:
        return []


async def _write(sink: RegistrySink, name: str, data: bytes, step: int = 1000) -> tuple[Digest, int]:
    writer = await sink.begin(name)
    for start in range(0, len(data), step):
        await writer.write(data[start : start + step])
    return await writer.finish()


async def test_a_new_blob_is_staged_under_its_digest() -> None:
    storage = MemoryDriver()
    sink = _sink(storage, set())
    data = os.urandom(3 << 20)

    digest, size = await _write(sink, "abc/layer.tar", data, 70_000)

    assert (digest, size) == (Digest.of(data), len(data))
    assert await storage.get_content(staged_path(FOLDER, digest)) == data
    assert await _files(storage, f"{FOLDER}/staging") == []
    assert (sink.written, sink.deduplicated) == (len(data), 0)


async def test_a_declared_blob_that_is_stored_is_compared_not_written() -> None:
    storage = MemoryDriver()
    data = gzip.compress(os.urandom(200_000), mtime=0)
    digest = await _store(storage, data)
    sink = _sink(storage, {digest})

    found = await _write(sink, f"blobs/sha256/{digest.hex}", data, 7000)

    assert found == (digest, len(data))
    assert await _files(storage, f"{FOLDER}/blobs") == []
    assert await _files(storage, f"{FOLDER}/staging") == []
    assert (sink.written, sink.deduplicated) == (0, len(data))
    assert not sink.by_name[f"blobs/sha256/{digest.hex}"].staged


async def test_bytes_that_differ_from_the_stored_blob_are_staged_whole() -> None:
    # An uncompressed layer in an OCI layout is stored; the import recompresses it, so what the
    # sink receives under that name differs from the stored blob after a common prefix.
    storage = MemoryDriver()
    stored = os.urandom(100_000)
    digest = await _store(storage, stored)
    sink = _sink(storage, {digest})
    different = stored[:60_000] + b"!" + os.urandom(50_000)

    found = await _write(sink, f"blobs/sha256/{digest.hex}", different, 7000)

    assert found == (Digest.of(different), len(different))
    assert await storage.get_content(staged_path(FOLDER, found[0])) == different
    assert sink.written == len(different)


async def test_a_prefix_or_an_extension_of_the_stored_blob_is_staged() -> None:
    storage = MemoryDriver()
    stored = os.urandom(50_000)
    digest = await _store(storage, stored)
    for data in (stored[:20_000], stored + b"tail"):
        sink = _sink(storage, {digest})
        found = await _write(sink, f"blobs/sha256/{digest.hex}", data)
        assert found == (Digest.of(data), len(data))
        assert await storage.get_content(staged_path(FOLDER, found[0])) == data


async def test_a_computed_digest_already_stored_drops_the_staged_copy() -> None:
    storage = MemoryDriver()
    data = os.urandom(10_000)
    digest = await _store(storage, data)
    sink = _sink(storage, {digest})

    assert await _write(sink, "x/layer.tar", data) == (digest, len(data))
    assert await _files(storage, f"{FOLDER}/blobs") == []
    assert sink.deduplicated == len(data)


async def test_an_aborted_blob_leaves_nothing() -> None:
    storage = MemoryDriver()
    sink = _sink(storage, set())
    writer = await sink.begin("x/layer.tar")
    await writer.write(os.urandom(2 << 20))
    await writer.abort()
    assert await _files(storage, f"{FOLDER}/staging") == []


async def test_an_import_stages_what_images_use_and_discards_the_rest() -> None:
    storage = MemoryDriver()
    sink = _sink(storage, set())
    archive = tar_bytes(docker_save_old([FakeImage([layer_tar({"a": os.urandom(5000)})])]))

    imported = await import_archive(chunked(archive), sink)
    await sink.discard(imported.unreferenced)

    staged = sorted(await _files(storage, f"{FOLDER}/blobs"))
    assert staged == sorted(staged_path(FOLDER, blob.digest) for blob in imported.blobs.values())
    await sink.remove_all()
    assert await _files(storage, FOLDER) == []


async def test_a_second_import_of_an_oci_archive_writes_nothing() -> None:
    storage = MemoryDriver()
    archive = tar_bytes(oci_multiplatform([FakeImage([layer_tar({"b": os.urandom(4000)})])]))
    first = _sink(storage, set())
    imported = await import_archive(chunked(archive), first)
    stored: set[Digest] = set()
    for blob in imported.blobs.values():  # "commit" them into the blob store
        await storage.move(staged_path(FOLDER, blob.digest), blob_path(blob.digest))
        stored.add(blob.digest)

    second = _sink(storage, stored)
    again = await import_archive(chunked(archive), second)

    assert {b.digest for b in again.blobs.values()} == stored
    assert second.written == 0
    assert await _files(storage, f"{FOLDER}/blobs") == []
