from __future__ import annotations

import io
import json
import tarfile
from collections.abc import AsyncIterator

import pytest

from dockyard.archive import media
from dockyard.archive.docker_archive import DockerImage, ExportBlob, docker_archive, oci_archive
from dockyard.archive.formats import ArchiveFormat
from dockyard.archive.ingest import ImportOptions, import_archive
from dockyard.archive.manifests import image_manifests
from dockyard.archive.safe_tar import SafeTarReader
from dockyard.archive.tarwriter import ArchiveWriteError, TarMember, TarStream
from dockyard.oci import mediatypes as mt
from dockyard.oci.digest import Digest
from tests.unit.archive.factories import (
    FakeImage,
    MemorySink,
    chunked,
    collect,
    dumps,
    gz,
    layer_tar,
    oci_manifest,
    sha,
    zst,
)

L1 = layer_tar({"bin/app": b"\x7fELF" + bytes(range(256)) * 400})
L2 = layer_tar({"etc/app.conf": b"debug = false\n" * 100})


class Opened:
    """Records the offsets blob sources were opened at."""

    def __init__(self) -> None:
        self.calls: list[tuple[Digest, int]] = []

    def blob(self, data: bytes, media_type: str = media.OCI_LAYER_GZIP) -> ExportBlob:
        digest = sha(data)

        async def source(offset: int) -> AsyncIterator[bytes]:
            self.calls.append((digest, offset))
            async for chunk in chunked(data[offset:], 3000):
                yield chunk

        return ExportBlob(digest, len(data), media_type, source=source)


def fake_docker_images(opened: Opened) -> list[DockerImage]:
    one = FakeImage([L1, L2], ["example/app:1.0", "example/app:latest"])
    two = FakeImage([L1], ["example/base:7"])
    return [
        DockerImage(
            one.config(), [opened.blob(gz(L1)), opened.blob(zst(L2), media.OCI_LAYER_ZSTD)], one.tags
        ),
        DockerImage(two.config(), [opened.blob(gz(L1))], two.tags),
    ]


async def test_size_is_known_before_streaming() -> None:
    plan = docker_archive(fake_docker_images(Opened()))
    data = await collect(plan.stream())
    assert plan.size == len(data)
    assert data.endswith(bytes(1024))


async def test_archive_is_a_plain_tar_with_manifest_first() -> None:
    plan = docker_archive(fake_docker_images(Opened()))
    with tarfile.open(fileobj=io.BytesIO(await collect(plan.stream()))) as tar:
        names = tar.getnames()
        manifest_file = tar.extractfile("manifest.json")
        assert manifest_file is not None
        manifest = json.loads(manifest_file.read())
        layer = tar.extractfile(f"blobs/sha256/{sha(gz(L1)).hex}")
        assert layer is not None
        assert layer.read() == gz(L1)
    assert names[0] == "manifest.json"
    assert len(names) == 1 + 2 + 2  # shared gzip L1 written once
    assert manifest[0]["RepoTags"] == ["example/app:1.0", "example/app:latest"]
    assert manifest[0]["Layers"] == [f"blobs/sha256/{sha(gz(L1)).hex}", f"blobs/sha256/{sha(zst(L2)).hex}"]


async def test_offset_streaming_equals_the_suffix() -> None:
    plan = docker_archive(fake_docker_images(Opened()))
    full = await collect(plan.stream())
    offsets = sorted(
        {0, 1, 511, 512, 513, 1024, 5000, len(full) // 2, len(full) - 1025, len(full) - 1, len(full)}
    )
    for offset in offsets:
        assert await collect(plan.stream(offset)) == full[offset:], offset


async def test_resuming_skips_blobs_before_the_offset_and_opens_the_cut_one_inside() -> None:
    opened = Opened()
    plan = docker_archive(fake_docker_images(opened))
    full = await collect(plan.stream())
    zst_start = full.index(zst(L2))
    opened.calls.clear()
    await collect(plan.stream(zst_start + 100))
    assert opened.calls == [(sha(zst(L2)), 100)]


async def test_offset_outside_the_archive_is_refused() -> None:
    plan = docker_archive(fake_docker_images(Opened()))
    with pytest.raises(ValueError, match="outside the archive"):
        await collect(plan.stream(plan.size + 1))


async def test_source_with_the_wrong_size_fails_instead_of_corrupting() -> None:
    async def short(offset: int) -> AsyncIterator[bytes]:
        yield b"x" * (10 - offset)

    for declared, message in [(11, "short"), (9, "larger")]:
        plan = TarStream([TarMember("blob", declared, source=short)])
        with pytest.raises(ArchiveWriteError, match=message):
            await collect(plan.stream())


async def test_members_of_8_gib_and_more_get_exact_headers() -> None:
    huge = 9 << 30

    async def zeros(offset: int) -> AsyncIterator[bytes]:
        remaining = huge - offset
        while remaining:
            step = min(remaining, 1 << 20)
            remaining -= step
            yield bytes(step)

    plan = TarStream([TarMember("blobs/sha256/" + "0" * 64, huge, source=zeros)])
    head = await anext(aiter(plan.stream()))
    reader = SafeTarReader(chunked(head + bytes(512)))
    entry = await anext(aiter(reader))
    assert entry.size == huge
    assert plan.size == len(head) + huge + 1024
    assert len(await collect(plan.stream(plan.size - 2000))) == 2000


@pytest.mark.parametrize("tag", ["app", "app@sha256:abc", "registry:5000/app"])
def test_docker_load_needs_name_tag_references(tag: str) -> None:
    with pytest.raises(ValueError, match="name:tag"):
        docker_archive([DockerImage(b"{}", [], [tag])])


async def test_round_trip_through_the_importer() -> None:
    plan = docker_archive(fake_docker_images(Opened()))
    sink = MemorySink()
    options = ImportOptions(verify_compressed_diff_ids=True)
    result = await import_archive(plan.stream(), sink, options)
    assert result.description.format is ArchiveFormat.DOCKER_SAVE_BLOBS
    assert [image.repo_tags for image in result.description.images] == [
        ("example/app:1.0", "example/app:latest"),
        ("example/base:7",),
    ]
    plat = result.description.images[0].platforms[0]
    stored = [result.stored(ref) for ref in plat.layers]
    # Stored as they were exported: no recompression, same blob digests, diff_ids verified.
    assert [s.digest for s in stored] == [sha(gz(L1)), sha(zst(L2))]
    assert [s.diff_id for s in stored] == [sha(L1), sha(L2)]
    assert result.warnings == ()


async def test_oci_archive_round_trip_keeps_the_manifest_digest() -> None:
    image = FakeImage([L1, L2], [])
    config = image.config()
    layers = [gz(L1), gz(L2)]
    manifest = oci_manifest(config, [(media.OCI_LAYER_GZIP, layer) for layer in layers])
    opened = Opened()
    plan = oci_archive(
        ExportBlob.of(manifest, mt.OCI_MANIFEST),
        [ExportBlob.of(config, media.OCI_CONFIG), *(opened.blob(layer) for layer in layers)],
        ["example/app:3.0"],
    )
    data = await collect(plan.stream())
    assert len(data) == plan.size
    result = await import_archive(chunked(data), MemorySink())
    (archive_image,) = result.description.images
    assert archive_image.repo_tags == ("example/app:3.0",)
    _, (pushed,) = image_manifests(archive_image, result)
    assert pushed.data == manifest


def test_oci_archive_needs_a_manifest_root() -> None:
    with pytest.raises(ValueError, match="manifest or index"):
        oci_archive(ExportBlob.of(dumps({}), media.OCI_CONFIG), [])
