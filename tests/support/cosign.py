"""Signatures as cosign writes them (key-based simple signing), pushed over /v2 by a real
HTTP client: the payload JSON as a layer, its signature in the layer's annotation."""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from tests.support.oci import OCI_CONFIG, Blob, Manifest, OciClient, encode, oci_manifest

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
COSIGN_SIG_ARTIFACT = "application/vnd.dev.cosign.artifact.sig.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def ecdsa_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def ed25519_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def public_pem(key: PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def payload(reference: str, digest: str) -> bytes:
    """cosign's simple-signing payload for ``digest``."""
    document: dict[str, Any] = {
        "critical": {
            "identity": {"docker-reference": reference},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature",
        },
        "optional": None,
    }
    return json.dumps(document, separators=(",", ":")).encode()


def sign(key: PrivateKey, data: bytes) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return base64.b64encode(key.sign(data, ec.ECDSA(hashes.SHA256()))).decode()
    return base64.b64encode(key.sign(data)).decode()


def signature_manifest(data: bytes, signature: str, *, subject: dict[str, Any] | None = None) -> Manifest:
    """The manifest cosign pushes: an empty-ish config and one simple-signing layer."""
    layer = Blob(data, SIMPLE_SIGNING)
    config = Blob(
        encode(
            {
                "architecture": "",
                "os": "",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": [layer.digest]},
            }
        ),
        OCI_CONFIG,
    )
    manifest = oci_manifest(
        config, [layer], subject=subject, artifact_type=COSIGN_SIG_ARTIFACT if subject else None
    )
    document = dict(manifest.document)
    document["layers"] = [layer.descriptor(annotations={SIGNATURE_ANNOTATION: signature})]
    return Manifest(encode(document), manifest.media_type, manifest.blobs, (), document)


def push_signature(
    oci: OciClient,
    repository: str,
    digest: str,
    data: bytes,
    signature: str,
    *,
    referrer: dict[str, Any] | None = None,
) -> str:
    """Push a signature of ``digest``: as cosign's ``sha256-<hex>.sig`` tag, or as an OCI
    referrer when ``referrer`` (the subject's descriptor) is given; the manifest's digest."""
    manifest = signature_manifest(data, signature, subject=referrer)
    oci.push_blobs(repository, manifest.blobs)
    reference = manifest.digest if referrer else "sha256-" + digest.removeprefix("sha256:") + ".sig"
    oci.push_manifest(repository, reference, manifest)
    return manifest.digest
