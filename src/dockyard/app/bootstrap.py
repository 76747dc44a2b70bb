"""What a server process makes sure of before it serves, in token mode: the token-signing
keys exist, and there is a first admin (created once, by whichever process gets there first,
and its generated password printed by that process only)."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets

from dockyard.settings import Settings
from dockyard.tenancy.services import Identity

log = logging.getLogger("dockyard")


async def bootstrap_identity(settings: Settings, identity: Identity) -> None:
    """Token keys, and the first admin (printed once, by the process that creates it).
    Nothing to do in the other auth modes: their admin comes from the settings."""
    if settings.auth_mode != "token":
        return
    await asyncio.to_thread(identity.keys.ensure)
    await asyncio.to_thread(identity.keys.refresh)
    if await identity.accounts.count_admins():
        return
    username = settings.admin_username or "admin"
    password = settings.admin_password.get_secret_value()
    generated = not password
    if generated:
        password = secrets.token_urlsafe(18)
    if not await identity.accounts.ensure_admin(username, password):
        return
    if generated:
        path = settings.data_dir.resolve() / "admin-password"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(password + "\n")
        log.warning(
            "created the first admin: username %r, password %r (also in %s; change it with "
            "'dockyard user passwd')",
            username,
            password,
            path,
        )
    else:
        log.warning("created the first admin %r from settings", username)
