"""Registry bearer tokens: short-lived ES256 JWTs in the Docker token format.

Claims: ``iss``, ``sub`` (the login name; ``""`` when anonymous), ``aud`` (the service),
``exp``/``nbf``/``iat``, ``jti``, ``access`` (``[{"type", "name", "actions"}]``) and ``dyk``
(who the subject is: kind, id, admin, and the scopes of the access token used to sign in, if
any), which the registry needs for its audit records and to tell a token that is merely
too narrow from a subject that may not act at all.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from dockyard.auth.keys import KeyRing, SigningKey
from dockyard.auth.policy import Subject

MIN_TTL = 60  # the token spec's minimum expires_in
# Grants and tokens last at least twice that: the token server leaves out a grant that ends
# within MIN_TTL (a token would outlive it), so a shorter one would be confirmed and never
# honoured; two minutes leave one of use.
MIN_LIFETIME_SECONDS = 2 * MIN_TTL
MIN_LIFETIME_DAYS = MIN_LIFETIME_SECONDS / 86400


class InvalidToken(Exception):
    pass


@dataclass(frozen=True)
class Grant:
    type: str
    name: str
    actions: frozenset[str]

    def as_claim(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "actions": sorted(self.actions)}


@dataclass(frozen=True)
class Issued:
    token: str
    expires_in: int
    issued_at: float


@dataclass(frozen=True)
class Verified:
    subject: Subject
    access: dict[tuple[str, str], frozenset[str]]
    expires_at: float
    kid: str = ""


class TokenService:
    def __init__(
        self, keys: KeyRing, issuer: str, service: str, ttl_seconds: int, cache_size: int = 4096
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.service = service
        self.ttl = max(ttl_seconds, MIN_TTL)
        self._cache: OrderedDict[str, Verified] = OrderedDict()
        self._cache_size = cache_size

    def issue(self, subject: Subject, grants: list[Grant], cap: float | None = None) -> Issued:
        """A token for ``grants``, expiring after the TTL or at ``cap`` if sooner (not below the minimum)."""
        now = time.time()
        expires = now + self.ttl
        if cap is not None:
            expires = max(min(expires, cap), now + MIN_TTL)
        key = self.keys.signing_key()
        claims = {
            "iss": self.issuer,
            "sub": subject.name,
            "aud": self.service,
            "exp": int(expires),
            "nbf": int(now) - 1,
            "iat": int(now),
            "jti": uuid.uuid4().hex,
            "access": [grant.as_claim() for grant in grants],
            "dyk": _who(subject),
        }
        return Issued(encode_es256(claims, key), int(expires) - int(now), now)

    def verify(self, token: str) -> Verified:
        now = time.time()
        cached = self._cache.get(token)
        if cached is not None:
            if cached.expires_at > now and self.keys.verification_key(cached.kid, now) is not None:
                return cached
            del self._cache[token]
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"malformed token: {exc}") from None
        if header.get("alg") != "ES256":
            raise InvalidToken("tokens are signed with ES256")
        key = self.keys.verification_key(str(header.get("kid", "")), now)
        if key is None:
            raise InvalidToken("token signed by an unknown or retired key")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=["ES256"],
                audience=self.service,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "nbf", "iss", "aud", "access"]},
                leeway=5,
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from None
        verified = _verified(claims, str(header.get("kid", "")))
        self._cache[token] = verified
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return verified


_ECDSA = ec.ECDSA(hashes.SHA256())
_headers: dict[str, bytes] = {}  # kid -> the encoded JOSE header


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def encode_es256(claims: dict[str, Any], key: SigningKey) -> str:
    """The compact JWS of ``claims`` signed by ``key`` (what ``jwt.encode`` with ES256 and
    headers ``kid``, ``typ`` makes, byte for byte), without its per-call overhead: the header
    is encoded once per key, the signature made by ``cryptography`` directly (its raw ``r||s``
    form, RFC 7518 section 3.4)."""
    header = _headers.get(key.kid)
    if header is None:
        document = {"alg": "ES256", "kid": key.kid, "typ": "JWT"}
        header = _headers[key.kid] = _b64(
            json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
        )
    signing_input = header + b"." + _b64(json.dumps(claims, separators=(",", ":")).encode())
    r, s = decode_dss_signature(key.private_key.sign(signing_input, _ECDSA))
    return (signing_input + b"." + _b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))).decode()


def _who(subject: Subject) -> dict[str, Any]:
    who: dict[str, Any] = {"k": subject.kind, "i": subject.id, "a": subject.is_admin}
    if subject.scopes is not None:
        who["s"] = sorted(subject.scopes)  # the cap of the personal access or robot token used
    return who


def _verified(claims: dict[str, Any], kid: str) -> Verified:
    who = claims.get("dyk") or {}
    kind = who.get("k", "anonymous")
    if kind not in ("anonymous", "user", "robot"):
        raise InvalidToken("unknown subject kind")
    scopes = who.get("s")
    capped = None if scopes is None else frozenset(str(scope) for scope in scopes)
    subject = Subject(kind, who.get("i"), str(claims.get("sub", "")), bool(who.get("a", False)), capped)
    access: dict[tuple[str, str], frozenset[str]] = {}
    for entry in claims.get("access") or []:
        if not isinstance(entry, dict):
            raise InvalidToken("malformed access claim")
        key = (str(entry.get("type")), str(entry.get("name")))
        access[key] = access.get(key, frozenset()) | frozenset(str(a) for a in entry.get("actions") or [])
    return Verified(subject, access, float(claims["exp"]), kid)
