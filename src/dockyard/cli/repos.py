"""``dockyard repo ...``: repositories, their visibility and who may pull or push them.

Repository names contain slashes (``genomics/samtools``); give them whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import typer

from dockyard.cli import output
from dockyard.cli.client import Client, connect, seg
from dockyard.cli.numbers import grant_days

repo_app = typer.Typer(
    help="Repositories: visibility and permissions (maintainers manage them).", no_args_is_help=True
)

Repo = Annotated[str, typer.Argument(metavar="REPOSITORY", help="Like 'genomics/samtools'.")]
PAGE = 1000


def _pages(api: Client, workspace: str | None) -> Iterator[dict[str, Any]]:
    last = ""
    while True:
        page = api.get("/repositories", workspace=workspace, last=last or None, limit=PAGE)
        yield from page
        if len(page) < PAGE:
            return
        last = page[-1]["name"]


@repo_app.command("list")
def list_repositories(
    workspace: Annotated[str | None, typer.Option("--workspace", "-w", help="Only this workspace.")] = None,
    json: output.JsonFlag = False,
) -> None:
    """List the repositories you may pull."""
    with connect() as api:
        repos = list(_pages(api, workspace))
    if json:
        output.print_json(repos)
        return
    output.table(
        ["REPOSITORY", "VISIBILITY", "YOU MAY", "CREATED"],
        ([r["name"], r["visibility"], r["actions"], output.when(r["created_at"])] for r in repos),
        empty="No repositories.",
    )


@repo_app.command("show")
def show(name: Repo, json: output.JsonFlag = False) -> None:
    """Show a repository."""
    with connect() as api:
        repo = api.get("/repository", name=name)
    if json:
        output.print_json(repo)
        return
    output.fields(
        [
            ("name", repo["name"]),
            ("workspace", repo["workspace"]),
            ("visibility", repo["visibility"]),
            ("created", output.when(repo["created_at"])),
            ("you may", repo["actions"]),
        ]
    )


@repo_app.command("visibility")
def visibility(
    name: Repo,
    value: Annotated[str, typer.Argument(metavar="public|private", help="Public: anyone may pull.")],
) -> None:
    """Make a repository public or private (maintainers): also its catalog image and all the
    image's versions, internal and external (the same setting as 'dockyard image visibility')."""
    with connect() as api:
        repo = api.put("/repository/visibility", {"visibility": value}, name=name)
    output.say(f"{repo['name']} is {repo['visibility']}.")


def _show_permissions(perms: dict[str, Any]) -> None:
    output.table(
        ["WHO", "KIND", "RIGHT", "EXPIRES"],
        [
            *([team, "team", role, "never"] for team, role in perms["teams"]),
            *([g["username"], "user", g["action"], output.when(g["expires_at"])] for g in perms["users"]),
        ],
        empty="No team or user permissions (workspace roles still apply).",
    )


@repo_app.command("permissions")
def permissions(name: Repo, json: output.JsonFlag = False) -> None:
    """Teams and users with rights on the repository itself (maintainers)."""
    with connect() as api:
        perms = api.get("/repository/permissions", name=name)
    if json:
        output.print_json(perms)
    else:
        _show_permissions(perms)


@repo_app.command("grant")
def grant(
    name: Repo,
    user: Annotated[str, typer.Argument(metavar="USER", help="The username.")],
    push: Annotated[bool, typer.Option("--push", help="Push and pull (default: pull only).")] = False,
    expires_days: Annotated[
        float | None,
        typer.Option("--expires-days", parser=grant_days, help="Days until it ends. Default: permanent."),
    ] = None,
) -> None:
    """Let a user pull (or push) this repository (maintainers)."""
    body = {"username": user, "action": "push" if push else "pull", "expires_in_days": expires_days}
    with connect() as api:
        found = api.put("/repository/permissions/users", body, name=name)
    output.say(f"{found['username']} may {found['action']} {name} until {output.when(found['expires_at'])}.")


@repo_app.command("revoke")
def revoke(name: Repo, user: Annotated[str, typer.Argument(metavar="USER", help="The username.")]) -> None:
    """Revoke a user's direct permission on the repository (maintainers)."""
    with connect() as api:
        api.delete(f"/repository/permissions/users/{seg(user)}", name=name)
    output.say(f"Revoked {user}'s permission on {name}.")


@repo_app.command("team-role")
def team_role(
    name: Repo,
    team: Annotated[str, typer.Argument(metavar="TEAM", help="A team of the repository's workspace.")],
    role: Annotated[str, typer.Argument(metavar="ROLE|none", help="reader, developer, maintainer or none.")],
) -> None:
    """Set a team's role on this repository (maintainers); 'none' removes it."""
    with connect() as api:
        perms = api.put(
            "/repository/permissions/teams", {"team": team, "role": output.role_or_none(role)}, name=name
        )
    _show_permissions(perms)


def register(app: typer.Typer) -> None:
    app.add_typer(repo_app, name="repo", rich_help_panel=output.PANEL)
