"""``dockyard image region list|add|remove NAME:VERSION [REGION]``: the regions a version lives
in. ``add`` starts the server's copy job and follows it with a progress bar (bytes, speed,
blobs), as ``dockyard image import`` does; interrupting the command leaves the job running and
the same command again follows it."""

from __future__ import annotations

import sys
import time
from typing import Annotated, Any

import typer

from dockyard.cli import output
from dockyard.cli.catalog_format import human_size, version_path
from dockyard.cli.client import Client, connect
from dockyard.cli.errors import CliError
from dockyard.cli.images import split_name_version
from dockyard.cli.progress import transfer_bar

POLL_SECONDS = 0.5
region_app = typer.Typer(help="The regions a version's blobs are kept in.", no_args_is_help=True)
Reference = Annotated[str, typer.Argument(metavar="NAME:VERSION", help="A version stored in Dockyard.")]
Region = Annotated[
    str, typer.Argument(metavar="REGION", help="A region's name (GET /api/v1/regions lists them).")
]


@region_app.command("list")
def list_regions(reference: Reference, json: output.JsonFlag = False) -> None:
    """The regions a version lives in, each with its status."""
    name, version = split_name_version(reference)
    with connect() as api:
        found: dict[str, Any] = api.get(f"{version_path(name, version)}/regions")
    _show(found, json)


@region_app.command("add")
def add_region(
    reference: Reference,
    region: Region,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Start the copy and return.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    json: output.JsonFlag = False,
) -> None:
    """Copy a version's blobs to a region (maintainers); follows the copy until it ends."""
    name, version = split_name_version(reference)
    path = f"{version_path(name, version)}/regions"
    with connect() as api:
        found: dict[str, Any] = api.post(path, {"region": region})
        if not no_wait:
            found = _follow(api, path, region, found, quiet or not sys.stderr.isatty())
    _show(found, json)
    status = _of(found, region)
    if status is not None and status["status"] == "failed":
        raise CliError(f"copying {name}:{version} to {region} failed: {status['reason']}")


@region_app.command("remove")
def remove_region(reference: Reference, region: Region, json: output.JsonFlag = False) -> None:
    """Remove a version from a region (maintainers); its last region stays."""
    name, version = split_name_version(reference)
    with connect() as api:
        found: dict[str, Any] = api.delete(f"{version_path(name, version)}/regions/{region}")
    _show(found, json)


def _of(found: dict[str, Any], region: str) -> dict[str, Any] | None:
    return next((r for r in found["regions"] if r["region"] == region), None)


def _show(found: dict[str, Any], json: bool) -> None:
    if json:
        output.print_json(found)
        return
    rows = [
        (
            r["region"],
            r["status"] if not r["reason"] else f"{r['status']}: {r['reason']}",
            f"{r['blobs_done']}/{r['blobs_total']}" if r["blobs_total"] else "-",
            human_size(r["bytes_total"]) if r["bytes_total"] else "-",
        )
        for r in found["regions"]
    ]
    output.table(("REGION", "STATUS", "BLOBS", "SIZE"), rows, empty="no regions")


def _follow(api: Client, path: str, region: str, found: dict[str, Any], quiet: bool) -> dict[str, Any]:
    with transfer_bar(f"copying to {region}", quiet) as update:
        while (status := _of(found, region)) is not None and status["status"] == "copying":
            if status["bytes_total"]:
                update(status)
            time.sleep(POLL_SECONDS)
            found = api.get(path)
    return found


@region_app.callback()
def _regions() -> None:
    """The regions a version's blobs are kept in."""


def attach(image_app: typer.Typer) -> None:
    image_app.add_typer(region_app, name="region")
