"""``dockyard workspace quota``: the bytes a workspace stores and its limit."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from dockyard.cli import output
from dockyard.cli.catalog_format import human_size
from dockyard.cli.client import connect, seg

quota_app = typer.Typer(
    help="A workspace's stored bytes (each blob once) and its quota (admins set it).", no_args_is_help=True
)

Ws = Annotated[str, typer.Argument(metavar="WORKSPACE", help="The workspace.")]


def _size(size: int | None) -> str:
    return "unlimited" if size is None else f"{human_size(size)} [{size} bytes]"


def _print(quota: dict[str, Any]) -> None:
    limit = quota["limit_bytes"]
    if quota["own_limit_bytes"] is not None:
        source = "set for this workspace"
    elif limit is not None:
        source = "the platform default"
    else:
        source = "no quota"
    percent = "" if quota["percent"] is None else f" ({quota['percent']:g}%)"
    output.fields(
        [
            ("workspace", quota["workspace"]),
            ("stored", f"{_size(quota['used_bytes'])}{percent}"),
            ("quota", f"{_size(limit)} ({source})"),
        ]
    )


@quota_app.command("show")
def show(name: Ws, json: output.JsonFlag = False) -> None:
    """Show what the workspace stores and its quota (members)."""
    with connect() as api:
        quota = api.get(f"/workspaces/{seg(name)}/quota")
    if json:
        output.print_json(quota)
        return
    _print(quota)


@quota_app.command("set")
def set_quota(
    name: Ws,
    size: Annotated[
        str,
        typer.Argument(
            metavar="SIZE",
            help="Bytes, or a size such as 500GiB, 1.5TiB, 2TB (KiB/MiB/GiB: 1024s; kB/MB/GB: 1000s).",
        ),
    ],
    json: output.JsonFlag = False,
) -> None:
    """Set the workspace's quota (platform admins). Below its current usage is allowed: pushes
    of new layers are then refused until enough is deleted."""
    _put(name, int(size) if size.isdigit() else size, json)  # the server checks and bounds it


@quota_app.command("clear")
def clear(name: Ws, json: output.JsonFlag = False) -> None:
    """Remove the workspace's own quota (platform admins): the platform default applies again."""
    _put(name, None, json)


def _put(name: str, limit: int | str | None, json: bool) -> None:
    with connect() as api:
        quota = api.put(f"/workspaces/{seg(name)}/quota", {"limit_bytes": limit})
    if json:
        output.print_json(quota)
    else:
        _print(quota)
