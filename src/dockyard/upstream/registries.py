"""Registry profiles as the API and the CLI see them: keep, list, show, remove, and check
(a login, as ``docker login`` does, reporting the failure's reason)."""

from __future__ import annotations

from dataclasses import dataclass

from dockyard.auth.guard import find_workspace, require_role
from dockyard.auth.policy import Subject
from dockyard.errors import Forbidden, NotFound, UpstreamError
from dockyard.outbound import OutboundPolicy
from dockyard.upstream.client import check_login
from dockyard.upstream.credentials import (
    CredentialStore,
    ProfileSettings,
    StoredCredential,
    normalise_registry,
)
from dockyard.upstream.profiles import Profiles, host_aliases
from dockyard.upstream.results import Failed, UpstreamFailure


@dataclass(frozen=True)
class CheckResult:
    registry: str
    ok: bool
    profile: str | None
    scheme: str


def upstream_error(failure: Failed) -> UpstreamError:
    """A :class:`Failed` as the domain error the edges render (problem+json ``reason``)."""
    return UpstreamError(
        failure.message,
        failure.kind,
        detail_kind=failure.detail,
        profile=failure.profile,
        retry_after=failure.retry_after,
        upstream_status=failure.status,
    )


class Registries:
    def __init__(self, store: CredentialStore, profiles: Profiles, outbound: OutboundPolicy) -> None:
        self.store = store
        self.profiles = profiles
        self.outbound = outbound

    async def put(
        self,
        actor: Subject,
        workspace: str | None,
        registry: str,
        username: str,
        secret: str,
        settings: ProfileSettings,
        client_ip: str | None = None,
    ) -> StoredCredential:
        return await self.store.put(actor, workspace, registry, username, secret, client_ip, settings)

    async def list(
        self, actor: Subject, workspace: str | None, *, limit: int = 500, after: str | None = None
    ) -> list[StoredCredential]:
        return await self.store.stored(actor, workspace, limit=limit, after=after)

    async def show(self, actor: Subject, workspace: str | None, registry: str) -> StoredCredential:
        host = normalise_registry(registry)
        found = await self.store.stored(actor, workspace, limit=1, hosts=host_aliases(host))
        if found:
            return found[0]
        where = "the platform" if workspace is None else f"workspace {workspace!r}"
        raise NotFound(f"{where} keeps no registry profile for {host}")

    async def remove(
        self, actor: Subject, workspace: str | None, registry: str, client_ip: str | None = None
    ) -> None:
        await self.store.remove(actor, workspace, registry, client_ip)

    async def check(self, actor: Subject, workspace: str | None, registry: str) -> CheckResult:
        """Log in to ``registry`` as the workspace would (its profile, else a platform-wide
        one); raises :class:`UpstreamError` with the reason when that fails."""
        host = normalise_registry(registry)
        workspace_id: int | None = None
        async with self.store.db.read() as conn:
            if workspace is not None:
                ws = await find_workspace(conn, workspace)
                await require_role(conn, actor, ws, "maintainer")
                workspace_id = ws.id
            elif not actor.is_admin:
                raise Forbidden("only an administrator may check platform-wide registry profiles")
            try:
                reach = await self.profiles.connection_for(conn, workspace_id, host)
            except UpstreamFailure as exc:
                raise upstream_error(exc.failure) from None
        failure = await check_login(
            host,
            outbound=self.outbound,
            credentials=reach.credentials,
            scheme=reach.scheme,
            verify=reach.verify,
        )
        if failure is not None:
            raise upstream_error(failure)
        return CheckResult(host, True, reach.profile, reach.scheme)
