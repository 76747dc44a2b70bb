"""Signatures and attestations are not versions (#18): skopeo pushes an image, then a
cosign-style signature (a ``sha256-<hex>.sig`` tag holding a simple-signing layer, copied by
skopeo from a hand-built OCI layout) and an OCI 1.1 referrer (an SPDX SBOM attached by digest,
as ``oras attach`` does). The catalog lists one version, which shows both (API and CLI);
deleting the version removes them from /v2, and they never come back as versions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import Cli
from tests.support.clients import Skopeo, containers_login, make_oras_client_as, oras_push_artifact
from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api, oci_as, unique
from tests.support.images import (
    OCI_CONFIG,
    OCI_MANIFEST,
    Descriptor,
    TestImages,
    canonical_json,
    sha256_digest,
)
from tests.support.servers import RunningRegistry

pytestmark = pytest.mark.clients

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SPDX = "application/spdx+json"


def cosign_signature_layout(root: Path, subject: str, reference: str) -> str:
    """An OCI layout holding the manifest cosign pushes as ``sha256-<hex>.sig``; its digest."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')

    def put(data: bytes) -> tuple[str, int]:
        digest = sha256_digest(data)
        (blobs / digest.split(":", 1)[1]).write_bytes(data)
        return digest, len(data)

    payload = canonical_json(
        {
            "critical": {
                "identity": {"docker-reference": reference},
                "image": {"docker-manifest-digest": subject},
                "type": "cosign container image signature",
            },
            "optional": None,
        }
    )
    layer, layer_size = put(payload)
    config, config_size = put(canonical_json({"architecture": "", "os": "", "rootfs": {"type": "layers"}}))
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config, "size": config_size},
            "layers": [
                {
                    "mediaType": SIMPLE_SIGNING,
                    "digest": layer,
                    "size": layer_size,
                    "annotations": {"dev.cosignproject.cosign/signature": "MEUCIQDtest"},
                }
            ],
        }
    )
    digest, size = put(manifest)
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": digest,
                "size": size,
                "annotations": {"org.opencontainers.image.ref.name": "sig"},
            }
        ],
    }
    (root / "index.json").write_text(json.dumps(index))
    return digest


def versions(api: Api, name: str) -> list[str]:
    return [v["version"] for v in api.call("GET", f"/images/{name}")["versions"]]


def test_a_signature_and_a_referrer_are_shown_on_their_version_and_deleted_with_it(
    token_registry: RunningRegistry, test_images: TestImages, tmp_path: Path
) -> None:
    user = unique("signer")
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as admin:
        admin.create_user(user)
    host = token_registry.host
    name = f"{user}/tool"
    skopeo = Skopeo(tmp_path / "skopeo")
    containers_login(skopeo, host, user, PASSWORD)
    skopeo.copy(test_images.image_ref, f"docker://{host}/{name}:1.0")

    with Api.connect(token_registry, user, PASSWORD) as api:
        digest = api.call("GET", f"/images/{name}/versions/1.0")["digest"]
        assert isinstance(digest, str)
        assert digest.startswith("sha256:")
        hex_ = digest.split(":", 1)[1]

        signature = cosign_signature_layout(tmp_path / "sig", digest, f"{host}/{name}")
        skopeo.copy(f"oci:{tmp_path / 'sig'}:sig", f"docker://{host}/{name}:sha256-{hex_}.sig")
        sbom = tmp_path / "sbom.spdx.json"
        sbom.write_text(json.dumps({"spdxVersion": "SPDX-2.3", "name": name}))
        oras = make_oras_client_as(host, user, PASSWORD)
        with oci_as(token_registry, user, PASSWORD) as oci:
            served = oci.get_manifest(name, "1.0")
            subject_type = served.headers["content-type"].split(";", 1)[0]

        headers = oras_push_artifact(
            oras,
            f"{host}/{name}",
            sbom,
            media_type=SPDX,
            artifact_type=SPDX,
            subject=Descriptor(subject_type, digest, len(served.content)),
            attach=True,
        )
        put = {k.lower(): v for k, v in headers.items()}
        referrer = put["docker-content-digest"]
        assert put["oci-subject"] == digest

        # One version; the signature and the SBOM are on it, not beside it.
        assert versions(api, name) == ["1.0"]
        listed = api.call("GET", "/versions", params={"workspace": user})["items"]
        assert [v["version"] for v in listed] == ["1.0"]
        assert {s["digest"] for s in listed[0]["signatures"]} == {signature, referrer}
        view = api.call("GET", f"/images/{name}/versions/1.0")
        attached: dict[str, Any] = {s["digest"]: s for s in view["signatures"]}
        assert attached.keys() == {signature, referrer}
        assert attached[signature]["kind"] == "signature"
        assert attached[signature]["tag"] == f"sha256-{hex_}.sig"
        assert attached[signature]["media_type"] == OCI_MANIFEST
        assert attached[referrer]["kind"] == "sbom"
        assert attached[referrer]["tag"] is None
        assert attached[referrer]["artifact_type"] == SPDX
        assert all(s["size"] > 0 and s["pushed_at"] > 0 for s in attached.values())

    cli = Cli(token_registry, tmp_path / "cli.toml")
    cli.ok("login", token_registry.url, "-u", user, "--password-stdin", stdin=PASSWORD + "\n")
    shown = cli.ok("version", "show", name, "1.0")
    assert "attached: signed, 1 SBOM" in shown
    assert f"tag sha256-{hex_}.sig" in shown
    assert f"referrer, {SPDX}" in shown
    assert {s["digest"] for s in cli.json("version", "show", name, "1.0")["signatures"]} == {
        signature,
        referrer,
    }

    with oci_as(token_registry, user, PASSWORD) as oci:
        assert oci.http.get(f"/v2/{name}/referrers/{digest}").json()["manifests"][0]["digest"] == referrer
        with Api.connect(token_registry, user, PASSWORD) as api:
            api.call("DELETE", f"/images/{name}/versions/1.0", 204)
            assert versions(api, name) == []
        assert oci.http.get(f"/v2/{name}/manifests/sha256-{hex_}.sig").status_code == 404
        assert oci.http.get(f"/v2/{name}/manifests/{signature}").status_code == 404
        assert oci.http.get(f"/v2/{name}/manifests/{referrer}").status_code == 404
        assert oci.http.get(f"/v2/{name}/referrers/{digest}").json()["manifests"] == []
        assert oci.http.get(f"/v2/{name}/tags/list").json()["tags"] in (None, [])
        # A signature pushed again for the digest that is gone is still not a version.
        assert oci.http.get(f"/v2/{name}/manifests/{digest}").status_code == 200
    skopeo.copy(f"oci:{tmp_path / 'sig'}:sig", f"docker://{host}/{name}:sha256-{hex_}.sig")
    with Api.connect(token_registry, user, PASSWORD) as api:
        assert versions(api, name) == []
