"""``dockyard image lineage NAME:VERSION``: the version's base image and the versions built on
it (attached to ``dockyard image``)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from dockyard.cli import output
from dockyard.cli.catalog_format import grid, short_digest, version_path
from dockyard.cli.client import connect
from dockyard.cli.images import split_name_version

Reference = Annotated[str, typer.Argument(metavar="NAME:VERSION", help="Like genomics/samtools:1.19.")]


def based_on_text(based_on: dict[str, Any] | None, updated: bool) -> str:
    """``Based on NAME:VERSION@DIGEST, N layers added`` (or the words for none or a hidden one)."""
    if based_on is None:
        return "No base image known (none in the catalog shares its first layers)."
    if not based_on["visible"]:
        return "Based on an image you cannot see."
    added = based_on["layers_added"]
    text = (
        f"Based on {based_on['image']}:{based_on['version']}@{based_on['digest']}, "
        f"{added} layer{'' if added == 1 else 's'} added."
    )
    return text + (" Base updated: a newer version of the base is in the catalog." if updated else "")


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def lineage(
    reference: Reference,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Children per page.")] = 50,
    offset: Annotated[int, typer.Option(min=0, help="Children to skip.")] = 0,
    json: output.JsonFlag = False,
) -> None:
    """Show the base image of a version and the versions built on it."""
    name, version = split_name_version(reference)
    path = version_path(name, version)
    with connect() as api:
        found = api.get(f"{path}/lineage")
        page = api.get(f"{path}/children", limit=limit, offset=offset)
    if json:
        output.print_json({**found, "children": page})
        return
    output.say(based_on_text(found["based_on"], found["base_updated"]))
    if found["base_updated"]:
        output.note(f"Rebuild it: dockyard image rebuild {name}:{version}")
    rows = [
        [
            f"{c['image']}:{c['version']}",
            short_digest(c["digest"]),
            str(c["layers_added"]),
            _yes(c["base_updated"]),
        ]
        for c in page["items"]
    ]
    grid(
        ["CHILD", "DIGEST", "LAYERS ADDED", "BASE UPDATED"],
        rows,
        empty="No versions you can see are built on it.",
    )
    if page["next_offset"] is not None:
        output.note(f"More: --offset {page['next_offset']}")


def rebuild(reference: Reference, json: output.JsonFlag = False) -> None:
    """Build the version again with the definition that built it (maintainers)."""
    name, version = split_name_version(reference)
    with connect() as api:
        run = api.post(f"{version_path(name, version)}/rebuild")
    if json:
        output.print_json(run)
        return
    output.say(f"Queued build {run['id']} of {run['image']}:{run['version']}.")


def attach(image_app: typer.Typer) -> None:
    image_app.command("lineage")(lineage)
    image_app.command("rebuild")(rebuild)
