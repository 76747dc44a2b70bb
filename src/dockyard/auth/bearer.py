"""Bearer secrets (personal access, robot and refresh tokens): random, shown once, stored
as a SHA-256 hash. They carry 32 random bytes, so a fast hash is as strong as a slow one."""

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
