"""What the build services return: definitions with their status, runs, history events."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from dockyard.builds.spec import GitSource, Recipe, check_network
from dockyard.builds.targets import PushTarget

# Status of a definition against its last successful build.
BUILT, NOT_BUILT, MODIFIED = "built", "not_built", "modified"
# Status of a run.
QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
FINISHED = (SUCCEEDED, FAILED, CANCELLED)


@dataclass(frozen=True)
class RunView:
    id: int
    image: str  # the definition's name
    status: str
    version: str
    started_by: str
    created_at: float  # queued at
    started_at: float | None
    finished_at: float | None
    attempt: int
    content_hash: str
    source: dict[str, Any]  # context, git url/ref/folder, platform, target
    reason: str | None = None
    digest: str | None = None
    pushed: list[dict[str, str]] = field(default_factory=list)
    git_commit: str | None = None
    builder: str | None = None
    dockerfile: str | None = None
    log_bytes: int = 0
    cancel_requested: bool = False
    cancelled_by: str | None = None
    push_results: list[dict[str, Any]] = field(default_factory=list)  # see :mod:`.targets`

    @property
    def duration(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at
        return None if end is None else max(0.0, end - self.started_at)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


@dataclass(frozen=True)
class DefinitionView:
    id: int
    name: str
    workspace: str
    description: str
    recipe: Recipe
    context_size: int | None
    version: str
    external_destination: str | None
    content_hash: str
    revision: int
    status: str  # built, not_built, modified
    created_at: float
    created_by: str
    updated_at: float
    updated_by: str
    last_build: RunView | None = None  # the latest run, whatever its outcome
    last_success: RunView | None = None
    my_role: str = "reader"  # the reader's role in the workspace (admins: owner)
    refused: dict[str, str] = field(default_factory=dict)  # action -> why the reader may not
    push_targets: list[PushTarget] = field(default_factory=list)


@dataclass(frozen=True)
class BuildEvent:
    id: int
    at: float
    actor: str
    kind: str
    detail: dict[str, Any]


def recipe_of(m: Any) -> Recipe:
    git = None
    if m["context"] == "git":
        git = GitSource(m["git_url"], m["git_ref"], m["git_directory"], m["dockerfile_path"])
    return Recipe(
        context="git" if m["context"] == "git" else "local",
        dockerfile=m["dockerfile"],
        context_digest=m["context_digest"],
        git=git,
        build_args=json.loads(m["build_args"]),
        target=m["target"],
        platform=m["platform"],
        network=check_network(m["network"]),
    )


def source_of(recipe: Recipe) -> dict[str, Any]:
    found: dict[str, Any] = {
        "context": recipe.context,
        "platform": recipe.platform,
        "target": recipe.target,
        "network": recipe.network,
    }
    if recipe.git is not None:
        found.update(
            git_url=recipe.git.url,
            git_ref=recipe.git.ref,
            git_directory=recipe.git.directory,
            dockerfile_path=recipe.git.dockerfile,
        )
    else:
        found["context_digest"] = recipe.context_digest
    return found


def run_view(m: Any, image: str) -> RunView:
    spec = json.loads(m["spec"])
    return RunView(
        id=m["id"],
        image=image,
        status=m["status"],
        version=m["version"],
        started_by=m["started_by"],
        created_at=m["created_at"],
        started_at=m["started_at"],
        finished_at=m["finished_at"],
        attempt=m["attempt"],
        content_hash=m["content_hash"],
        source=source_of(Recipe.from_json(spec["recipe"])),
        reason=m["reason"],
        digest=m["digest"],
        pushed=json.loads(m["pushed"]),
        git_commit=m["git_commit"],
        builder=m["builder"],
        dockerfile=m["dockerfile"],
        log_bytes=int(m["log_bytes"]),
        cancel_requested=m["cancel_requested_at"] is not None,
        cancelled_by=m["cancelled_by"],
        push_results=json.loads(m["push_results"]),
    )
