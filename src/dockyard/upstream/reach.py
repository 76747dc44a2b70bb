"""How to reach another registry for a workspace, bound to the server's registry profiles.

A thin handle on :meth:`dockyard.upstream.profiles.Profiles.connection_for` for features that
hold no database connection of their own when they reach out (imports by URL, the
pull-through cache): every caller that talks to another registry asks here or there and
nowhere else, so a profile's scheme, TLS setting and credentials apply everywhere alike.
"""

from __future__ import annotations

from dockyard.upstream.profiles import Connection, Profiles

__all__ = ["Connection", "Reach"]


class Reach:
    """``connection_for(workspace_id, host)`` over the registry profiles."""

    def __init__(self, profiles: Profiles) -> None:
        self.profiles = profiles

    async def connection_for(self, workspace_id: int | None, host: str) -> Connection:
        return await self.profiles.connection_for(None, workspace_id, host)
