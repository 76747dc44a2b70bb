from __future__ import annotations

import posixpath
import tarfile

import pytest

from dockyard.archive import media
from dockyard.archive.errors import ArchiveError, DigestMismatch, InvalidArchive
from dockyard.archive.formats import (
    ArchiveDescription,
    ArchiveFormat,
    Expectation,
    Platform,
    describe_archive,
)
from dockyard.oci import mediatypes as mt
from tests.unit.archive.factories import (
    FakeImage,
    Member,
    blob,
    docker_save_new,
    docker_save_old,
    dumps,
    file,
    layer_tar,
    oci_manifest,
    oci_multiplatform,
    sha,
)

L1 = layer_tar({"a": b"1"})
L2 = layer_tar({"b": b"2"})


def describe(members: list[Member]) -> ArchiveDescription:
    """Every file is handed over as metadata; links map to their targets."""
    metadata: dict[str, bytes] = {}
    paths: dict[str, str] = {}
    for ti, data in members:
        name = posixpath.normpath(ti.name)
        if ti.type == tarfile.REGTYPE:
            metadata[name] = data or b""
            paths[name] = name
        elif ti.type == tarfile.SYMTYPE:
            paths[name] = posixpath.normpath(posixpath.join(posixpath.dirname(name), ti.linkname))
    return describe_archive(metadata, paths)


def replace(members: list[Member], name: str, data: bytes) -> list[Member]:
    return [file(name, data) if ti.name == name else (ti, d) for ti, d in members]


def test_docker_save_old_layout() -> None:
    images = [FakeImage([L1, L2], ["example/app:1.0", "example/app:latest"]), FakeImage([L1], ["other:2"])]
    description = describe(docker_save_old(images))
    assert description.format is ArchiveFormat.DOCKER_SAVE
    first, second = description.images
    assert first.repo_tags == ("example/app:1.0", "example/app:latest")
    (plat,) = first.platforms
    assert plat.platform == Platform("linux", "amd64")
    assert plat.manifest is None
    assert [layer.diff_id for layer in plat.layers] == [sha(L1), sha(L2)]
    assert all(layer.digest is None for layer in plat.layers)
    assert plat.config.digest == sha(images[0].config())
    # docker < 25 wrote the second copy of L1 as a symlink to the first: same canonical path.
    assert second.platforms[0].layers[0].path == plat.layers[0].path
    assert Expectation(
        plat.layers[1].path, "diff_id", sha(L2), "layer 2/2 of example/app:1.0 (linux/amd64)"
    ) in (description.expectations)


def test_docker_save_new_layout_prefers_oci_and_keeps_familiar_tags() -> None:
    description = describe(docker_save_new([FakeImage([L1, L2], ["example/app:1.0"])]))
    assert description.format is ArchiveFormat.OCI_LAYOUT
    (image,) = description.images
    assert image.repo_tags == ("example/app:1.0",)  # from manifest.json, not "docker.io/..."
    (plat,) = image.platforms
    assert plat.manifest is not None
    assert [(layer.path, layer.digest, layer.diff_id) for layer in plat.layers] == [
        (f"blobs/sha256/{sha(L1).hex}", sha(L1), sha(L1)),
        (f"blobs/sha256/{sha(L2).hex}", sha(L2), sha(L2)),
    ]


def test_docker_25_0_0_oci_manifest_without_layers_falls_back_to_manifest_json() -> None:
    image = FakeImage([L1], ["example/app:1.0"])
    members = docker_save_new([image])
    broken = oci_manifest(image.config(), [])  # what docker 25.0.0 wrote: only foreign layers
    index = {
        "schemaVersion": 2,
        "manifests": [{"mediaType": mt.OCI_MANIFEST, "digest": sha(broken), "size": len(broken)}],
    }
    members = [*replace(members, "index.json", dumps(index)), blob(broken)]
    description = describe(members)
    assert description.format is ArchiveFormat.DOCKER_SAVE_BLOBS
    assert description.images[0].platforms[0].layers[0].diff_id == sha(L1)


