"""``dockyard robot ...``: robot accounts of a workspace, for CI jobs and compute nodes.

A robot logs in to the registry as ``WORKSPACE+NAME`` with one of its tokens.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

import typer

from dockyard.cli import output
from dockyard.cli.client import connect, seg
from dockyard.cli.numbers import MAX_ID
from dockyard.cli.users import ExpiresDays, show_new_token, token_table

robot_app = typer.Typer(
    help="Robot accounts: registry logins for CI and compute nodes (owners manage them).",
    no_args_is_help=True,
)

Ws = Annotated[str, typer.Argument(metavar="WORKSPACE", help="The workspace.")]
Name = Annotated[str, typer.Argument(metavar="NAME", help="The robot's name.")]


def _path(workspace: str, name: str) -> str:
    return f"/workspaces/{seg(workspace)}/robots/{seg(name)}"


def _permissions(robot: dict[str, Any]) -> str:
    return ", ".join(f"{role} on {repo or 'the workspace'}" for repo, role in robot["permissions"]) or "none"


def full_repository(workspace: str, repository: str) -> str:
    """``app`` -> ``WORKSPACE/app``; a name already in the workspace stays as it is."""
    if repository == workspace or repository.startswith(workspace + "/"):
        return repository
    return f"{workspace}/{repository}"


@robot_app.command("create")
def create(
    workspace: Ws, name: Name, description: Annotated[str, typer.Option(help="What it is for.")] = ""
) -> None:
    """Create a robot account (owners). Give it a role with 'robot grant'."""
    with connect() as api:
        robot = api.post(f"/workspaces/{seg(workspace)}/robots", {"name": name, "description": description})
    output.say(f"Created robot {robot['login']}. Next: 'dockyard robot grant {workspace} {name} ROLE'.")


@robot_app.command("list")
def list_robots(workspace: Ws, json: output.JsonFlag = False) -> None:
    """List a workspace's robots (maintainers)."""
    with connect() as api:
        robots = api.get(f"/workspaces/{seg(workspace)}/robots")
    if json:
        output.print_json(robots)
        return
    output.table(
        ["LOGIN", "ROLES", "DISABLED", "CREATED", "DESCRIPTION"],
        (
            [r["login"], _permissions(r), r["disabled"], output.when(r["created_at"]), r["description"]]
            for r in robots
        ),
        empty="No robots.",
    )


@robot_app.command("delete")
def delete(workspace: Ws, name: Name) -> None:
    """Delete a robot and its tokens (owners)."""
    with connect() as api:
        api.delete(_path(workspace, name))
    output.say(f"Deleted robot {workspace}+{name}.")


@robot_app.command("grant")
def grant(
    workspace: Ws,
    name: Name,
    role: Annotated[str, typer.Argument(metavar="ROLE|none", help="reader, developer, maintainer or none.")],
    repository: Annotated[
        str | None, typer.Option("--repository", help="Only this repository (default: the whole workspace).")
    ] = None,
) -> None:
    """Set the robot's role on the workspace or on one repository (owners); 'none' removes it."""
    body = {
        "repository": None if repository is None else full_repository(workspace, repository),
        "role": output.role_or_none(role),
    }
    with connect() as api:
        robot = api.put(f"{_path(workspace, name)}/permissions", body)
    output.say(f"Robot {robot['login']}: {_permissions(robot)}.")


@robot_app.command("token")
def token(
    workspace: Ws,
    name: Name,
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", "-s", help="pull, push or delete; repeat it. Default: pull."),
    ] = None,
    expires_days: ExpiresDays = None,
    token_name: Annotated[str, typer.Option("--name", help="A label for the token.")] = "ci",  # noqa: S107  # a label
    json: output.JsonFlag = False,
) -> None:
    """Create a token for the robot and print its secret once (owners)."""
    body: dict[str, Any] = {"name": token_name, "expires_in_days": expires_days}
    if scope:
        body["scopes"] = scope
    with connect() as api:
        created = api.post(f"{_path(workspace, name)}/tokens", body)
        registry = urlsplit(api.url).netloc
    login = f"{workspace}+{name}"
    if json:
        output.print_json({**created, "login": login})
        return
    show_new_token(created, login)
    output.say("With the secret in $TOKEN, log in like this:")
    output.say(f"    echo \"$TOKEN\" | docker login {registry} -u '{login}' --password-stdin")


@robot_app.command("tokens")
def tokens(workspace: Ws, name: Name, json: output.JsonFlag = False) -> None:
    """List a robot's tokens (maintainers)."""
    with connect() as api:
        found = api.get(f"{_path(workspace, name)}/tokens")
    if json:
        output.print_json(found)
    else:
        token_table(found)


@robot_app.command("revoke")
def revoke(
    workspace: Ws,
    name: Name,
    token_id: Annotated[int, typer.Argument(metavar="ID", min=1, max=MAX_ID, help="From 'robot tokens'.")],
) -> None:
    """Revoke one of a robot's tokens (owners)."""
    with connect() as api:
        api.delete(f"{_path(workspace, name)}/tokens/{token_id}")
    output.say(f"Token {token_id} of {workspace}+{name} revoked.")


def register(app: typer.Typer) -> None:
    app.add_typer(robot_app, name="robot", rich_help_panel=output.PANEL)
