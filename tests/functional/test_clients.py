"""Real container clients against the registry under test, checked as a user would see it.

Each test pushes the locally built busybox image (see tests/support/images.py) with one
client and reads it back with a client whose storage holds nothing yet: content must
come back byte for byte, digests must match, and the image must run and print what was
put in it. All references name the registry as ``127.0.0.1:PORT`` over plain HTTP.
"""

from __future__ import annotations

import json
import random
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.clients import (
    OCI_EMPTY,
    Buildah,
    ContainerdDaemon,
    DockerDaemon,
    Podman,
    Skopeo,
    manifest_descriptor,
    oras_push_artifact,
    oras_subject,
)
from tests.support.images import (
    DOCKER_ARCHIVE_TAG,
    HELLO_PATH,
    HELLO_TEXT,
    IMAGE_TAG,
    INDEX_TAG,
    OCI_INDEX,
    OCI_MANIFEST,
    REF_NAME,
    TestImages,
    native_architecture,
)
from tests.support.servers import RunningRegistry

pytestmark = pytest.mark.clients

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def _blob(registry: RunningRegistry, repository: str, digest: str) -> bytes:
    response = httpx.get(f"{registry.url}/v2/{repository}/blobs/{digest}", follow_redirects=True, timeout=30)
    assert response.status_code == 200, f"GET blob {digest} in {repository}: {response.status_code}"
    return response.content


def _manifest_json(registry: RunningRegistry, repository: str, reference: str) -> dict[str, Any]:
    accept = ", ".join([OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST])
    response = httpx.get(
        f"{registry.url}/v2/{repository}/manifests/{reference}", headers={"Accept": accept}, timeout=30
    )
    assert response.status_code == 200, f"GET manifest {repository}:{reference}: {response.status_code}"
    parsed: dict[str, Any] = response.json()
    return parsed


# --------------------------------------------------------------------------- skopeo


