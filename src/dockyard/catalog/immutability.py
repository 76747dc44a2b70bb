"""Immutable tags, as Harbor and ECR have them: per workspace, glob patterns (``v*``, ``*``) of
tags that keep the manifest they were first pushed with, and exceptions (``latest``). A push
that would *move* such a tag to another manifest is refused (the registry answers the spec's
``DENIED`` with the rule's name); pushing the same manifest again, and a tag's first push, are
allowed. Deleting a tag is not moving it: maintainers still delete (and the delete is audited).

Patterns are matched case-sensitively with :func:`fnmatch.fnmatchcase` (``*``, ``?``,
``[...]``), a pattern longer than a tag (128) or holding other characters than a tag's and
those is refused, as is a list of more than :data:`MAX_RULES`.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from sqlalchemy import select

from dockyard.auth import audit
from dockyard.auth.guard import find_workspace
from dockyard.auth.policy import Subject
from dockyard.auth.tables import repositories
from dockyard.catalog.access import Access
from dockyard.catalog.tables import immutable_tags
from dockyard.db.engine import Connection, Database
from dockyard.errors import Invalid
from dockyard.registry.tables import tags

MAX_RULES = 50
PATTERN = re.compile(r"[A-Za-z0-9_.*?\[\]!-]{1,128}")


@dataclass(frozen=True)
class TagRules:
    patterns: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)

    def rule_for(self, tag: str) -> str | None:
        """The pattern that makes ``tag`` immutable, or None."""
        if any(fnmatchcase(tag, pattern) for pattern in self.exceptions):
            return None
        return next((pattern for pattern in self.patterns if fnmatchcase(tag, pattern)), None)


def check_rules(patterns: list[str], exceptions: list[str]) -> TagRules:
    for what, found in (("patterns", patterns), ("exceptions", exceptions)):
        if len(found) > MAX_RULES:
            raise Invalid(f"at most {MAX_RULES} {what}")
        for pattern in found:
            if not PATTERN.fullmatch(pattern):
                raise Invalid(
                    f"tag pattern {pattern[:100]!r}: up to 128 letters, digits, _ . - "
                    "and the wildcards * ? [ ]"
                )
    return TagRules(list(dict.fromkeys(patterns)), list(dict.fromkeys(exceptions)))


async def load_rules(conn: Connection, workspace_id: int) -> TagRules:
    row = (
        await conn.execute(
            select(immutable_tags.c.patterns, immutable_tags.c.exceptions).where(
                immutable_tags.c.workspace_id == workspace_id
            )
        )
    ).first()
    return TagRules() if row is None else TagRules(json.loads(row[0]), json.loads(row[1]))


async def tag_target(conn: Connection, repository: str, tag: str) -> str | None:
    """The digest ``repository:tag`` points at now, or None."""
    row = (
        await conn.execute(
            select(tags.c.manifest_digest)
            .join(repositories, repositories.c.id == tags.c.repository_id)
            .where(repositories.c.name == repository, tags.c.name == tag)
        )
    ).first()
    return None if row is None else str(row[0])


def immutable_refusal(repository: str, tag: str, pattern: str, workspace: str) -> str:
    return (
        f"{repository}:{tag} is immutable (the workspace {workspace!r} keeps tags matching {pattern!r} "
        f"where they were first pushed): push another tag, or ask an owner to change the rule"
    )


class TagImmutability:
    """Reading and setting a workspace's rules (readers read, owners set; audited)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, actor: Subject, workspace: str) -> TagRules:
        async with self.db.read() as conn:
            ws = await find_workspace(conn, workspace)
            await Access(conn, actor).require(ws.id, workspace, "reader")
            return await load_rules(conn, ws.id)

    async def set(
        self, actor: Subject, workspace: str, rules: TagRules, client_ip: str | None = None
    ) -> TagRules:
        rules = check_rules(rules.patterns, rules.exceptions)
        async with self.db.write() as conn:
            ws = await find_workspace(conn, workspace)
            await Access(conn, actor).require(ws.id, workspace, "owner")
            before = await load_rules(conn, ws.id)
            values = {
                "patterns": json.dumps(rules.patterns),
                "exceptions": json.dumps(rules.exceptions),
                "updated_at": time.time(),
                "updated_by": actor.name,
            }
            stmt = self.db.insert(immutable_tags).values(workspace_id=ws.id, **values)
            await conn.execute(stmt.on_conflict_do_update(index_elements=["workspace_id"], set_=values))
            await audit.record(
                conn,
                actor,
                "workspace.immutable_tags",
                workspace_id=ws.id,
                target=workspace,
                client_ip=client_ip,
                detail={
                    "before": {"patterns": before.patterns, "exceptions": before.exceptions},
                    "after": {"patterns": rules.patterns, "exceptions": rules.exceptions},
                },
            )
        return rules
