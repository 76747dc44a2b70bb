"""Bearer secrets (personal access, robot and refresh tokens): random, shown once, stored
as a SHA-256 hash. They carry 32 random bytes, so a fast hash is as strong as a slow one:
nobody can guess such a secret, nor find it from its hash, and a login is one indexed lookup
of the hash (:mod:`dockyard.auth.token_lookup`), never an argon2 check (tokens were never
stored with argon2, so there is no old hash to upgrade). A plain SHA-256, not an HMAC: a key
would add nothing for 256-bit secrets and would have to be kept and rotated with the data.
Nothing about a token is cached: a revocation holds from the next request, on every worker."""

from __future__ import annotations

import hashlib
import secrets

ACCESS_PREFIX = "dyk_"
REFRESH_PREFIX = "dyr_"


def new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def display_prefix(secret: str) -> str:
    """The start of a secret, kept to help its owner recognise it in a list."""
    return secret[:10]


def looks_like_access_token(secret: str) -> bool:
    return secret.startswith(ACCESS_PREFIX) and len(secret) > 30
