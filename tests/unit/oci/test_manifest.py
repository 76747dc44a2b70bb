from __future__ import annotations

import json
from typing import Any

import pytest

from dockyard.oci import mediatypes as mt
from dockyard.oci.digest import Digest
from dockyard.oci.errors import InvalidManifest
from dockyard.oci.manifest import MAX_ANNOTATIONS, MAX_DESCRIPTORS, Descriptor, parse_manifest

Json = dict[str, Any]

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
NONDIST_LAYER = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"


def desc(media_type: str, seed: str, **extra: Any) -> Json:
    data = seed.encode()
    return {"mediaType": media_type, "digest": Digest.of(data), "size": len(data), **extra}


def oci_manifest(**fields: Any) -> Json:
    doc: Json = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": desc(OCI_CONFIG, "config"),
        "layers": [desc(OCI_LAYER, "layer-1"), desc(OCI_LAYER, "layer-2")],
    }
    doc.update(fields)
    return {k: v for k, v in doc.items() if v is not None}


def oci_index(**fields: Any) -> Json:
    doc: Json = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_INDEX,
        "manifests": [
            desc(mt.OCI_MANIFEST, "m1", platform={"architecture": "amd64", "os": "linux"}),
            desc(mt.OCI_MANIFEST, "m2", platform={"architecture": "arm64", "os": "linux"}),
        ],
    }
    doc.update(fields)
    return {k: v for k, v in doc.items() if v is not None}


def encode(doc: Json) -> bytes:
    return json.dumps(doc).encode()


def invalid(data: bytes, content_type: str | None = None) -> InvalidManifest:
    with pytest.raises(InvalidManifest) as info:
        parse_manifest(data, content_type)
    return info.value


# ---------------------------------------------------------------- the four kinds


def test_oci_image_manifest() -> None:
    doc = oci_manifest(annotations={"org.opencontainers.image.title": "demo"})
    parsed = parse_manifest(encode(doc), mt.OCI_MANIFEST)
    assert parsed.media_type == mt.OCI_MANIFEST
    assert not parsed.is_index
    assert parsed.config == Descriptor(OCI_CONFIG, Digest.of(b"config"), 6)
    assert [d.digest for d in parsed.layers] == [Digest.of(b"layer-1"), Digest.of(b"layer-2")]
    assert all(isinstance(d.digest, Digest) for d in parsed.layers)
    assert [d.digest for d in parsed.blob_references] == [
        Digest.of(b"config"),
        Digest.of(b"layer-1"),
        Digest.of(b"layer-2"),
    ]
    assert parsed.manifests == ()
    assert parsed.subject is None
    assert parsed.annotations == {"org.opencontainers.image.title": "demo"}


def test_oci_index() -> None:
    parsed = parse_manifest(encode(oci_index()), mt.OCI_INDEX)
    assert parsed.media_type == mt.OCI_INDEX
    assert parsed.is_index
    assert [d.digest for d in parsed.manifests] == [Digest.of(b"m1"), Digest.of(b"m2")]
    assert parsed.manifests[1].platform == {"architecture": "arm64", "os": "linux"}
    assert parsed.blob_references == ()
    assert parsed.config is None


def test_docker_v2_manifest() -> None:
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.DOCKER_MANIFEST,
        "config": desc(DOCKER_CONFIG, "config"),
        "layers": [desc(DOCKER_LAYER, "layer")],
    }
    parsed = parse_manifest(encode(doc), mt.DOCKER_MANIFEST)
    assert parsed.media_type == mt.DOCKER_MANIFEST
    assert not parsed.is_index
    assert [d.media_type for d in parsed.blob_references] == [DOCKER_CONFIG, DOCKER_LAYER]


def test_docker_manifest_list() -> None:
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.DOCKER_MANIFEST_LIST,
        "manifests": [desc(mt.DOCKER_MANIFEST, "m", platform={"architecture": "amd64", "os": "linux"})],
    }
    parsed = parse_manifest(encode(doc), mt.DOCKER_MANIFEST_LIST)
    assert parsed.media_type == mt.DOCKER_MANIFEST_LIST
    assert parsed.is_index
    assert [d.media_type for d in parsed.manifests] == [mt.DOCKER_MANIFEST]


def test_docker_manifest_needs_layers() -> None:
    doc = {"schemaVersion": 2, "mediaType": mt.DOCKER_MANIFEST, "config": desc(DOCKER_CONFIG, "c")}
    invalid(encode(doc), mt.DOCKER_MANIFEST)


