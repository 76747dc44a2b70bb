from __future__ import annotations

import json

import pytest

from dockyard.app.services import Services
from dockyard.auth.base import Principal
from dockyard.oci import mediatypes as mt
from dockyard.oci.digest import Digest
from dockyard.oci.errors import InvalidDigest, InvalidManifest, InvalidTag
from dockyard.registry.errors import (
    DigestMismatch,
    ManifestBlobUnknown,
    ManifestTooLarge,
    ManifestUnknown,
    NameUnknown,
)
from dockyard.registry.events import Actor, Event, ManifestDeleted, ManifestPushed, TagDeleted
from dockyard.registry.http.errors import ErrorCode, translate
from tests.support.oci import (
    EMPTY_CONFIG,
    Blob,
    artifact,
    docker_manifest,
    image_config,
    oci_index,
    oci_manifest,
    random_blob,
)
from tests.unit.registry.factories import push_blob, push_manifest

REPO = "team/app"
# For checks that refuse a request before it reaches the database, one backend is enough.
validation_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def unknown(services: Services, reference: str, repository: str = REPO) -> None:
    with pytest.raises(ManifestUnknown):
        await services.manifests.get(repository, reference)


async def test_put_and_get_return_the_exact_bytes(services: Services) -> None:
    config, layer = image_config(), random_blob(300)
    await push_blob(services, REPO, config)
    await push_blob(services, REPO, layer)
    # Odd but valid JSON: key order, whitespace and a trailing newline must survive.
    body = (
        '{\n   "layers" : [ ' + json.dumps(layer.descriptor()) + " ],\n"
        '"config":' + json.dumps(config.descriptor()) + ',  "schemaVersion":2,\n'
        '\t"mediaType": "' + mt.OCI_MANIFEST + '"}\n'
    ).encode()
    result = await services.manifests.put(REPO, "v1", body, mt.OCI_MANIFEST, actor=None)
    assert result.digest == Digest.of(body)
    assert result.subject is None
    for reference in ("v1", result.digest):
        stored = await services.manifests.get(REPO, reference)
        assert stored.content == body
        assert stored.digest == Digest.of(body)
        assert stored.media_type == mt.OCI_MANIFEST
        assert stored.size == len(body)


async def test_put_by_digest(services: Services) -> None:
    manifest = oci_manifest()
    digest = await push_manifest(services, REPO, manifest, manifest.digest)
    assert (await services.manifests.get(REPO, digest)).content == manifest.body
    assert await services.manifests.tags(REPO, None, None) == []


async def test_put_by_a_digest_that_does_not_match(services: Services) -> None:
    manifest = oci_manifest()
    for blob in manifest.blobs:
        await push_blob(services, REPO, blob)
    with pytest.raises(DigestMismatch):
        await services.manifests.put(
            REPO, Digest.of(b"other"), manifest.body, manifest.media_type, actor=None
        )
    await unknown(services, manifest.digest)


async def test_put_by_sha512_digest(services: Services) -> None:
    manifest = oci_manifest()
    for blob in manifest.blobs:
        await push_blob(services, REPO, blob)
    digest = Digest.of(manifest.body, "sha512")
    result = await services.manifests.put(REPO, digest, manifest.body, manifest.media_type, actor=None)
    assert result.digest == digest
    assert (await services.manifests.get(REPO, digest)).content == manifest.body


@validation_only
@pytest.mark.parametrize("reference", ["-bad", "a" * 129, "sha256:short"])
async def test_put_with_an_invalid_reference(services: Services, reference: str) -> None:
    manifest = oci_manifest()
    with pytest.raises((InvalidTag, InvalidDigest)):
        await services.manifests.put(REPO, reference, manifest.body, manifest.media_type, actor=None)


@validation_only
async def test_put_of_an_invalid_manifest(services: Services) -> None:
    with pytest.raises(InvalidManifest):
        await services.manifests.put(REPO, "v1", b'{"schemaVersion": 2}', mt.OCI_MANIFEST, actor=None)


@validation_only
async def test_put_larger_than_the_limit(services: Services) -> None:
    body = b" " * (services.manifests.max_bytes + 1)
    with pytest.raises(ManifestTooLarge) as info:
        await services.manifests.put(REPO, "v1", body, mt.OCI_MANIFEST, actor=None)
    answer = translate(info.value)
    assert answer is not None
    assert answer.code is ErrorCode.MANIFEST_TOO_LARGE
    assert answer.code.status == 413
    assert answer.code.wire_code == "MANIFEST_INVALID"


async def test_the_same_manifest_pushed_twice(services: Services) -> None:
    manifest = oci_manifest()
    await push_manifest(services, REPO, manifest, "a")
    await push_manifest(services, REPO, manifest, "b")
    assert await services.manifests.count() == 1
    assert await services.manifests.tags(REPO, None, None) == ["a", "b"]


