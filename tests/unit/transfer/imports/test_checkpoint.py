"""Checkpoints of a real import (RegistrySink over the memory driver) survive encoding."""

from __future__ import annotations

import json
import os
from collections.abc import Callable

from dockyard.archive.ingest import ArchiveImport, ImportState, import_archive
from dockyard.oci.digest import Digest
from dockyard.storage.memory import MemoryDriver
from dockyard.transfer.imports.checkpoint import Checkpoint, decode, encode, restore_sink, sink_state
from dockyard.transfer.imports.sink import RegistrySink
from tests.unit.archive.factories import (
    FakeImage,
    chunked,
    docker_save_old,
    file,
    layer_tar,
    tar_bytes,
)

FOLDER = "archives/checkpoint-test"
NOT_UTF8 = b"\xff\xfe\x80 not text \xc3\x28"


async def never_stored(digest: Digest) -> bool:
    return False


def archive() -> bytes:
    big = layer_tar({"a": os.urandom(100_000)})
    image = FakeImage([big, layer_tar({"b": b"small"}), big])  # the second "big" is a symlink
    # A small binary file: kept in memory (it is tiny), so it travels in the checkpoint.
    return tar_bytes([file("extra/blob.bin", NOT_UTF8), *docker_save_old([image])])


async def import_with_checkpoints(
    storage: MemoryDriver, data: bytes
) -> tuple[ArchiveImport, RegistrySink, list[Checkpoint]]:
    sink = RegistrySink(storage, FOLDER, never_stored)
    checkpoints: list[Checkpoint] = []

    def on_boundary(offset: int, take: Callable[[], ImportState]) -> None:
        checkpoints.append(Checkpoint(take(), sink_state(sink)))

    imported = await import_archive(chunked(data), sink, on_boundary=on_boundary)
    return imported, sink, checkpoints


async def test_a_checkpoint_survives_encoding() -> None:
    _, _, checkpoints = await import_with_checkpoints(MemoryDriver(), archive())
    # Past a layer: blobs are staged and stored, metadata (with non-UTF-8 bytes) is kept.
    checkpoint = next(c for c in checkpoints if c.state.stored and len(c.sink.by_name) >= 1)
    assert checkpoint.state.metadata["extra/blob.bin"] == NOT_UTF8
    assert checkpoint.state.reader.kinds
    assert checkpoint.state.reader.dirs

    data = encode(checkpoint)
    json.loads(data)  # plain JSON
    decoded = decode(data)

    assert decoded == checkpoint
    assert decoded is not None
    assert decoded.offset == checkpoint.offset
    assert checkpoints[-1].state.reader.symlinks
    for later in checkpoints:
        assert decode(encode(later)) == later


async def test_a_decoded_checkpoint_resumes_to_the_same_result() -> None:
    storage = MemoryDriver()
    data = archive()
    expected, expected_sink, checkpoints = await import_with_checkpoints(storage, data)
    checkpoint = decode(encode(checkpoints[len(checkpoints) // 2]))
    assert checkpoint is not None
    assert checkpoint.state.stored

    # A new importer in the same folder (what was staged before the checkpoint is there).
    sink = RegistrySink(storage, FOLDER, never_stored)
    restore_sink(sink, checkpoint.sink)
    imported = await import_archive(chunked(data[checkpoint.offset :], 999), sink, resume=checkpoint.state)

    assert imported == expected
    assert sink.by_name == expected_sink.by_name
    assert (sink.written, sink.deduplicated) == (expected_sink.written, expected_sink.deduplicated)


async def test_a_checkpoint_of_another_version_is_ignored() -> None:
    _, _, checkpoints = await import_with_checkpoints(MemoryDriver(), archive())
    doc = json.loads(encode(checkpoints[0]))
    for version in (2, 0, None):
        doc["version"] = version
        assert decode(json.dumps(doc).encode()) is None
    del doc["version"]
    assert decode(json.dumps(doc).encode()) is None