def test_index_needs_manifests() -> None:
    invalid(encode({"schemaVersion": 2, "mediaType": mt.OCI_INDEX}), mt.OCI_INDEX)


def test_image_manifest_needs_config() -> None:
    invalid(encode(oci_manifest(config=None)), mt.OCI_MANIFEST)


# ---------------------------------------------------------------- media type resolution


def test_missing_media_type_inferred_as_image_manifest() -> None:
    doc = oci_manifest(mediaType=None)
    assert "mediaType" not in doc
    assert parse_manifest(encode(doc), None).media_type == mt.OCI_MANIFEST
    assert parse_manifest(encode(doc), "application/octet-stream").media_type == mt.OCI_MANIFEST


def test_missing_media_type_inferred_as_index() -> None:
    doc = oci_index(mediaType=None)
    parsed = parse_manifest(encode(doc), None)
    assert parsed.media_type == mt.OCI_INDEX
    assert parsed.is_index


def test_missing_media_type_taken_from_content_type() -> None:
    doc = {"schemaVersion": 2, "config": desc(DOCKER_CONFIG, "c"), "layers": [desc(DOCKER_LAYER, "l")]}
    assert parse_manifest(encode(doc), mt.DOCKER_MANIFEST).media_type == mt.DOCKER_MANIFEST


def test_content_type_parameters_and_case_are_ignored() -> None:
    content_type = "Application/VND.OCI.Image.Manifest.v1+JSON; charset=utf-8"
    parsed = parse_manifest(encode(oci_manifest()), content_type)
    assert parsed.media_type == mt.OCI_MANIFEST


@pytest.mark.parametrize(
    ("declared_doc", "content_type"),
    [
        (oci_manifest(), mt.DOCKER_MANIFEST),
        (oci_manifest(), mt.OCI_INDEX),
        (oci_index(), mt.OCI_MANIFEST),
        (oci_index(), mt.DOCKER_MANIFEST_LIST),
    ],
)
def test_content_type_and_media_type_mismatch(declared_doc: Json, content_type: str) -> None:
    error = invalid(encode(declared_doc), content_type)
    assert "does not match" in error.message


def test_declared_media_type_wins_over_a_non_manifest_content_type() -> None:
    parsed = parse_manifest(encode(oci_index()), "application/json")
    assert parsed.media_type == mt.OCI_INDEX


@pytest.mark.parametrize(
    "media_type",
    [OCI_CONFIG, "application/json", mt.DOCKER_SCHEMA1, "application/vnd.oci.artifact.manifest.v1+json"],
)
def test_unsupported_declared_media_type(media_type: str) -> None:
    invalid(encode(oci_manifest(mediaType=media_type)), None)


def test_non_string_media_type() -> None:
    invalid(encode(oci_manifest(mediaType=2)), None)


# ---------------------------------------------------------------- schema 1 and schemaVersion


def test_schema1_by_content_is_refused() -> None:
    doc = {"schemaVersion": 1, "name": "library/x", "tag": "latest", "fsLayers": [], "history": []}
    error = invalid(encode(doc), None)
    assert "schema 1" in error.message


@pytest.mark.parametrize("content_type", [mt.DOCKER_SCHEMA1, mt.DOCKER_SCHEMA1_SIGNED])
def test_schema1_by_content_type_is_refused(content_type: str) -> None:
    error = invalid(encode(oci_manifest(mediaType=None)), content_type)
    assert "schema 1" in error.message


@pytest.mark.parametrize("version", [None, 3, "2", 0])
def test_schema_version_must_be_2(version: object) -> None:
    invalid(encode(oci_manifest(schemaVersion=version)), mt.OCI_MANIFEST)


# ---------------------------------------------------------------- not a JSON object


@pytest.mark.parametrize(
    "data",
    [b"", b"not json", b"[]", b'"string"', b"null", b"\xff\xfe{}", b'{"schemaVersion": 2,'],
)
def test_not_a_json_object(data: bytes) -> None:
    invalid(data, mt.OCI_MANIFEST)


# ---------------------------------------------------------------- descriptors


