from __future__ import annotations

import gzip
import json
import os
from collections.abc import AsyncIterator, Callable

import pytest
import zstandard

from dockyard.archive import media
from dockyard.archive.decompress import Compression
from dockyard.archive.errors import DigestMismatch, InvalidArchive, UnsafeArchive
from dockyard.archive.formats import ArchiveFormat
from dockyard.archive.ingest import ArchiveImport, ImportOptions, import_archive
from dockyard.archive.manifests import image_manifests
from dockyard.oci import mediatypes as mt
from tests.unit.archive.factories import (
    FakeImage,
    Member,
    MemorySink,
    chunked,
    docker_save_new,
    docker_save_old,
    dumps,
    file,
    gz,
    layer_tar,
    oci_multiplatform,
    sha,
    tar_bytes,
    zst,
)

BIG = layer_tar({"opt/data": os.urandom(300_000), "opt/zeros": bytes(1 << 20)})
SMALL = layer_tar({"etc/motd": b"hi\n"})


Compress = Callable[[bytes], bytes] | None


async def run(
    members: list[Member], options: ImportOptions | None = None, outer: Compress = None
) -> tuple[ArchiveImport, MemorySink]:
    data = tar_bytes(members)
    if outer is not None:
        data = outer(data)
    sink = MemorySink()
    return await import_archive(chunked(data, 64 << 10), sink, options), sink


@pytest.mark.parametrize("outer", [None, gz, zst], ids=["plain", "gzip", "zstd"])
async def test_docker_save_old_layers_are_stored_gzip_compressed(outer: Compress) -> None:
    image = FakeImage([BIG, SMALL, BIG], ["example/app:1.0"])  # BIG twice: the second is a symlink
    result, sink = await run(docker_save_old([image]), outer=outer)
    expected: dict[Compress, Compression] = {
        None: Compression.NONE,
        gz: Compression.GZIP,
        zst: Compression.ZSTD,
    }
    assert result.compression is expected[outer]
    assert result.description.format is ArchiveFormat.DOCKER_SAVE
    (plat,) = result.description.images[0].platforms
    assert plat.layers[0].path == plat.layers[2].path
    for ref, layer in zip(plat.layers, [BIG, SMALL, BIG], strict=True):
        stored = result.stored(ref)
        assert stored.compression is Compression.GZIP
        assert stored.diff_id == stored.archive_digest == sha(layer)
        assert gzip.decompress(sink.blobs[ref.path]) == layer
        assert stored.digest == sha(sink.blobs[ref.path])
        assert stored.size == len(sink.blobs[ref.path])
    assert sink.blobs[plat.config.path] == image.config()
    assert result.unreferenced == ()  # VERSION and json files were kept in memory, not staged
    assert result.warnings == ()


async def test_big_layers_stream_and_are_not_buffered() -> None:
    result, _ = await run(docker_save_old([FakeImage([BIG])]))
    assert all(len(data) < 10_000 for data in result.metadata.values())


async def test_registry_manifest_for_docker_save_is_generated() -> None:
    image = FakeImage([BIG, SMALL], ["example/app:1.0"])
    result, sink = await run(docker_save_old([image]))
    index, (manifest,) = image_manifests(result.description.images[0], result)
    assert index is None
    doc = json.loads(manifest.data)
    assert manifest.media_type == doc["mediaType"] == mt.OCI_MANIFEST
    assert doc["config"] == {
        "mediaType": media.OCI_CONFIG,
        "digest": sha(image.config()),
        "size": len(image.config()),
    }
    plat = result.description.images[0].platforms[0]
    assert doc["layers"] == [
        {
            "mediaType": media.OCI_LAYER_GZIP,
            "digest": sha(sink.blobs[ref.path]),
            "size": len(sink.blobs[ref.path]),
        }
        for ref in plat.layers
    ]


async def test_zstd_layer_compression_and_no_compression() -> None:
    members = docker_save_old([FakeImage([BIG])])
    result, sink = await run(members, ImportOptions(layer_compression=Compression.ZSTD))
    ref = result.description.images[0].platforms[0].layers[0]
    assert result.stored(ref).compression is Compression.ZSTD
    assert zstandard.ZstdDecompressor().stream_reader(sink.blobs[ref.path]).read() == BIG
    result, sink = await run(members, ImportOptions(layer_compression=Compression.NONE))
    stored = result.stored(ref)
    assert sink.blobs[ref.path] == BIG
    assert stored.digest == stored.diff_id == sha(BIG)
    assert not stored.transcoded


async def test_docker_save_new_layout() -> None:
    images = [FakeImage([BIG, SMALL], ["example/app:1.0"]), FakeImage([SMALL], ["example/tool:3"])]
    result, sink = await run(docker_save_new(images), outer=gz)
    assert result.description.format is ArchiveFormat.OCI_LAYOUT
    assert [image.repo_tags for image in result.description.images] == [
        ("example/app:1.0",),
        ("example/tool:3",),
    ]
    plat = result.description.images[0].platforms[0]
    assert [result.stored(ref).diff_id for ref in plat.layers] == [sha(BIG), sha(SMALL)]
    # The layers were recompressed, so the archive's OCI manifest no longer fits: regenerated.
    _, (manifest,) = image_manifests(result.description.images[0], result)
    assert plat.manifest is not None
    assert manifest.digest != plat.manifest.digest
    assert [layer["mediaType"] for layer in json.loads(manifest.data)["layers"]] == [media.OCI_LAYER_GZIP] * 2
    # Manifests and OCI layout files stay out of the sink; only configs and layers go in.
    assert set(sink.blobs) == set(result.description.blob_paths())


