"""Who may see and change catalog entries.

- An image and every one of its versions, internal or external, are seen by whoever may pull
  the repository of the same name (the registry's rule: a public repository by everyone,
  anonymous callers included; a private one by holders of a role in the workspace, teams and
  robots with a role on it, users with an active grant, admins). The repository's visibility
  is the image's: there is no per-version setting (migration 0016 folded the old one in).
- Registering and changing images needs the developer role in the workspace (push);
  deleting needs maintainer. Admins may do everything.

The lists ask the same rule in SQL (:mod:`.visibility`); a change here is a change there,
and ``tests/unit/catalog/test_visibility.py`` fails until both say the same.
"""

from __future__ import annotations

import time

from dockyard.auth.facts import load_facts, workspace_role
from dockyard.auth.guard import require_user
from dockyard.auth.policy import PULL, Subject, decide, role_at_least
from dockyard.db.engine import Connection
from dockyard.errors import Forbidden

DELETER = "maintainer"  # the least workspace role that may delete versions and images (.deletion)


class Access:
    """Caches decisions for one request (listing many versions asks the same questions)."""

    def __init__(self, conn: Connection, subject: Subject) -> None:
        self.conn = conn
        self.subject = subject
        self._roles: dict[int, str | None] = {}
        self._pull: dict[str, bool] = {}

    async def role(self, workspace_id: int) -> str | None:
        if workspace_id not in self._roles:
            self._roles[workspace_id] = (
                None
                if self.subject.is_anonymous
                else await workspace_role(self.conn, self.subject, workspace_id)
            )
        return self._roles[workspace_id]

    async def may_pull(self, repository: str) -> bool:
        if repository not in self._pull:
            now = time.time()
            facts = await load_facts(self.conn, self.subject, repository, now)
            self._pull[repository] = PULL in decide(self.subject, facts, now).actions
        return self._pull[repository]

    async def sees(self, image: str) -> bool:
        """Whether the subject sees the image ``image`` and all its versions."""
        return self.subject.is_admin or await self.may_pull(image)

    async def may_delete(self, workspace_id: int) -> bool:
        """Whether the subject may delete the workspace's images and versions (the UI asks)."""
        return self.subject.is_admin or role_at_least(await self.role(workspace_id), DELETER)

    async def require(self, workspace_id: int, workspace: str, needed: str) -> None:
        require_user(self.subject)
        if not role_at_least(await self.role(workspace_id), needed):
            raise Forbidden(f"this needs the {needed} role (or higher) in workspace {workspace!r}")
