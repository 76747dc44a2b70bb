"""The catalog's workspace settings: ``dockyard workspace usage`` and ``workspace policy``, and
``dockyard credentials ...`` (the logins a workspace keeps for other registries, used to verify
its private external images; secrets are sent once and never shown again)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from dockyard.cli import output
from dockyard.cli.catalog_format import PANEL, human_size
from dockyard.cli.client import connect, seg
from dockyard.cli.errors import CliError
from dockyard.cli.workspaces import Ws, workspace_app

credentials_app = typer.Typer(
    help="Credentials a workspace keeps for other registries, to verify private external images "
    "(maintainers).",
    no_args_is_help=True,
)

Registry = Annotated[
    str,
    typer.Argument(metavar="REGISTRY", help="The registry host, like quay.io or registry.example.org:5000."),
]


@workspace_app.command("usage")
def workspace_usage(workspace: Ws, json: output.JsonFlag = False) -> None:
    """Bytes the workspace's images store (shared layers count once), per image (members)."""
    with connect() as api:
        found = api.get(f"/workspaces/{seg(workspace)}/usage")
    if json:
        output.print_json(found)
        return
    output.say(f"{found['workspace']}: {human_size(found['bytes'])} stored")
    output.table(
        ["IMAGE", "SIZE", "VERSIONS"],
        (
            [
                i["image"],
                human_size(i["bytes"]),
                ", ".join(f"{v['version']}: {human_size(v['bytes'])}" for v in i["versions"]),
            ]
            for i in found["images"]
        ),
        empty="No internal images.",
    )


@workspace_app.command("policy")
def policy(
    workspace: Ws,
    require_amd64: Annotated[
        bool | None,
        typer.Option(
            "--require-amd64/--no-require-amd64",
            help="Refuse versions without linux/amd64 (owners). Without it: show the policy.",
        ),
    ] = None,
    json: output.JsonFlag = False,
) -> None:
    """Show or set the workspace's catalog policy."""
    path = f"/workspaces/{seg(workspace)}/catalog-policy"
    with connect() as api:
        found = api.get(path) if require_amd64 is None else api.put(path, {"require_amd64": require_amd64})
    if json:
        output.print_json(found)
    elif found["require_amd64"]:
        output.say(f"{workspace}: versions without linux/amd64 are refused (require-amd64 on).")
    else:
        output.say(f"{workspace}: versions without linux/amd64 are allowed and flagged (require-amd64 off).")


@workspace_app.command("immutable-tags")
def immutable_tags(
    workspace: Ws,
    pattern: Annotated[
        list[str] | None,
        typer.Option("--pattern", "-p", help="Tags never moved once pushed, like 'v*' or '*'; repeat it."),
    ] = None,
    exception: Annotated[
        list[str] | None,
        typer.Option("--except", "-e", help="Tags that stay movable, like 'latest'; repeat it."),
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="No tag is immutable any more.")] = False,
    json: output.JsonFlag = False,
) -> None:
    """Show or set the tags a push may not move (owners set them). Setting replaces the rules."""
    path = f"/workspaces/{seg(workspace)}/immutable-tags"
    if clear and (pattern or exception):
        raise CliError("--clear takes no --pattern or --except", exit_code=2)
    with connect() as api:
        if clear or pattern or exception:
            found = api.put(path, {"patterns": pattern or [], "exceptions": exception or []})
        else:
            found = api.get(path)
    if json:
        output.print_json(found)
    elif not found["patterns"]:
        output.say(f"{workspace}: no immutable tags; a push may move any tag.")
    else:
        kept = ", ".join(found["exceptions"]) or "none"
        output.say(
            f"{workspace}: tags matching {', '.join(found['patterns'])} are immutable (except: {kept})."
        )


def _read_secret(from_stdin: bool) -> str:
    if from_stdin:
        value = sys.stdin.readline().rstrip("\r\n")
        if not value:
            raise CliError("--secret-stdin: nothing on standard input", exit_code=2)
        return value
    value = str(typer.prompt("Password or access token", hide_input=True))
    if not value:
        raise CliError("empty secret", exit_code=2)
    return value


@credentials_app.command("set")
def set_credentials(
    workspace: Ws,
    registry: Registry,
    username: Annotated[str, typer.Option("--username", "-u", help="The login at that registry.")],
    secret_stdin: Annotated[
        bool, typer.Option("--secret-stdin", help="Read the password or token from standard input.")
    ] = False,
) -> None:
    """Keep a login for a registry (replaces the one kept before); the secret is stored encrypted."""
    secret = _read_secret(secret_stdin)
    body = {"registry": registry, "username": username, "secret": secret}
    with connect() as api:
        found = api.put(f"/workspaces/{seg(workspace)}/upstream-credentials", body)
    output.say(f"{workspace} keeps credentials for {found['registry']} as {found['username']}.")


@credentials_app.command("list")
def list_credentials(workspace: Ws, json: output.JsonFlag = False) -> None:
    """List the registries a workspace keeps credentials for (never the secrets)."""
    with connect() as api:
        found = api.get(f"/workspaces/{seg(workspace)}/upstream-credentials")
    if json:
        output.print_json(found)
        return
    output.table(
        ["REGISTRY", "USERNAME", "SET", "BY"],
        ([c["registry"], c["username"], output.when(c["created_at"]), c["created_by"]] for c in found),
        empty="No credentials kept.",
    )


@credentials_app.command("remove")
def remove_credentials(workspace: Ws, registry: Registry) -> None:
    """Forget the credentials for a registry."""
    with connect() as api:
        api.delete(f"/workspaces/{seg(workspace)}/upstream-credentials/{seg(registry)}")
    output.say(f"{workspace} keeps no credentials for {registry} any more.")


def register(app: typer.Typer) -> None:
    app.add_typer(credentials_app, name="credentials", rich_help_panel=PANEL)