GOOD = desc(OCI_LAYER, "x")


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param("sha256:abc", id="not-an-object"),
        pytest.param({**GOOD, "mediaType": ""}, id="empty-media-type"),
        pytest.param({k: v for k, v in GOOD.items() if k != "mediaType"}, id="no-media-type"),
        pytest.param({k: v for k, v in GOOD.items() if k != "digest"}, id="no-digest"),
        pytest.param({k: v for k, v in GOOD.items() if k != "size"}, id="no-size"),
        pytest.param({**GOOD, "digest": "sha256:1234"}, id="short-digest"),
        pytest.param({**GOOD, "digest": GOOD["digest"].upper()}, id="uppercase-digest"),
        pytest.param({**GOOD, "digest": 12}, id="numeric-digest"),
        pytest.param({**GOOD, "size": -1}, id="negative-size"),
        pytest.param({**GOOD, "size": "1"}, id="string-size"),
        pytest.param({**GOOD, "size": 1.5}, id="float-size"),
        pytest.param({**GOOD, "size": True}, id="bool-size"),
        pytest.param({**GOOD, "size": 2**63}, id="size-beyond-int64"),
        pytest.param({**GOOD, "artifactType": 1}, id="numeric-artifact-type"),
        pytest.param({**GOOD, "artifactType": "application/\u0000"}, id="nul-artifact-type"),
        pytest.param({**GOOD, "mediaType": "application/x\u0000"}, id="nul-media-type"),
        pytest.param({**GOOD, "mediaType": "application/\ud800"}, id="surrogate-media-type"),
        pytest.param({**GOOD, "mediaType": "a/" + "b" * 254}, id="256-character-media-type"),
        pytest.param({**GOOD, "mediaType": "application/json; charset=utf-8"}, id="media-type-parameters"),
        pytest.param({**GOOD, "annotations": {"k": 1}}, id="non-string-annotation"),
        pytest.param({**GOOD, "annotations": ["k"]}, id="annotations-list"),
        pytest.param({**GOOD, "platform": "linux/amd64"}, id="platform-string"),
    ],
)
@pytest.mark.parametrize("where", ["config", "layer", "child", "subject"])
def test_bad_descriptors(bad: object, where: str) -> None:
    if where == "config":
        doc = oci_manifest(config=bad)
    elif where == "layer":
        doc = oci_manifest(layers=[GOOD, bad])
    elif where == "child":
        doc = oci_index(manifests=[bad])
    else:
        doc = oci_manifest(subject=bad)
    error = invalid(encode(doc), None)
    prefix = {"config": "config", "layer": "layers[1]", "child": "manifests[0]", "subject": "subject"}[where]
    assert error.message.startswith(prefix), error.message


@pytest.mark.parametrize("layers", ["x", {"0": GOOD}, 1])
def test_layers_must_be_a_list(layers: object) -> None:
    invalid(encode(oci_manifest(layers=layers)), None)


def test_manifest_annotations_must_map_strings_to_strings() -> None:
    invalid(encode(oci_manifest(annotations={"a": {"nested": "x"}})), None)


def test_top_level_artifact_type_must_be_a_string() -> None:
    invalid(encode(oci_manifest(artifactType=["x"])), None)


@pytest.mark.parametrize(
    "artifact_type",
    ["", "application/vnd.example\u0000", "application/\ud800", "application/" + "x" * 244, "sbom"],
    ids=["empty", "nul", "lone-surrogate", "256-characters", "no-subtype"],
)
@pytest.mark.parametrize("kind", ["manifest", "index"])
def test_top_level_artifact_type_must_be_a_media_type(artifact_type: str, kind: str) -> None:
    doc = (
        oci_manifest(artifactType=artifact_type)
        if kind == "manifest"
        else oci_index(artifactType=artifact_type)
    )
    error = invalid(encode(doc), None)
    assert error.message.startswith("artifactType"), error.message


def test_the_largest_size_and_longest_media_types_are_fine() -> None:
    longest = "a" * 127 + "/" + "b" * 127
    layer = {**GOOD, "size": 2**63 - 1, "mediaType": longest, "artifactType": longest}
    parsed = parse_manifest(encode(oci_manifest(artifactType=longest, layers=[layer])), None)
    assert parsed.layers[0].size == 2**63 - 1
    assert parsed.layers[0].media_type == parsed.layers[0].artifact_type == longest
    assert parsed.referrer_artifact_type == longest


def test_zero_size_descriptor_is_fine() -> None:
    empty = {"mediaType": mt.OCI_EMPTY, "digest": Digest.of(b""), "size": 0}
    parsed = parse_manifest(encode(oci_manifest(layers=[empty])), None)
    assert parsed.layers[0].size == 0


# ---------------------------------------------------------------- subject and referrers


def test_subject_is_parsed() -> None:
    subject = desc(mt.OCI_MANIFEST, "subject")
    parsed = parse_manifest(encode(oci_manifest(subject=subject)), None)
    assert parsed.subject is not None
    assert parsed.subject.digest == Digest.of(b"subject")
    assert parsed.subject.media_type == mt.OCI_MANIFEST
    assert parse_manifest(encode(oci_index(subject=subject)), None).subject == parsed.subject


