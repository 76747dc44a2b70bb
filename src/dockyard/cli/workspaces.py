"""``dockyard workspace``, ``member`` and ``team``: who belongs to a workspace, in which role."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from dockyard.cli import output
from dockyard.cli.caches import cache_app
from dockyard.cli.client import connect, seg
from dockyard.cli.quotas import quota_app

workspace_app = typer.Typer(
    help="Workspaces: the first part of a repository name, like 'genomics/'.", no_args_is_help=True
)
member_app = typer.Typer(help="Workspace members and their roles (owners manage them).", no_args_is_help=True)
team_app = typer.Typer(help="Teams of a workspace (owners manage them).", no_args_is_help=True)
workspace_app.add_typer(quota_app, name="quota")
workspace_app.add_typer(cache_app, name="cache")

Ws = Annotated[str, typer.Argument(metavar="WORKSPACE", help="The workspace.")]
Team = Annotated[str, typer.Argument(metavar="TEAM", help="The team.")]
User = Annotated[str, typer.Argument(metavar="USER", help="The username.")]
ROLES = "reader, developer, maintainer or owner"


def _permissions(pairs: list[list[Any]]) -> str:
    return ", ".join(f"{role} on {repo or 'the workspace'}" for repo, role in pairs) or "-"


# --- workspaces -----------------------------------------------------------------------


@workspace_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Lowercase letters, digits and . _ - separators.")],
    public_default: Annotated[
        bool, typer.Option("--public-default", help="New repositories start public (default: private).")
    ] = False,
    description: Annotated[str, typer.Option(help="What the workspace is for.")] = "",
) -> None:
    """Create an organisation workspace; you become its owner."""
    body = {
        "name": name,
        "description": description,
        "default_visibility": "public" if public_default else "private",
    }
    with connect() as api:
        ws = api.post("/workspaces", body)
    output.say(
        f"Created workspace {ws['name']} (new repositories are {ws['default_visibility']}); you own it."
    )


@workspace_app.command("list")
def list_workspaces(
    mine: Annotated[bool, typer.Option("--mine", help="Only those you belong to.")] = False,
    json: output.JsonFlag = False,
) -> None:
    """List the workspaces you can see."""
    with connect() as api:
        found = api.get("/workspaces", mine=mine or None)
    if json:
        output.print_json(found)
        return
    output.table(
        ["NAME", "KIND", "NEW REPOS", "MY ROLE", "DESCRIPTION"],
        ([w["name"], w["kind"], w["default_visibility"], w["my_role"], w["description"]] for w in found),
        empty="No workspaces.",
    )


@workspace_app.command("show")
def show(name: Ws, json: output.JsonFlag = False) -> None:
    """Show a workspace."""
    with connect() as api:
        ws = api.get(f"/workspaces/{seg(name)}")
    if json:
        output.print_json(ws)
        return
    output.fields(
        [
            ("name", ws["name"]),
            ("kind", ws["kind"]),
            ("description", ws["description"]),
            ("new repositories", ws["default_visibility"]),
            ("created", output.when(ws["created_at"])),
            ("your role", ws["my_role"] or "none"),
        ]
    )


@workspace_app.command("set")
def update(
    name: Ws,
    default_visibility: Annotated[
        str | None, typer.Option(help="public or private, for repositories created from now on.")
    ] = None,
    description: Annotated[str | None, typer.Option(help="What the workspace is for.")] = None,
) -> None:
    """Change a workspace's description or default visibility (owners)."""
    if default_visibility is None and description is None:
        raise typer.BadParameter("give --default-visibility and/or --description")
    body = {"default_visibility": default_visibility, "description": description}
    with connect() as api:
        ws = api.patch(f"/workspaces/{seg(name)}", body)
    output.say(f"Workspace {ws['name']}: new repositories are {ws['default_visibility']}.")


# --- members ----------------------------------------------------------------------------