def test_skopeo_copies_a_multi_arch_index_there_and_back(
    registry: RunningRegistry, skopeo: Skopeo, test_images: TestImages, tmp_path: Path
) -> None:
    repository = f"{registry.host}/clients/skopeo/multi"
    pushed = f"docker://{repository}:v1"

    skopeo.copy(test_images.index_ref, pushed, all_images=True)

    # The index and each platform's manifest are served exactly as pushed.
    assert skopeo.inspect_raw(pushed) == test_images.blob(test_images.index.digest)
    for built in (test_images.image, test_images.foreign):
        by_digest = f"docker://{repository}@{built.manifest.digest}"
        assert skopeo.inspect_raw(by_digest) == test_images.blob(built.manifest.digest)
    info = skopeo.inspect(pushed)
    assert info["Digest"] == test_images.index.digest
    assert (info["Os"], info["Architecture"]) == ("linux", native_architecture())
    assert info["Layers"] == [test_images.image.layer.digest]
    assert skopeo.list_tags(f"docker://{repository}") == ["v1"]

    # Copied back to a new OCI layout: same index digest, every blob byte for byte.
    layout = tmp_path / "copied"
    skopeo.copy(pushed, f"oci:{layout}:copy", all_images=True)
    [entry] = json.loads((layout / "index.json").read_text())["manifests"]
    assert entry["digest"] == test_images.index.digest
    assert entry["annotations"][REF_NAME] == "copy"
    for digest in test_images.digests:
        copied = (layout / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()
        assert copied == test_images.blob(digest), f"blob {digest} differs after the round trip"


def test_skopeo_delete_removes_the_tag_and_the_digest(
    registry: RunningRegistry, skopeo: Skopeo, test_images: TestImages
) -> None:
    name = "clients/skopeo/delete"
    repository = f"{registry.host}/{name}"
    skopeo.copy(test_images.image_ref, f"docker://{repository}:keep")
    skopeo.copy(test_images.index_ref, f"docker://{repository}:gone", all_images=True)
    assert sorted(skopeo.list_tags(f"docker://{repository}")) == ["gone", "keep"]

    skopeo.delete(f"docker://{repository}:gone")  # deletes the index the tag points at
    skopeo.delete(f"docker://{repository}@{test_images.foreign.manifest.digest}")

    assert skopeo.list_tags(f"docker://{repository}") == ["keep"]
    for ref in (
        f"{repository}:gone",
        f"{repository}@{test_images.index.digest}",
        f"{repository}@{test_images.foreign.manifest.digest}",
    ):
        result = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{ref}", check=False)
        assert not result.ok, f"{ref} is still served after skopeo delete"
        assert "manifest unknown" in result.stderr.lower(), result.stderr
    for digest in (test_images.index.digest, test_images.foreign.manifest.digest):
        response = httpx.get(f"{registry.url}/v2/{name}/manifests/{digest}", headers={"Accept": OCI_INDEX})
        assert response.status_code == 404
    # The image the index listed is still tagged "keep" and untouched.
    assert skopeo.inspect_raw(f"docker://{repository}:keep") == test_images.blob(
        test_images.image.manifest.digest
    )


# --------------------------------------------------------------------------- podman and buildah


def test_podman_pushes_pulls_and_runs_the_image(
    registry: RunningRegistry, podman: Podman, test_images: TestImages
) -> None:
    name = "clients/podman/busybox"
    ref = f"{registry.host}/{name}:v1"
    image_id = podman.pull(test_images.image_ref)
    assert image_id == test_images.image.config.digest.split(":", 1)[1]
    podman.tag(image_id, ref)
    podman.push(ref)

    pushed = _manifest_json(registry, name, "v1")
    assert pushed["config"]["digest"] == test_images.image.config.digest
    assert _blob(registry, name, test_images.image.config.digest) == test_images.blob(
        test_images.image.config.digest
    )

    podman.rmi(image_id)
    assert podman.image_ids() == []
    assert podman.pull(ref) == image_id
    assert podman.run(ref, "cat", HELLO_PATH) == HELLO_TEXT


def test_buildah_builds_from_the_registry_and_podman_runs_the_result(
    registry: RunningRegistry, buildah: Buildah, podman: Podman, test_images: TestImages, tmp_path: Path
) -> None:
    base = f"{registry.host}/clients/buildah/base:v1"
    built = f"{registry.host}/clients/buildah/built:v1"
    buildah.push(buildah.pull(test_images.image_ref), f"docker://{base}")
    buildah("rmi", "--all", "--force")  # FROM must download the base from the registry

    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f"FROM {base}\n"
        "RUN echo built-by-buildah > /etc/dockyard/built.txt && cat /etc/dockyard/hello.txt\n"
        'CMD ["/bin/cat", "/etc/dockyard/built.txt"]\n'
    )
    buildah.bud(context, built)
    buildah.push(built)

    podman.pull(built)
    assert podman.run(built) == "built-by-buildah\n"
    assert podman.run(built, "cat", HELLO_PATH) == HELLO_TEXT
    manifest = _manifest_json(registry, "clients/buildah/built", "v1")
    assert manifest["mediaType"] == OCI_MANIFEST
    assert len(manifest["layers"]) == 2


# --------------------------------------------------------------------------- docker


def test_docker_push_then_pull_by_tag_and_by_digest_and_run(
    registry: RunningRegistry, dockerd: DockerDaemon, test_images: TestImages
) -> None:
    name = "clients/docker/busybox"
    repository = f"{registry.host}/{name}"
    image_id = test_images.image.config.digest
    try:
        loaded = dockerd.cli("load", "--input", str(test_images.docker_archive)).stdout
        assert DOCKER_ARCHIVE_TAG in loaded
        dockerd.cli("tag", DOCKER_ARCHIVE_TAG, f"{repository}:v1")
        pushed = dockerd.cli("push", f"{repository}:v1").stdout
        match = re.search(r"v1: digest: (sha256:[0-9a-f]{64}) size: (\d+)", pushed)
        assert match, pushed
        digest = match.group(1)
        served = manifest_descriptor(registry.url, name, "v1")
        assert (served.digest, served.size, served.media_type) == (
            digest,
            int(match.group(2)),
            DOCKER_MANIFEST,
        )

        dockerd.cli("rmi", f"{repository}:v1", DOCKER_ARCHIVE_TAG)
        assert not dockerd.cli("image", "inspect", image_id, check=False).ok, "image still present after rmi"

        dockerd.cli("pull", f"{repository}:v1")
        inspected = json.loads(dockerd.cli("image", "inspect", f"{repository}:v1").stdout)[0]
        assert inspected["Id"] == image_id
        assert f"{repository}@{digest}" in inspected["RepoDigests"]
        assert dockerd.cli("run", "--rm", "--network", "none", f"{repository}:v1").stdout == HELLO_TEXT

        dockerd.cli("rmi", f"{repository}:v1")
        assert not dockerd.cli("image", "inspect", image_id, check=False).ok, "image still present after rmi"
        dockerd.cli("pull", f"{repository}@{digest}")
        by_digest = dockerd.cli(
            "run", "--rm", "--network", "none", f"{repository}@{digest}", "cat", HELLO_PATH
        )
        assert by_digest.stdout == HELLO_TEXT
    finally:
        dockerd.cli("rmi", "--force", image_id, check=False)