def test_oci_layout_with_two_platforms() -> None:
    amd = FakeImage([L1], [])
    arm = FakeImage([L1, L2], [], architecture="arm64", variant="v8")
    description = describe(oci_multiplatform([amd, arm], "registry.example/app:2.0"))
    assert description.format is ArchiveFormat.OCI_LAYOUT
    (image,) = description.images
    assert image.repo_tags == ("registry.example/app:2.0",)
    assert image.index is not None
    assert image.index.media_type == mt.OCI_INDEX
    assert [str(p.platform) for p in image.platforms] == ["linux/amd64", "linux/arm64/v8"]
    arm_layers = image.platforms[1].layers
    assert [layer.media_type for layer in arm_layers] == [media.OCI_LAYER_GZIP] * 2
    assert [layer.diff_id for layer in arm_layers] == [sha(L1), sha(L2)]
    assert all(layer.digest is not None and layer.digest != layer.diff_id for layer in arm_layers)
    # L1 is shared by both platforms: one blob path.
    assert len(description.blob_paths()) == 2 + 2  # two configs, two layers


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        pytest.param(
            lambda m: [x for x in m if not x[0].name.endswith("layer.tar")], "which is not in the archive"
        ),
        pytest.param(
            lambda m: replace(m, "manifest.json", dumps([{"Config": "nope.json", "Layers": []}])),
            "Config names 'nope.json', which is not in the archive",
        ),
        pytest.param(
            lambda m: replace(m, "manifest.json", dumps([{"Config": "../../etc/passwd", "Layers": []}])),
            "path traversal",
        ),
        pytest.param(lambda m: replace(m, "manifest.json", b"{not json"), "not valid JSON"),
        pytest.param(lambda m: replace(m, "manifest.json", dumps({"a": 1})), "must be a list"),
        pytest.param(lambda m: [x for x in m if x[0].name != "manifest.json"], "not an image archive"),
    ],
)
def test_docker_save_refusals(mutate: object, message: str) -> None:
    assert callable(mutate)
    members = mutate(docker_save_old([FakeImage([L1, L2])]))
    with pytest.raises(ArchiveError, match=message):
        describe(members)


def test_layer_count_must_match_diff_ids() -> None:
    image = FakeImage([L1, L2])
    members = docker_save_old([image])
    manifest = [{"Config": f"{sha(image.config()).hex}.json", "Layers": []}]
    with pytest.raises(InvalidArchive, match="lists 0 layers but its config has 2 diff_ids"):
        describe(replace(members, "manifest.json", dumps(manifest)))


def test_config_content_must_match_its_content_addressed_name() -> None:
    image = FakeImage([L1])
    members = replace(docker_save_old([image]), f"{sha(image.config()).hex}.json", image.config() + b" ")
    with pytest.raises(DigestMismatch, match="declares sha256:"):
        describe(members)


def test_oci_manifest_naming_a_missing_blob_is_refused() -> None:
    members = oci_multiplatform([FakeImage([L1])])
    members = [
        m for m in members if m[1] is None or not m[0].name.startswith("blobs/") or sha(m[1]) != sha(L1)
    ]
    members = [m for m in members if m[1] is None or (m[1][:2] != b"\x1f\x8b")]
    with pytest.raises(
        InvalidArchive, match=r"layer 0 names 'blobs/sha256/[0-9a-f]+', which is not in the archive"
    ):
        describe(members)


def test_oci_corrupt_manifest_blob_is_a_digest_mismatch() -> None:
    members = oci_multiplatform([FakeImage([L1])])
    out: list[Member] = []
    for ti, data in members:
        if data is not None and b'"layers"' in data:
            data = data.replace(b'"layers"', b'"layers" ')
        out.append((ti, data))
    with pytest.raises(DigestMismatch):
        describe(out)


def test_unsupported_layout_version() -> None:
    members = replace(
        oci_multiplatform([FakeImage([L1])]), "oci-layout", dumps({"imageLayoutVersion": "2.0"})
    )
    with pytest.raises(InvalidArchive, match="unsupported OCI layout version"):
        describe(members)