@member_app.command("add")
def add_member(
    workspace: Ws, user: User, role: Annotated[str, typer.Option("--role", "-r", help=ROLES + ".")]
) -> None:
    """Add a member, or change a member's role (owners)."""
    with connect() as api:
        member = api.put(f"/workspaces/{seg(workspace)}/members/{seg(user)}", {"role": role})
    output.say(f"{member['username']} is {member['role']} of {workspace}.")


@member_app.command("list")
def list_members(workspace: Ws, json: output.JsonFlag = False) -> None:
    """List the members of a workspace."""
    with connect() as api:
        members = api.get(f"/workspaces/{seg(workspace)}/members")
    if json:
        output.print_json(members)
        return
    output.table(
        ["USER", "ROLE", "SINCE"],
        ([m["username"], m["role"], output.when(m["since"])] for m in members),
        empty="No members.",
    )


@member_app.command("remove")
def remove_member(workspace: Ws, user: User) -> None:
    """Remove a member (owners; anyone may remove themselves)."""
    with connect() as api:
        api.delete(f"/workspaces/{seg(workspace)}/members/{seg(user)}")
    output.say(f"Removed {user} from {workspace}.")


# --- teams ------------------------------------------------------------------------------


@team_app.command("create")
def create_team(
    workspace: Ws, team: Team, description: Annotated[str, typer.Option(help="What the team does.")] = ""
) -> None:
    """Create a team (owners)."""
    with connect() as api:
        api.post(f"/workspaces/{seg(workspace)}/teams", {"name": team, "description": description})
    output.say(f"Created team {team} in {workspace}.")


@team_app.command("list")
def list_teams(workspace: Ws, json: output.JsonFlag = False) -> None:
    """List a workspace's teams, their members and roles."""
    with connect() as api:
        teams = api.get(f"/workspaces/{seg(workspace)}/teams")
    if json:
        output.print_json(teams)
        return
    output.table(
        ["TEAM", "MEMBERS", "ROLES", "DESCRIPTION"],
        ([t["name"], t["members"], _permissions(t["permissions"]), t["description"]] for t in teams),
        empty="No teams.",
    )


@team_app.command("delete")
def delete_team(workspace: Ws, team: Team) -> None:
    """Delete a team (owners)."""
    with connect() as api:
        api.delete(f"/workspaces/{seg(workspace)}/teams/{seg(team)}")
    output.say(f"Deleted team {team} of {workspace}.")


@team_app.command("add")
def add_to_team(workspace: Ws, team: Team, user: User) -> None:
    """Add a user to a team (owners)."""
    with connect() as api:
        found = api.put(f"/workspaces/{seg(workspace)}/teams/{seg(team)}/members/{seg(user)}", None)
    output.say(f"Team {team}: {', '.join(found['members'])}.")


@team_app.command("remove")
def remove_from_team(workspace: Ws, team: Team, user: User) -> None:
    """Remove a user from a team (owners)."""
    with connect() as api:
        found = api.delete(f"/workspaces/{seg(workspace)}/teams/{seg(team)}/members/{seg(user)}")
    output.say(f"Team {team}: {', '.join(found['members']) or 'no members'}.")


@team_app.command("role")
def team_role(
    workspace: Ws,
    team: Team,
    role: Annotated[str, typer.Argument(metavar="ROLE|none", help="reader, developer, maintainer or none.")],
) -> None:
    """Set the team's role on the whole workspace (owners); 'none' removes it."""
    with connect() as api:
        found = api.put(
            f"/workspaces/{seg(workspace)}/teams/{seg(team)}/role", {"role": output.role_or_none(role)}
        )
    output.say(f"Team {team}: {_permissions(found['permissions'])}.")


def register(app: typer.Typer) -> None:
    app.add_typer(workspace_app, name="workspace", rich_help_panel=output.PANEL)
    app.add_typer(member_app, name="member", rich_help_panel=output.PANEL)
    app.add_typer(team_app, name="team", rich_help_panel=output.PANEL)