# --------------------------------------------------------------------------- containerd


def test_ctr_pushes_an_index_to_two_repositories_and_pulls_it_back(
    registry: RunningRegistry, containerd: ContainerdDaemon, test_images: TestImages
) -> None:
    source = f"{registry.host}/clients/ctr/source"
    copy = f"{registry.host}/clients/ctr/copy:v1"
    importer = containerd.new_namespace()
    containerd.ctr(
        importer, "images", "import", "--all-platforms", "--base-name", source, str(test_images.oci_archive)
    )
    imported = containerd.ctr(importer, "images", "ls", "--quiet").stdout.split()
    assert sorted(imported) == [f"{source}:{IMAGE_TAG}", f"{source}:{INDEX_TAG}"]

    containerd.ctr(importer, "images", "push", "--plain-http", f"{source}:{INDEX_TAG}")
    assert manifest_descriptor(registry.url, "clients/ctr/source", INDEX_TAG) == test_images.index
    containerd.ctr(importer, "images", "tag", f"{source}:{INDEX_TAG}", copy)
    containerd.ctr(importer, "images", "push", "--plain-http", copy)
    assert manifest_descriptor(registry.url, "clients/ctr/copy", "v1") == test_images.index

    puller = containerd.new_namespace()  # nothing cached: every blob comes from the registry
    containerd.ctr(puller, "images", "pull", "--plain-http", "--all-platforms", copy)
    assert test_images.index.digest in containerd.ctr(puller, "images", "ls").stdout
    # containerd verifies each digest as it fetches; the JSON blobs are also compared as text.
    assert set(test_images.digests) <= set(containerd.ctr(puller, "content", "ls", "--quiet").stdout.split())
    layers = {test_images.image.layer.digest, test_images.foreign.layer.digest}
    for digest in set(test_images.digests) - layers:
        fetched = containerd.ctr(puller, "content", "get", digest).stdout
        assert fetched == test_images.blob(digest).decode(), f"{digest} differs after ctr pull"
    run_id = f"dockyard-{uuid.uuid4().hex[:8]}"
    assert containerd.ctr(puller, "run", "--rm", copy, run_id, "cat", HELLO_PATH).stdout == HELLO_TEXT


# --------------------------------------------------------------------------- oras


ARTIFACT_TYPE = "application/vnd.dockyard.test.notes.v1"
SIGNATURE_TYPE = "application/vnd.dockyard.test.signature.v1"
ATTESTATION_CONFIG_TYPE = "application/vnd.dockyard.test.attestation.config.v1+json"


def test_oras_pushes_and_pulls_artifacts(registry: RunningRegistry, oras_client: Any, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"release notes for the dockyard test artifact\n")
    target = f"{registry.host}/clients/oras/notes:v1"
    oras_push_artifact(oras_client, target, notes, media_type="text/plain", artifact_type=ARTIFACT_TYPE)

    manifest = _manifest_json(registry, "clients/oras/notes", "v1")
    assert manifest["artifactType"] == ARTIFACT_TYPE
    assert manifest["config"]["mediaType"] == OCI_EMPTY
    [pulled] = oras_client.pull(target=target, outdir=str(tmp_path / "pulled"))
    assert Path(pulled).read_bytes() == notes.read_bytes()

    # A 3 MiB file through oras-py's chunked upload (POST, PATCH x3, PUT).
    big = tmp_path / "big.bin"
    big.write_bytes(random.Random(7).randbytes(3 * 1024 * 1024))
    big_target = f"{registry.host}/clients/oras/big:v1"
    oras_client.push(
        target=big_target,
        files=[f"{big}:application/octet-stream"],
        disable_path_validation=True,
        do_chunked=True,
        chunk_size=1024 * 1024,
        quiet=True,
    )
    [pulled_big] = oras_client.pull(target=big_target, outdir=str(tmp_path / "pulled-big"))
    assert Path(pulled_big).read_bytes() == big.read_bytes()