def test_null_subject_is_no_subject() -> None:
    assert parse_manifest(encode({**oci_manifest(), "subject": None}), None).subject is None


def test_referrer_artifact_type_prefers_artifact_type() -> None:
    doc = oci_manifest(artifactType="application/vnd.example.sbom", config=desc(mt.OCI_EMPTY, "{}"))
    assert parse_manifest(encode(doc), None).referrer_artifact_type == "application/vnd.example.sbom"


def test_referrer_artifact_type_falls_back_to_the_config_media_type() -> None:
    doc = oci_manifest(config=desc("application/vnd.example.signature.config+json", "sig"))
    parsed = parse_manifest(encode(doc), None)
    assert parsed.artifact_type is None
    assert parsed.referrer_artifact_type == "application/vnd.example.signature.config+json"


def test_referrer_artifact_type_of_an_index_without_one_is_none() -> None:
    assert parse_manifest(encode(oci_index()), None).referrer_artifact_type is None
    doc = oci_index(artifactType="application/vnd.example.bundle")
    assert parse_manifest(encode(doc), None).referrer_artifact_type == "application/vnd.example.bundle"


def test_referrer_artifact_type_of_a_docker_manifest_is_none() -> None:
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.DOCKER_MANIFEST,
        "config": desc(DOCKER_CONFIG, "c"),
        "layers": [desc(DOCKER_LAYER, "l")],
    }
    assert parse_manifest(encode(doc), None).referrer_artifact_type is None


# ---------------------------------------------------------------- non-distributable layers


@pytest.mark.parametrize("foreign", [FOREIGN_LAYER, NONDIST_LAYER])
def test_non_distributable_layers_are_not_blob_references(foreign: str) -> None:
    layers = [desc(OCI_LAYER, "regular"), desc(foreign, "windows-base", urls=["https://example.com/base"])]
    parsed = parse_manifest(encode(oci_manifest(layers=layers)), None)
    assert len(parsed.layers) == 2, "the layer is still part of the manifest"
    assert [d.digest for d in parsed.blob_references] == [Digest.of(b"config"), Digest.of(b"regular")]


# ---------------------------------------------------------------- hostile input


@pytest.mark.parametrize("data", [b"[" * 100_000, b'{"a":' * 100_000, b"[" * 100_000 + b"]" * 100_000])
def test_deeply_nested_json_is_invalid(data: bytes) -> None:
    assert "nested" in invalid(data).message


def many(count: int, media_type: str = OCI_LAYER) -> list[Json]:
    return [desc(media_type, f"item-{i}") for i in range(count)]


def test_the_most_layers_allowed_are_fine() -> None:
    parsed = parse_manifest(encode(oci_manifest(layers=many(MAX_DESCRIPTORS))), None)
    assert len(parsed.layers) == MAX_DESCRIPTORS


def test_too_many_layers() -> None:
    error = invalid(encode(oci_manifest(layers=many(MAX_DESCRIPTORS + 1))))
    assert f"{MAX_DESCRIPTORS + 1} layers" in error.message
    assert f"at most {MAX_DESCRIPTORS}" in error.message


def test_too_many_index_manifests() -> None:
    error = invalid(encode(oci_index(manifests=many(MAX_DESCRIPTORS + 1, mt.OCI_MANIFEST))))
    assert f"{MAX_DESCRIPTORS + 1} manifests" in error.message


def test_the_most_annotations_allowed_are_fine() -> None:
    annotations = {f"org.example.{i}": "v" for i in range(MAX_ANNOTATIONS)}
    parsed = parse_manifest(encode(oci_manifest(annotations=annotations)), None)
    assert parsed.annotations == annotations


@pytest.mark.parametrize("where", ["manifest", "layers[0]", "subject"])
def test_too_many_annotations(where: str) -> None:
    annotations = {f"org.example.{i}": "v" for i in range(MAX_ANNOTATIONS + 1)}
    if where == "manifest":
        doc = oci_manifest(annotations=annotations)
    elif where == "subject":
        doc = oci_manifest(subject=desc(mt.OCI_MANIFEST, "subject", annotations=annotations))
    else:
        doc = oci_manifest(layers=[desc(OCI_LAYER, "layer", annotations=annotations)])
    error = invalid(encode(doc))
    assert error.message.startswith(f"{where}.annotations has {MAX_ANNOTATIONS + 1} entries")
