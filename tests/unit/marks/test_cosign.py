"""cosign's key-based simple signing, verified by :mod:`dockyard.marks.cosign` with keys of every
supported kind; SBOM documents read by :mod:`dockyard.marks.sbom`."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from dockyard.errors import Invalid
from dockyard.marks import cosign
from dockyard.marks.sbom import MAX_PACKAGES, Package, parse
from tests.support.cosign import ecdsa_key, ed25519_key, payload, public_pem, sign

DIGEST = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64


def rsa_pem_and_signature(data: bytes) -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signature = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return pem.decode(), base64.b64encode(signature).decode()


def test_each_supported_key_verifies_its_signature_and_names_itself() -> None:
    data = payload("r/x", DIGEST)
    ec_key, ed_key = ecdsa_key(), ed25519_key()
    rsa_pem, rsa_signature = rsa_pem_and_signature(data)
    keys = [
        cosign.parse_key(public_pem(ec_key)),
        cosign.parse_key(public_pem(ed_key)),
        cosign.parse_key(rsa_pem),
    ]
    assert [k.algorithm for k in keys] == ["ecdsa-p256", "ed25519", "rsa"]
    for signature, key in (
        (sign(ec_key, data), keys[0]),
        (sign(ed_key, data), keys[1]),
        (rsa_signature, keys[2]),
    ):
        assert cosign.check(data, signature, DIGEST, keys) == cosign.Outcome(cosign.VERIFIED, key.key_id)
        # A key the workspace does not trust: attached, not verified, not invalid.
        others = [k for k in keys if k is not key]
        assert cosign.check(data, signature, DIGEST, others).state == cosign.UNVERIFIED


def test_a_payload_for_another_digest_or_a_malformed_signature_is_invalid() -> None:
    key = ecdsa_key()
    keys = [cosign.parse_key(public_pem(key))]
    elsewhere = payload("r/x", OTHER)
    assert cosign.check(elsewhere, sign(key, elsewhere), DIGEST, keys).state == cosign.INVALID
    data = payload("r/x", DIGEST)
    assert cosign.check(data, "not base64!", DIGEST, keys).state == cosign.INVALID
    assert cosign.check(data, base64.b64encode(b"short").decode(), DIGEST, keys).state == cosign.INVALID
    assert cosign.check(b"{}", sign(key, b"{}"), DIGEST, keys).state == cosign.INVALID


def test_only_supported_public_keys_are_trusted() -> None:
    with pytest.raises(Invalid, match="PEM"):
        cosign.parse_key("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")
    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(Invalid, match="P-256"):
        cosign.parse_key(public_pem(p384))
    with pytest.raises(Invalid, match="at most"):
        cosign.parse_key("x" * (cosign.MAX_PEM + 1))


def test_signature_layers_are_the_annotated_simple_signing_layers() -> None:
    manifest = {
        "layers": [
            {
                "mediaType": cosign.SIMPLE_SIGNING,
                "digest": DIGEST,
                "annotations": {cosign.SIGNATURE_ANNOTATION: "c2ln"},
            },
            {"mediaType": cosign.SIMPLE_SIGNING, "digest": OTHER},  # no signature: skipped
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": OTHER},
        ]
    }
    assert cosign.signature_layers(json.dumps(manifest).encode()) == [cosign.SignatureLayer(DIGEST, "c2ln")]
    assert cosign.signature_layers(b"not json") == []


def test_spdx_and_cyclonedx_packages_are_read_and_bounded() -> None:
    spdx = {
        "spdxVersion": "SPDX-2.3",
        "packages": [{"name": "zlib", "versionInfo": "1.3"}, {"name": "x"}, "junk"],
    }
    assert parse(json.dumps(spdx).encode()) == ("spdx", [Package("zlib", "1.3"), Package("x", "")], False)
    many = {
        "bomFormat": "CycloneDX",
        "components": [{"name": str(n), "version": "1"} for n in range(MAX_PACKAGES + 1)],
    }
    kind, packages, truncated = parse(json.dumps(many).encode())
    assert (kind, len(packages), truncated) == ("cyclonedx", MAX_PACKAGES, True)
    assert parse(b'{"something": "else"}') == ("unknown", [], False)
    with pytest.raises(ValueError, match="not a JSON object"):
        parse(b"[1, 2]")
