"""``dockyard image import NAME:VERSION [--platform P ...]``: copy an external version into
Dockyard's storage (all platforms, or the chosen ones) and follow the server's job with a
progress bar (bytes, speed, blobs). The job is the server's: interrupting the command leaves
it running; the same command again follows it (or shows that it is done)."""

from __future__ import annotations

import sys
import time
from typing import Annotated, Any

import typer

from dockyard.cli import output
from dockyard.cli.catalog_format import human_size, version_path
from dockyard.cli.client import Client, connect
from dockyard.cli.errors import ApiError, CliError
from dockyard.cli.images import split_name_version
from dockyard.cli.progress import transfer_bar

POLL_SECONDS = 0.5


def import_version(
    reference: Annotated[str, typer.Argument(metavar="NAME:VERSION", help="An external version.")],
    platform: Annotated[
        list[str] | None,
        typer.Option(
            "--platform", "-p", help="Copy only this platform (like linux/amd64 or linux/arm/v7); repeatable."
        ),
    ] = None,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Start the import and return.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    json: output.JsonFlag = False,
) -> None:
    """Import an external version into Dockyard: it becomes stored here (push permission)."""
    name, version = split_name_version(reference)
    path = f"{version_path(name, version)}/import"
    with connect() as api:
        try:
            found: dict[str, Any] = api.post(path, {"platforms": platform or []})
        except ApiError as exc:
            if exc.status != 409:
                raise
            found = api.get(path)  # stored already: show the import that made it so, if any
        if not no_wait:
            found = _follow(api, path, found, quiet or not sys.stderr.isatty())
    if json:
        output.print_json(found)
        return
    if found["state"] == "running":
        output.say(f"Importing {name}:{version} (job {found['job_id']}); follow it with the same command.")
    elif found["state"] == "succeeded":
        progress = found.get("progress") or {}
        output.say(
            f"Imported {name}:{version} from {found['source_reference']} ({found['digest']}): "
            f"{progress.get('blobs_total', 0)} blobs, {human_size(progress.get('bytes_total', 0))}, "
            f"{progress.get('blobs_skipped', 0)} already stored."
        )
    else:
        raise CliError(f"the import of {name}:{version} failed: {found['error']}")


def _follow(api: Client, path: str, found: dict[str, Any], quiet: bool) -> dict[str, Any]:
    with transfer_bar("importing", quiet) as update:
        while found["state"] == "running":
            progress = found.get("progress") or {}
            if "bytes_total" in progress:
                update(progress)
            time.sleep(POLL_SECONDS)
            found = api.get(path)
    return found


def attach(image_app: typer.Typer) -> None:
    image_app.command("import")(import_version)
