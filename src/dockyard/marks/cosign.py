"""cosign's key-based simple signing, verified (pure: no I/O).

What is verified: a signature manifest's layers of media type
``application/vnd.dev.cosign.simplesigning.v1+json``, each with the annotation
``dev.cosignproject.cosign/signature`` (base64) over the layer's bytes (the payload JSON), by a
public key (PEM: ECDSA P-256 with SHA-256, Ed25519, RSA PKCS#1 v1.5 with SHA-256). The
payload's ``critical.image.docker-manifest-digest`` must be the signed version's digest.
Keyless signatures (Fulcio certificates, Rekor transparency-log entries) are not verified:
without a trusted key they stay "signature attached"."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from dockyard.errors import Invalid

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
MAX_PEM = 16_384
MAX_PAYLOAD = 65_536  # a simple-signing payload is a few hundred bytes
MAX_SIGNATURE = 4_096  # base64 of an RSA-4096 signature is 684 characters

PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey

VERIFIED, INVALID, UNVERIFIED = "verified", "invalid", "unverified"


@dataclass(frozen=True)
class ParsedKey:
    key_id: str  # sha256:<hex> of the DER SubjectPublicKeyInfo
    algorithm: str  # ecdsa-p256, ed25519, rsa
    pem: str  # normalised
    key: PublicKey


def parse_key(pem: str) -> ParsedKey:
    """A trusted key from its PEM text; :class:`Invalid` for anything else."""
    if len(pem) > MAX_PEM:
        raise Invalid(f"a public key is at most {MAX_PEM} characters of PEM")
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, UnsupportedAlgorithm):
        raise Invalid("not a PEM public key (-----BEGIN PUBLIC KEY-----)") from None
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        algorithm = "ecdsa-p256"
    elif isinstance(key, ed25519.Ed25519PublicKey):
        algorithm = "ed25519"
    elif isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048:
        algorithm = "rsa"
    else:
        raise Invalid("a trusted key is ECDSA P-256, Ed25519 or RSA (2048 bits or more)")
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    normal = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return ParsedKey("sha256:" + hashlib.sha256(der).hexdigest(), algorithm, normal.decode(), key)


def _verifies(key: PublicKey, signature: bytes, payload: bytes) -> bool:
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, payload)
        else:
            key.verify(signature, payload, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def _well_formed(signature: bytes) -> bool:
    """Whether ``signature`` could be any supported key's (DER ECDSA, 64-byte Ed25519, RSA)."""
    if len(signature) == 64:
        return True
    try:
        decode_dss_signature(signature)
    except ValueError:
        return len(signature) >= 256 and len(signature) % 128 == 0  # RSA-2048 and up
    return True


@dataclass(frozen=True)
class SignatureLayer:
    payload_digest: str
    signature: str  # the annotation's base64 text


def signature_layers(manifest: bytes) -> list[SignatureLayer]:
    """The simple-signing layers of a signature manifest (none when it is not one)."""
    try:
        parsed: Any = json.loads(manifest)
    except ValueError:
        return []
    layers = parsed.get("layers") if isinstance(parsed, dict) else None
    found = []
    for layer in layers if isinstance(layers, list) else []:
        if not isinstance(layer, dict) or layer.get("mediaType") != SIMPLE_SIGNING:
            continue
        annotations = layer.get("annotations")
        signature = annotations.get(SIGNATURE_ANNOTATION) if isinstance(annotations, dict) else None
        digest = layer.get("digest")
        if isinstance(digest, str) and isinstance(signature, str):
            found.append(SignatureLayer(digest, signature))
    return found


@dataclass(frozen=True)
class Outcome:
    state: str  # verified, invalid, unverified
    key_id: str | None = None
    detail: str = ""


def check(payload: bytes, signature_b64: str, digest: str, keys: list[ParsedKey]) -> Outcome:
    """One signature over ``payload`` for the version ``digest``, against ``keys``."""
    if len(payload) > MAX_PAYLOAD or len(signature_b64) > MAX_SIGNATURE:
        return Outcome(INVALID, detail="the payload or signature is too large")
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        named = json.loads(payload)["critical"]["image"]["docker-manifest-digest"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        return Outcome(INVALID, detail="the payload or signature is malformed")
    if named != digest:
        return Outcome(INVALID, detail=f"the payload signs {str(named)[:150]}, not {digest}")
    if not _well_formed(signature):
        return Outcome(INVALID, detail="the signature is malformed")
    for key in keys:
        if _verifies(key.key, signature, payload):
            return Outcome(VERIFIED, key.key_id)
    return Outcome(UNVERIFIED, detail="no key the workspace trusts verifies the signature")


def best(outcomes: list[Outcome]) -> Outcome:
    """A version's state from its signatures': verified wins, then invalid, then unverified."""
    for state in (VERIFIED, INVALID, UNVERIFIED):
        for outcome in outcomes:
            if outcome.state == state:
                return outcome
    return Outcome(UNVERIFIED)