async def test_oci_two_platform_archive_keeps_its_manifests() -> None:
    amd = FakeImage([BIG], [])
    arm = FakeImage([BIG, SMALL], [], architecture="arm64", variant="v8")
    result, sink = await run(oci_multiplatform([amd, arm]), outer=zst)
    (image,) = result.description.images
    assert image.repo_tags == ("example/app:2.0",)
    assert [str(p.platform) for p in image.platforms] == ["linux/amd64", "linux/arm64/v8"]
    for plat in image.platforms:
        for ref in plat.layers:
            stored = result.stored(ref)
            assert not stored.transcoded
            assert stored.digest == ref.digest
            assert stored.compression is Compression.GZIP
            assert sink.blobs[ref.path][:2] == b"\x1f\x8b"
    index, manifests = image_manifests(image, result)
    assert index is not None
    assert image.index is not None
    assert index.data == result.metadata[image.index.path]  # bytes are sacred: digests unchanged
    assert [m.digest for m in manifests] == [p.manifest.digest for p in image.platforms if p.manifest]
    # diff_ids of compressed layers are not computed by default, and say so.
    assert len(result.warnings) == 2
    assert "not verified" in result.warnings[0]


async def test_compressed_diff_ids_are_verified_on_request() -> None:
    result, _ = await run(
        oci_multiplatform([FakeImage([BIG, SMALL])]), ImportOptions(verify_compressed_diff_ids=True)
    )
    assert result.warnings == ()
    ref = result.description.images[0].platforms[0].layers[0]
    assert result.stored(ref).diff_id == sha(BIG)


async def test_wrong_diff_id_in_oci_config_is_caught_when_verifying() -> None:
    lying = FakeImage([BIG], claimed_diff_ids=[sha(SMALL)])
    members = oci_multiplatform([lying])
    result, _ = await run(members)  # not verified by default: a warning only
    assert "not verified" in result.warnings[0]
    with pytest.raises(DigestMismatch, match=r"layer 1/1 of example/app:2\.0 \(linux/amd64\).*diff_id"):
        await run(members, ImportOptions(verify_compressed_diff_ids=True))


async def test_docker_save_diff_id_mismatch_is_refused() -> None:
    image = FakeImage([BIG, SMALL], ["example/app:1.0"])
    members = [
        file(ti.name, layer_tar({"etc/motd": b"tampered\n"})) if data == SMALL else (ti, data)
        for ti, data in docker_save_old([image])
    ]
    with pytest.raises(DigestMismatch, match=r"layer 2/2 of example/app:1\.0 \(linux/amd64\).*diff_id"):
        await run(members)


async def test_oci_layer_content_mismatch_is_refused() -> None:
    members = oci_multiplatform([FakeImage([BIG])])
    gz_big = gz(BIG)
    members = [file(ti.name, gz(SMALL)) if data == gz_big else (ti, data) for ti, data in members]
    with pytest.raises(DigestMismatch, match="declares digest sha256:"):
        await run(members)


async def test_manifest_naming_a_missing_layer_is_refused() -> None:
    members = [m for m in docker_save_old([FakeImage([BIG, SMALL])]) if m[1] != SMALL]
    with pytest.raises(
        InvalidArchive, match=r"Layers\[1\] names '[0-9a-f]+/layer.tar', which is not in the archive"
    ):
        await run(members)


async def test_oversize_metadata_file_is_refused() -> None:
    members = [*docker_save_old([FakeImage([SMALL])]), file("index.json", b"{" + b" " * 5000 + b"}")]
    with pytest.raises(UnsafeArchive, match=r"index\.json is 5002 bytes"):
        await run(members, ImportOptions(max_metadata_file=4096))


async def test_json_past_the_metadata_budget_streams_to_the_sink() -> None:
    padding = [file(f"pad{i}.json", dumps({"x": "y" * 3000})) for i in range(5)]
    result, sink = await run(
        [*padding, *docker_save_old([FakeImage([SMALL])])], ImportOptions(max_metadata_total=12_000)
    )
    assert any(name.startswith("pad") for name in result.unreferenced)
    assert set(result.unreferenced) <= set(sink.blobs)


async def test_config_too_large_for_metadata_is_refused_clearly() -> None:
    members = docker_save_old([FakeImage([SMALL], config_padding=5000)])
    with pytest.raises(InvalidArchive, match="too large or not JSON"):
        await run(members, ImportOptions(max_metadata_file=4096))


async def test_failed_stream_aborts_the_open_blob() -> None:
    data = tar_bytes(docker_save_old([FakeImage([BIG])]))
    cut = data.index(BIG[:1000]) + 100_000

    async def truncated() -> AsyncIterator[bytes]:
        async for chunk in chunked(data[:cut]):
            yield chunk

    sink = MemorySink()
    with pytest.raises(InvalidArchive, match="truncated"):
        await import_archive(truncated(), sink)
    assert sink.aborted
    assert sink.aborted[0].endswith("layer.tar")


async def test_not_an_image_archive() -> None:
    with pytest.raises(InvalidArchive, match="not an image archive"):
        await run([file("hello.txt", b"hi")])
