"""Access before the identity issue lands: a development mode and one admin user.

``dev``: loopback callers may pull and push anonymously; the admin's basic credentials,
when configured, are also accepted (from anywhere the server listens).
``basic``: every request needs the admin's basic credentials.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from sqlalchemy import ColumnElement, true

from dockyard.auth.base import Access, Caller, Principal
from dockyard.auth.errors import AuthenticationFailed, Challenge

ANONYMOUS = Principal("anonymous")
_CHALLENGE = Challenge("Basic", "dockyard")


class AdminAuthorizer:
    def __init__(self, mode: str, username: str, password: str) -> None:
        if mode not in ("dev", "basic"):
            raise ValueError(f"unknown auth mode {mode!r}")
        self.mode = mode
        self.username = username
        self.password = password

    def _check_basic(self, header: str) -> Principal:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic" or not self.username:
            raise self._unauthorized("unsupported authorization scheme")
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise self._unauthorized("malformed basic credentials") from None
        ok_user = hmac.compare_digest(user.encode(), self.username.encode())
        ok_password = hmac.compare_digest(password.encode(), self.password.encode())
        if not (ok_user and ok_password):
            raise self._unauthorized("wrong username or password")
        return Principal(user, is_admin=True)

    def _unauthorized(self, message: str) -> AuthenticationFailed:
        return AuthenticationFailed(message, _CHALLENGE)

    def catalog_scope(self, principal: Principal) -> ColumnElement[bool]:
        return true()  # whoever gets past this door sees everything

    async def authorize(self, caller: Caller, accesses: list[Access]) -> Principal:
        if caller.authorization:
            return self._check_basic(caller.authorization)
        if self.mode == "dev" and caller.is_loopback:
            return ANONYMOUS
        raise self._unauthorized("authentication required")
