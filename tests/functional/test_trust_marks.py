"""Trust marks end to end against ``dockyard serve`` on SQLite and PostgreSQL: an admin marks a
workspace official (nobody else may); cosign signatures pushed over /v2 are verified against
the workspace's trusted keys (a tampered one is invalid, an untrusted key's is only attached);
SBOM packages are listed; every mark filters the image list in SQL and private images' marks
never leak."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.support.catalog import CatalogUser, new_user, problem
from tests.support.cosign import ecdsa_key, ed25519_key, payload, public_pem, push_signature, sign
from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api, oci_as
from tests.support.oci import OCI_MANIFEST, Blob, Manifest, OciClient, artifact, encode, oci_manifest
from tests.support.servers import RunningRegistry

Json = dict[str, Any]
SPDX = "application/spdx+json"
CYCLONEDX = "application/vnd.cyclonedx+json"


def push_image(oci: OciClient, repository: str, tag: str) -> tuple[str, Json]:
    """Push a small image; its digest and descriptor (for referrers)."""
    manifest = oci_manifest()
    oci.push(repository, manifest, tag)
    return manifest.digest, {"mediaType": OCI_MANIFEST, "digest": manifest.digest, "size": manifest.size}


def marks_of(user: CatalogUser, image: str, version: str = "1.0") -> Json:
    found: Json = user.version(image, version)["marks"]
    return found


def test_an_admin_marks_a_workspace_official_and_its_images_show_and_filter_by_it(
    token_registry: RunningRegistry,
) -> None:
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as admin:
        owner = new_user(admin, "official")
        with (
            CatalogUser.connect(token_registry, owner) as own,
            oci_as(token_registry, owner, PASSWORD) as oci,
        ):
            image = f"{owner}/tool"  # in the owner's personal workspace
            push_image(oci, image, "1.0")
            assert own.image(image)["marks"]["marks"][0] == "user"
            refused = own.http.put(f"/workspaces/{owner}/mark", json={"mark": "official"})
            assert "administrator" in problem(refused, 403)
            assert own.image_names(mark="official", workspace=owner) == []

            marked = admin.call("PUT", f"/workspaces/{owner}/mark", json={"mark": "official"})
            assert marked == {"workspace": owner, "mark": "official"}
            shown = own.image(image)
            assert shown["marks"]["marks"][0] == "official"
            assert shown["versions"][0]["marks"]["marks"][0] == "official"
            assert own.image_names(mark="official", workspace=owner) == [image]
            assert own.image_names(mark="verified", workspace=owner) == []
            assert own.api.call("GET", f"/workspaces/{owner}/mark")["mark"] == "official"
            logged = admin.call("GET", "/audit", params={"action": "workspace.mark"})
            assert any(e["target"] == owner and e["detail"]["mark"] == "official" for e in logged)

            admin.call("PUT", f"/workspaces/{owner}/mark", json={"mark": "verified"})
            assert own.image_names(mark="verified", workspace=owner) == [image]
            admin.call("PUT", f"/workspaces/{owner}/mark", json={"mark": "none"})
            assert own.image_names(mark="official", workspace=owner) == []
            assert own.image(image)["marks"]["marks"][0] == "user"


def test_cosign_signatures_are_verified_against_the_workspaces_trusted_keys(
    token_registry: RunningRegistry,
) -> None:
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as admin:
        owner, outsider = new_user(admin, "signer"), new_user(admin, "outsider")
    trusted, untrusted = ecdsa_key(), ed25519_key()
    with CatalogUser.connect(token_registry, owner) as own, oci_as(token_registry, owner, PASSWORD) as oci:
        key = own.api.call(
            "POST",
            f"/workspaces/{owner}/trusted-keys",
            201,
            json={"name": "release", "pem": public_pem(trusted)},
        )
        assert key["algorithm"] == "ecdsa-p256"
        assert key["key_id"].startswith("sha256:")
        bad_key = own.http.post(f"/workspaces/{owner}/trusted-keys", json={"name": "x", "pem": "not a key"})
        assert "PEM" in problem(bad_key, 422)

        host = token_registry.host
        images = {}
        for label in ("good", "referrer", "untrusted", "tampered", "forged", "unsigned"):
            images[label] = (f"{owner}/{label}", *push_image(oci, f"{owner}/{label}", "1.0"))

        name, digest, _ = images["good"]
        data = payload(f"{host}/{name}", digest)
        push_signature(oci, name, digest, data, sign(trusted, data))
        name, digest, subject = images["referrer"]
        data = payload(f"{host}/{name}", digest)
        push_signature(oci, name, digest, data, sign(trusted, data), referrer=subject)
        name, digest, _ = images["untrusted"]
        data = payload(f"{host}/{name}", digest)
        push_signature(oci, name, digest, data, sign(untrusted, data))
        # Tampered: a valid signature by the trusted key, over a payload naming another image.
        name, digest, _ = images["tampered"]
        elsewhere = images["good"][1]
        data = payload(f"{host}/{name}", elsewhere)
        push_signature(oci, name, digest, data, sign(trusted, data))
        # Forged: the payload names the image but the signature is not one (bytes changed).
        name, digest, _ = images["forged"]
        data = payload(f"{host}/{name}", digest)
        push_signature(oci, name, digest, data, "AAAA" + sign(trusted, data)[4:])

        def state(label: str) -> str:
            found: str = marks_of(own, images[label][0])["signature"]
            return found

        assert state("good") == "verified"
        assert marks_of(own, images["good"][0])["signed_by"] == key["key_id"]
        assert "signed" in marks_of(own, images["good"][0])["marks"]
        assert state("referrer") == "verified"
        assert state("untrusted") == "unverified"  # shown as "signature attached", not signed
        assert "signed" not in marks_of(own, images["untrusted"][0])["marks"]
        assert state("tampered") == "invalid"
        assert state("forged") == "invalid"
        assert state("unsigned") == "none"
        signed = sorted([images["good"][0], images["referrer"][0]])
        assert own.image_names(mark="signed", workspace=owner) == signed
        assert own.image(images["tampered"][0])["marks"]["signature"] == "invalid"

        # Trusting the other key verifies what it signed; removing it undoes that.
        second = own.api.call(
            "POST",
            f"/workspaces/{owner}/trusted-keys",
            201,
            json={"name": "ci", "pem": public_pem(untrusted)},
        )
        assert second["algorithm"] == "ed25519"
        assert state("untrusted") == "verified"
        assert own.image_names(mark="signed", workspace=owner) == sorted([*signed, images["untrusted"][0]])
        own.api.call("DELETE", f"/workspaces/{owner}/trusted-keys/{second['key_id']}", 204)
        assert state("untrusted") == "unverified"
        assert [k["name"] for k in own.api.call("GET", f"/workspaces/{owner}/trusted-keys")] == ["release"]

    with CatalogUser.connect(token_registry, outsider) as other:
        # The images are private: no mark, no signature state, no filter hit leaks.
        assert not [n for n in other.image_names(mark="signed") if n.startswith(owner + "/")]
        assert problem(other.http.get(f"/images/{images['good'][0]}/versions/1.0"), 404)
        refused = other.http.post(
            f"/workspaces/{owner}/trusted-keys", json={"name": "x", "pem": public_pem(untrusted)}
        )
        assert problem(refused, 403)
    anonymous = httpx.get(f"{token_registry.url}/api/v1/images", params={"mark": "signed"}, timeout=30)
    assert all(not item["name"].startswith(owner) for item in anonymous.json()["items"])


def test_an_sbom_lists_its_packages_and_private_sboms_do_not_leak(token_registry: RunningRegistry) -> None:
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as admin:
        owner, outsider = new_user(admin, "sbom"), new_user(admin, "outsider")
    with CatalogUser.connect(token_registry, owner) as own, oci_as(token_registry, owner, PASSWORD) as oci:
        spdx_image, cdx_image, plain = f"{owner}/spdx", f"{owner}/cdx", f"{owner}/plain"
        _, subject = push_image(oci, spdx_image, "1.0")
        spdx = {
            "spdxVersion": "SPDX-2.3",
            "packages": [
                {"name": "openssl", "versionInfo": "3.0.13"},
                {"name": "zlib", "versionInfo": "1.3"},
            ],
        }
        attached = artifact(subject, SPDX, blobs=[Blob(json.dumps(spdx).encode(), SPDX)])
        oci.push(spdx_image, attached)
        cdx_digest, _ = push_image(oci, cdx_image, "1.0")
        cdx = {"bomFormat": "CycloneDX", "components": [{"name": "busybox", "version": "1.36"}]}
        document = artifact(
            {"mediaType": OCI_MANIFEST, "digest": cdx_digest, "size": 1},
            CYCLONEDX,
            blobs=[Blob(json.dumps(cdx).encode(), CYCLONEDX)],
        )
        # cosign attach sbom: the SBOM under cosign's sha256-<hex>.sbom tag, no subject field
        plain_doc = json.loads(document.body)
        del plain_doc["subject"], plain_doc["artifactType"]
        tagged = Manifest(encode(plain_doc), OCI_MANIFEST, document.blobs)
        oci.push(cdx_image, tagged, "sha256-" + cdx_digest.removeprefix("sha256:") + ".sbom")
        push_image(oci, plain, "1.0")

        listed = own.api.call("GET", f"/images/{spdx_image}/versions/1.0/sbom")
        assert [(s["format"], s["packages"]) for s in listed["sboms"]] == [
            ("spdx", [{"name": "openssl", "version": "3.0.13"}, {"name": "zlib", "version": "1.3"}])
        ]
        listed = own.api.call("GET", f"/images/{cdx_image}/versions/1.0/sbom")
        assert [(s["format"], s["packages"]) for s in listed["sboms"]] == [
            ("cyclonedx", [{"name": "busybox", "version": "1.36"}])
        ]
        assert own.api.call("GET", f"/images/{plain}/versions/1.0/sbom")["sboms"] == []
        assert "sbom" in marks_of(own, spdx_image)["marks"]
        assert "sbom" not in marks_of(own, plain)["marks"]
        assert own.image_names(mark="sbom", workspace=owner) == sorted([cdx_image, spdx_image])
        assert own.image_names(mark="built", workspace=owner) == []
        assert own.image_names(mark="dockerfile", workspace=owner) == []
    with CatalogUser.connect(token_registry, outsider) as other:
        assert problem(other.http.get(f"/images/{spdx_image}/versions/1.0/sbom"), 404)
        assert not [n for n in other.image_names(mark="sbom") if n.startswith(owner + "/")]
    anonymous = httpx.get(f"{token_registry.url}/api/v1/images/{spdx_image}/versions/1.0/sbom", timeout=30)
    assert anonymous.status_code in (401, 404)
