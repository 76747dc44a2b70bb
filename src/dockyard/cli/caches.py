"""``dockyard workspace cache``: a workspace as a pull-through cache (admins set it)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from dockyard.cli import output
from dockyard.cli.catalog_format import human_size
from dockyard.cli.client import connect, seg

cache_app = typer.Typer(
    help="A workspace as a pull-through cache of other registries: <workspace>/<registry host>/<path>.",
    no_args_is_help=True,
)

Ws = Annotated[str, typer.Argument(metavar="WORKSPACE", help="The workspace.")]


def _print(cache: dict[str, Any]) -> None:
    output.fields(
        [
            ("workspace", cache["workspace"]),
            ("stored", f"{human_size(cache['used_bytes'])} ({cache['percent']:g}% of the limit)"),
            ("limit", f"{human_size(cache['limit_bytes'])} [{cache['limit_bytes']} bytes]"),
            ("revalidate tags after", f"{cache['revalidate_seconds']} s"),
        ]
    )


@cache_app.command("show")
def show(name: Ws, json: output.JsonFlag = False) -> None:
    """Show the cache's limit, revalidation time and what it stores (members)."""
    with connect() as api:
        cache = api.get(f"/workspaces/{seg(name)}/cache")
    if json:
        output.print_json(cache)
        return
    _print(cache)


@cache_app.command("set")
def set_cache(
    name: Ws,
    limit: Annotated[str, typer.Option("--cache-limit", help="Size limit: bytes or 50GiB, 2TB...")],
    revalidate: Annotated[
        str,
        typer.Option("--revalidate", help="Ask the upstream again about a tag once this old: 600, 10m, 2h."),
    ] = "10m",
    json: output.JsonFlag = False,
) -> None:
    """Make the workspace a pull-through cache (platform admins): pull
    <workspace>/docker.io/library/alpine:3.20 to fetch docker.io/library/alpine:3.20 once."""
    body = {"limit_bytes": int(limit) if limit.isdigit() else limit, "revalidate_seconds": revalidate}
    with connect() as api:
        cache = api.put(f"/workspaces/{seg(name)}/cache", body)  # the server checks and bounds both
    if json:
        output.print_json(cache)
        return
    _print(cache)


@cache_app.command("clear")
def clear(name: Ws) -> None:
    """Stop caching (platform admins): what was cached stays, as ordinary repositories."""
    with connect() as api:
        api.delete(f"/workspaces/{seg(name)}/cache")
    typer.echo(f"{name} is no longer a pull-through cache")