async def test_tag_moves_to_the_newest_manifest(services: Services) -> None:
    first, second = oci_manifest(), oci_manifest()
    await push_manifest(services, REPO, first, "latest")
    await push_manifest(services, REPO, second, "latest")
    assert (await services.manifests.get(REPO, "latest")).digest == second.digest
    assert (await services.manifests.get(REPO, first.digest)).content == first.body, "still there by digest"
    assert await services.manifests.tags(REPO, None, None) == ["latest"]


async def test_tags_are_per_repository(services: Services) -> None:
    manifest = oci_manifest()
    await push_manifest(services, REPO, manifest, "v1")
    await unknown(services, "v1", "team/other")
    await unknown(services, manifest.digest, "team/other")


async def test_delete_by_tag_keeps_the_manifest(services: Services) -> None:
    manifest = oci_manifest()
    await push_manifest(services, REPO, manifest, "v1")
    await services.manifests.put(REPO, "v2", manifest.body, manifest.media_type, actor=None)
    await services.manifests.delete(REPO, "v1", actor=None)
    await unknown(services, "v1")
    assert (await services.manifests.get(REPO, "v2")).digest == manifest.digest
    assert (await services.manifests.get(REPO, manifest.digest)).content == manifest.body


async def test_delete_by_digest_removes_the_manifest_and_its_tags(services: Services) -> None:
    manifest, other = oci_manifest(), oci_manifest()
    await push_manifest(services, REPO, manifest, "v1")
    await services.manifests.put(REPO, "v2", manifest.body, manifest.media_type, actor=None)
    await push_manifest(services, REPO, other, "keep")
    await services.manifests.delete(REPO, manifest.digest, actor=None)
    await unknown(services, manifest.digest)
    await unknown(services, "v1")
    await unknown(services, "v2")
    assert await services.manifests.tags(REPO, None, None) == ["keep"]


async def test_delete_unknown(services: Services) -> None:
    await push_manifest(services, REPO, oci_manifest(), "v1")
    for reference in ("nope", Digest.of(b"nope")):
        with pytest.raises(ManifestUnknown):
            await services.manifests.delete(REPO, reference, actor=None)
    with pytest.raises(NameUnknown):
        await services.manifests.delete("no/such/repo", "v1", actor=None)


async def test_missing_layer_is_manifest_blob_unknown(services: Services) -> None:
    config, present, missing = image_config(), random_blob(), random_blob()
    await push_blob(services, REPO, config)
    await push_blob(services, REPO, present)
    manifest = oci_manifest(config, [present, missing])
    with pytest.raises(ManifestBlobUnknown) as info:
        await services.manifests.put(REPO, "v1", manifest.body, manifest.media_type, actor=None)
    assert info.value.digest == missing.digest
    await unknown(services, "v1")
    await unknown(services, manifest.digest)


async def test_missing_config_is_manifest_blob_unknown(services: Services) -> None:
    layer = random_blob()
    await push_blob(services, REPO, layer)
    manifest = oci_manifest(image_config(), [layer])
    with pytest.raises(ManifestBlobUnknown):
        await services.manifests.put(REPO, "v1", manifest.body, manifest.media_type, actor=None)


async def test_a_blob_in_another_repository_does_not_count(services: Services) -> None:
    manifest = oci_manifest()
    for blob in manifest.blobs:
        await push_blob(services, "team/other", blob)
    with pytest.raises(ManifestBlobUnknown):
        await services.manifests.put(REPO, "v1", manifest.body, manifest.media_type, actor=None)


async def test_index_with_a_missing_child_is_manifest_blob_unknown(services: Services) -> None:
    present, missing = oci_manifest(), oci_manifest()
    await push_manifest(services, REPO, present)
    for blob in missing.blobs:
        await push_blob(services, REPO, blob)  # blobs, but not the child manifest itself
    index = oci_index([present, missing])
    with pytest.raises(ManifestBlobUnknown) as info:
        await services.manifests.put(REPO, "v1", index.body, index.media_type, actor=None)
    assert info.value.digest == missing.digest


async def test_index_of_pushed_children(services: Services) -> None:
    index = oci_index([oci_manifest(), oci_manifest()])
    digest = await push_manifest(services, REPO, index, "multi")
    stored = await services.manifests.get(REPO, "multi")
    assert stored.digest == digest
    assert stored.media_type == mt.OCI_INDEX
    assert stored.content == index.body


async def test_non_distributable_layers_need_not_be_pushed(services: Services) -> None:
    config = image_config()
    foreign = Blob(b"windows base layer", "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip")
    await push_blob(services, REPO, config)
    manifest = oci_manifest(config, [foreign])
    result = await services.manifests.put(REPO, "win", manifest.body, manifest.media_type, actor=None)
    assert result.digest == manifest.digest


