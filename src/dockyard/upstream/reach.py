"""How to reach another registry for a workspace: scheme and credentials.

Stand-in for ``upstream.profiles.connection_for`` (registry profiles, issue 16 part 1) with
the same signature, over what exists today: the workspace's stored credentials and the
``upstream_insecure`` list (loopback registries are plain HTTP too). Every caller that talks
to another registry (imports, build pushes) asks here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass

from dockyard.outbound import loopback_registry
from dockyard.upstream.credentials import CredentialStore
from dockyard.upstream.results import Credentials


@dataclass(frozen=True)
class Connection:
    scheme: str  # https, or http for insecure/loopback registries
    credentials: Credentials | None
    profile: str  # what to name when the credentials are refused (the host, until profiles exist)


class Reach:
    """``connection_for`` bound to the server's credential store and insecure list."""

    def __init__(self, store: CredentialStore, insecure: list[str]) -> None:
        self.store = store
        self.insecure = set(insecure)

    async def connection_for(self, workspace_id: int, host: str) -> Connection:
        plain = host in self.insecure or loopback_registry(host)
        pair = await self.store.lookup(workspace_id, host)
        return Connection(
            "http" if plain else "https", None if pair is None else Credentials(*pair), profile=host
        )