def test_oras_referrers_are_listed(
    registry: RunningRegistry, oras_client: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if not registry.is_dockyard:
        request.applymarker(
            pytest.mark.xfail(
                reason="Distribution 2.8 has no referrers API", raises=AssertionError, strict=True
            )
        )
    name = "clients/oras/referred"
    repository = f"{registry.host}/{name}"
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"the subject artifact\n")
    oras_push_artifact(
        oras_client, f"{repository}:v1", notes, media_type="text/plain", artifact_type=ARTIFACT_TYPE
    )
    subject = manifest_descriptor(registry.url, name, "v1")

    # Referrer 1: explicit artifactType, empty config, annotations.
    signature = tmp_path / "signature.sig"
    signature.write_bytes(b"not really a signature\n")
    put_headers = oras_push_artifact(
        oras_client,
        f"{repository}:signature",
        signature,
        media_type="application/octet-stream",
        artifact_type=SIGNATURE_TYPE,
        subject=subject,
        annotations={"org.example.signer": "dockyard-tests"},
    )
    # A registry that understands ``subject`` says so on the manifest PUT.
    assert {k.lower(): v for k, v in put_headers.items()}.get("oci-subject") == subject.digest
    # Referrer 2: oras-py's own push, whose artifact type is the config's media type.
    attestation = tmp_path / "attestation.json"
    attestation.write_bytes(b'{"predicate": "tested"}\n')
    attestation_config = tmp_path / "attestation-config.json"
    attestation_config.write_bytes(b'{"kind": "attestation"}')
    oras_client.push(
        target=f"{repository}:attestation",
        files=[f"{attestation}:application/json"],
        manifest_config=f"{attestation_config}:{ATTESTATION_CONFIG_TYPE}",
        subject=oras_subject(subject),
        disable_path_validation=True,
        quiet=True,
    )
    signature_desc = manifest_descriptor(registry.url, name, "signature")
    attestation_desc = manifest_descriptor(registry.url, name, "attestation")

    response = httpx.get(f"{registry.url}/v2/{name}/referrers/{subject.digest}", timeout=30)
    assert response.status_code == 200, f"referrers: {response.status_code} {response.text[:200]}"
    assert response.headers["Content-Type"].split(";")[0] == OCI_INDEX
    listing = response.json()
    assert listing["schemaVersion"] == 2
    assert listing["mediaType"] == OCI_INDEX
    found = {entry["digest"]: entry for entry in listing["manifests"]}
    assert set(found) == {signature_desc.digest, attestation_desc.digest}
    assert found[signature_desc.digest]["artifactType"] == SIGNATURE_TYPE
    assert found[signature_desc.digest]["annotations"] == {"org.example.signer": "dockyard-tests"}
    assert found[attestation_desc.digest]["artifactType"] == ATTESTATION_CONFIG_TYPE
    for desc in (signature_desc, attestation_desc):
        assert (found[desc.digest]["mediaType"], found[desc.digest]["size"]) == (OCI_MANIFEST, desc.size)

    filtered = httpx.get(
        f"{registry.url}/v2/{name}/referrers/{subject.digest}",
        params={"artifactType": SIGNATURE_TYPE},
        timeout=30,
    )
    assert filtered.status_code == 200
    if "artifactType" in filtered.headers.get("OCI-Filters-Applied", ""):
        assert [entry["digest"] for entry in filtered.json()["manifests"]] == [signature_desc.digest]

    nothing = httpx.get(f"{registry.url}/v2/{name}/referrers/sha256:{'0' * 64}", timeout=30)
    assert nothing.status_code == 200
    assert nothing.json()["manifests"] == []