async def test_docker_manifest(services: Services) -> None:
    manifest = docker_manifest()
    await push_manifest(services, REPO, manifest, "docker")
    assert (await services.manifests.get(REPO, "docker")).media_type == mt.DOCKER_MANIFEST


async def test_referrers_and_artifact_type_filter(services: Services) -> None:
    subject = oci_manifest()
    await push_manifest(services, REPO, subject, "v1")
    sbom = artifact(subject, "application/vnd.example.sbom", annotations={"created": "today"})
    signature = artifact(subject, "application/vnd.example.signature")
    legacy_config = Blob(b'{"legacy": true}', "application/vnd.example.legacy.config+json")
    legacy = oci_manifest(legacy_config, [random_blob(16)], subject=subject)  # no artifactType
    unrelated = artifact(oci_manifest(), "application/vnd.example.sbom")
    for referrer in (sbom, signature, legacy, unrelated):
        result_digest = await push_manifest(services, REPO, referrer)
        assert result_digest == referrer.digest

    everything = await services.manifests.referrers(REPO, Digest(subject.digest), None)
    by_digest = {d["digest"]: d for d in everything}
    assert set(by_digest) == {sbom.digest, signature.digest, legacy.digest}
    assert by_digest[sbom.digest] == {
        "mediaType": mt.OCI_MANIFEST,
        "digest": sbom.digest,
        "size": sbom.size,
        "artifactType": "application/vnd.example.sbom",
        "annotations": {"created": "today"},
    }
    assert by_digest[legacy.digest]["artifactType"] == "application/vnd.example.legacy.config+json"

    sboms = await services.manifests.referrers(REPO, Digest(subject.digest), "application/vnd.example.sbom")
    assert [d["digest"] for d in sboms] == [sbom.digest]
    assert await services.manifests.referrers(REPO, Digest(subject.digest), "application/none") == []
    assert await services.manifests.referrers(REPO, Digest.of(b"no such subject"), None) == []


async def test_put_reports_the_subject(services: Services) -> None:
    subject = {"mediaType": mt.OCI_MANIFEST, "digest": Digest.of(b"absent"), "size": 6}
    referrer = artifact(subject, "application/vnd.example.sbom")
    for blob in referrer.blobs:
        await push_blob(services, REPO, blob)
    result = await services.manifests.put(
        REPO, referrer.digest, referrer.body, referrer.media_type, actor=None
    )
    assert result.subject == Digest.of(b"absent"), "a subject need not exist in the repository"
    referrers = await services.manifests.referrers(REPO, Digest.of(b"absent"), None)
    assert [d["digest"] for d in referrers] == [referrer.digest]


async def test_referrers_of_an_unknown_repository(services: Services) -> None:
    with pytest.raises(NameUnknown):
        await services.manifests.referrers("no/such/repo", Digest.of(b"x"), None)


async def test_artifact_with_an_empty_config(services: Services) -> None:
    subject = oci_manifest()
    await push_manifest(services, REPO, subject)
    referrer = artifact(subject, "application/vnd.example.thing")
    assert EMPTY_CONFIG in referrer.blobs
    await push_manifest(services, REPO, referrer)
    found = await services.manifests.referrers(REPO, Digest(subject.digest), None)
    assert found[0]["artifactType"] == "application/vnd.example.thing"


async def test_tag_listing_and_catalog_pagination(services: Services) -> None:
    manifest = oci_manifest()
    for tag in ("c", "a", "B", "b"):
        await push_manifest(services, REPO, manifest, tag)
    await push_manifest(services, "team/other", oci_manifest(), "x")
    assert await services.manifests.tags(REPO, None, None) == ["B", "a", "b", "c"]
    assert await services.manifests.tags(REPO, 2, None) == ["B", "a"]
    assert await services.manifests.tags(REPO, 2, "a") == ["b", "c"]
    assert await services.manifests.catalog(None, None) == ["team/app", "team/other"]
    assert await services.manifests.catalog(1, "team/app") == ["team/other"]


async def test_events(services: Services) -> None:
    seen: list[Event] = []

    async def listener(event: Event) -> None:
        seen.append(event)

    async def broken(event: Event) -> None:
        raise RuntimeError("a listener's failure must not fail the push")

    services.events.subscribe(broken)
    services.events.subscribe(listener)
    manifest = oci_manifest()
    alice = Actor(Principal("alice", kind="user", id=7), "192.0.2.1")
    await push_manifest(services, REPO, manifest, "v1")  # by the system: no one acts
    await services.manifests.delete(REPO, "v1", actor=alice)
    await services.manifests.delete(REPO, manifest.digest, actor=alice)
    assert seen == [
        ManifestPushed(REPO, manifest.digest, mt.OCI_MANIFEST, "v1", manifest.size, None),
        TagDeleted(REPO, "v1", alice),
        ManifestDeleted(REPO, manifest.digest, alice),
    ]
