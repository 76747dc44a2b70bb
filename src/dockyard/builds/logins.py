"""How a build signs in to this Dockyard's registry (to pull its base images and push the
result): as the user who started it, with that user's live permissions.

In token mode the worker issues a refresh (identity) token for the user that expires with
the build's time limit and is revoked when the build ends; buildah trades it for registry
tokens at ``/auth/token`` like ``docker login`` would. The worker needs no password and no
standing service account, and the registry's audit log names the user. In basic mode the
admin's credentials are used; in dev mode (anonymous loopback pushes) none.
"""

from __future__ import annotations

from typing import Protocol

from dockyard.auth.accounts import Accounts
from dockyard.auth.policy import Subject
from dockyard.builds.builder import BuildFailed, RegistryLogin
from dockyard.errors import NotFound


class InternalLogins(Protocol):
    registry: str  # host[:port] of this Dockyard's registry, as the builder reaches it
    insecure: bool  # plain HTTP

    async def issue(self, user_id: int | None, run_id: int, expires_at: float) -> RegistryLogin | None: ...

    async def revoke(self, login: RegistryLogin) -> None: ...


class UserTokenLogins:
    def __init__(self, accounts: Accounts, registry: str, insecure: bool) -> None:
        self.accounts = accounts
        self.registry = registry
        self.insecure = insecure

    async def issue(self, user_id: int | None, run_id: int, expires_at: float) -> RegistryLogin | None:
        if user_id is None:
            raise BuildFailed("the build has no user to push as")
        try:
            user = await self.accounts.get_user_by_id(user_id)
        except NotFound:
            raise BuildFailed("the user who started the build no longer exists") from None
        if user.disabled:
            raise BuildFailed(f"the user who started the build ({user.username}) is disabled")
        subject = Subject("user", user.id, user.username, is_admin=user.is_admin, expires_at=expires_at)
        secret = await self.accounts.issue_refresh_token(subject, f"dockyard-build-{run_id}")
        return RegistryLogin(self.registry, user.username, identity_token=secret, insecure=self.insecure)

    async def revoke(self, login: RegistryLogin) -> None:
        if login.identity_token:
            await self.accounts.revoke_refresh_token(login.identity_token)


class FixedLogins:
    """Basic mode (the admin's credentials) and dev mode (``login`` is None: anonymous)."""

    def __init__(self, registry: str, insecure: bool, username: str = "", password: str = "") -> None:
        self.registry = registry
        self.insecure = insecure
        self.username = username
        self.password = password

    async def issue(self, user_id: int | None, run_id: int, expires_at: float) -> RegistryLogin | None:
        if not self.username:
            return None
        return RegistryLogin(self.registry, self.username, secret=self.password, insecure=self.insecure)

    async def revoke(self, login: RegistryLogin) -> None:
        return None
