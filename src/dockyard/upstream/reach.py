"""How to reach upstream host H for workspace W: the one place the pull-through cache asks.

A stand-in with the signature the registry-profiles work provides as
``upstream.profiles.connection_for``, over what exists today: the workspace's stored
credentials for the host, and plain HTTP for loopback hosts and those listed in
``upstream_insecure``. (The credentials need the store's key, hence the store, not the
database, as first argument.)
"""

from __future__ import annotations

from dataclasses import dataclass

from dockyard.outbound import loopback_registry
from dockyard.upstream.credentials import CredentialStore
from dockyard.upstream.results import Credentials


@dataclass(frozen=True)
class Connection:
    scheme: str  # "https", or "http" for a loopback or listed plain-HTTP registry
    credentials: Credentials | None


async def connection_for(
    store: CredentialStore, workspace_id: int, host: str, *, insecure: frozenset[str] = frozenset()
) -> Connection:
    """The scheme and credentials for ``host`` (as users name it: ``docker.io``) in the workspace."""
    kept = await store.lookup(workspace_id, host)
    plain = host in insecure or loopback_registry(host)
    return Connection("http" if plain else "https", None if kept is None else Credentials(*kept))
