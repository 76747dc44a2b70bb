"""``dockyard image ...``: the catalog of images users run (internal ones pushed here, external
ones registered by reference), their versions, statuses and warnings.

Image names are whole catalog names, like ``genomics/samtools``. Registering and changing
versions is in :mod:`dockyard.cli.image_changes`; workspace policies, usage and upstream
credentials in :mod:`dockyard.cli.catalog_admin`.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from dockyard.cli import archives, downloads, image_changes, output
from dockyard.cli.catalog_format import (
    PANEL,
    Image,
    Kind,
    Platform,
    Status,
    Workspace,
    amd64_flag,
    grid,
    human_size,
    image_path,
    short_digest,
    status_summary,
    styled_status,
    version_details,
    version_names,
    version_path,
)
from dockyard.cli.client import connect
from dockyard.cli.errors import CliError
from dockyard.cli.marks import marks_line
from dockyard.cli.numbers import MAX_ID

image_app = typer.Typer(
    help="The catalog: images and versions users run, internal (pushed here) or external.",
    no_args_is_help=True,
)


# --- listing and showing ----------------------------------------------------------------


@image_app.command("list")
def list_images(
    workspace: Workspace = None,
    source: Annotated[str | None, typer.Option(help="internal or external.")] = None,
    kind: Kind = None,
    status: Status = None,
    platform: Platform = None,
    query: Annotated[
        str | None, typer.Option("--query", "-q", help="Text in the name or description.")
    ] = None,
    mark: Annotated[
        str | None, typer.Option(help="official, verified, dockerfile, built, signed or sbom.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Images per page.")] = 50,
    offset: Annotated[int, typer.Option(min=0, max=MAX_ID, help="Images to skip.")] = 0,
    json: output.JsonFlag = False,
) -> None:
    """List the images you may see, with the versions that match the filters."""
    params = {
        "workspace": workspace,
        "source": source,
        "type": kind,
        "status": status,
        "platform": platform,
        "q": query,
        "mark": mark,
        "limit": limit,
        "offset": offset,
    }
    with connect() as api:
        page = api.get("/images", **params)
    if json:
        output.print_json(page)
        return
    items = page["items"]
    grid(
        ["NAME", "SOURCE", "TYPE", "VERSIONS", "STATUS", "MARKS", "UPDATED", "DESCRIPTION"],
        (
            [
                i["name"],
                i["source"],
                sorted({v["kind"] for v in i["versions"]}),
                version_names(i["versions"]),
                status_summary(i["versions"]),
                marks_line(i.get("marks")),
                output.when(i["updated_at"]),
                i["description"],
            ]
            for i in items
        ),
        empty="No images.",
    )
    total = page["total"]
    exact = page.get("total_exact", True)  # counted up to the server's cap, then "N+"
    if items:
        first = page["offset"] + 1
        of = total if exact else f"{max(total, first + len(items) - 1)}+"
        shown = f"{len(items)} of {of}" if first == 1 else f"{first}-{first + len(items) - 1} of {of}"
        output.say(f"{shown} image{'s' if total != 1 else ''}")
        more = page["offset"] + len(items) < total if exact else len(items) == page["limit"]
        if more:
            output.note(f"next page: --offset {page['offset'] + len(items)}")


@image_app.command("show")
def show(name: Image, json: output.JsonFlag = False) -> None:
    """Show an image, its versions, their statuses and warnings."""
    with connect() as api:
        image = api.get(image_path(name))
    if json:
        output.print_json(image)
        return
    built = f"{output.when(image['built_at'])} by {image['built_by']}" if image["built_at"] else "never"
    output.fields(
        [
            ("name", image["name"]),
            ("workspace", image["workspace"]),
            ("source", image["source"]),
            ("visibility", image["visibility"]),
            ("description", image["description"]),
            ("created", f"{output.when(image['created_at'])} by {image['created_by']}"),
            ("modified", f"{output.when(image['updated_at'])} by {image['updated_by']}"),
            ("built", built),
            ("marks", marks_line(image.get("marks"))),
        ]
    )
    versions = image["versions"]
    output.say("")
    grid(
        ["VERSION", "SOURCE", "TYPE", "STATUS", "PLATFORMS", "AMD64", "SIZE", "UNPACKED", "DIGEST"],
        (
            [
                v["version"],
                v["source"],
                v["kind"],
                styled_status(v["status"]),
                v["platforms"],
                amd64_flag(v["has_amd64"]),
                human_size(v["compressed_size"]),
                human_size(v["uncompressed_size"]),
                short_digest(v["digest"]),
            ]
            for v in versions
        ),
        empty="No versions.",
    )
    for version in versions:
        version_details(version)


def _shown(value: Any) -> str:
    if value in (None, "", []):
        return "none"
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def _detail(detail: dict[str, Any]) -> str:
    """A history event's detail on one line; a change as ``field: before -> after``."""
    if changes := detail.get("changes"):
        return "; ".join(f"{k}: {_shown(c['before'])} -> {_shown(c['after'])}" for k, c in changes.items())
    return ", ".join(f"{k}={v}" for k, v in detail.items() if v is not None)


@image_app.command("events")
def events(name: Image, json: output.JsonFlag = False) -> None:
    """The image's history: created, pushed, verified, modified (newest first)."""
    with connect() as api:
        found = api.get(f"{image_path(name)}/events")
    if json:
        output.print_json(found)
        return
    output.table(
        ["WHEN", "WHO", "WHAT", "VERSION", "DETAIL"],
        (
            [
                output.when(e["at"]),
                e["actor"],
                e["kind"],
                e["version"],
                _detail(e["detail"]),
            ]
            for e in found
        ),
        empty="No events.",
    )


@image_app.command("usage")
def usage(name: Image, json: output.JsonFlag = False) -> None:
    """Bytes stored for the image (layers shared by its versions count once) and each version."""
    with connect() as api:
        found = api.get(f"{image_path(name)}/usage")
    if json:
        output.print_json(found)
        return
    output.say(f"{found['image']}: {human_size(found['bytes'])} stored")
    output.table(
        ["VERSION", "SIZE"],
        ([v["version"], human_size(v["bytes"])] for v in found["versions"]),
        empty="No internal versions (external versions are not stored here).",
    )


# --- consumers --------------------------------------------------------------------------


def split_name_version(text: str) -> tuple[str, str]:
    name, colon, version = text.rpartition(":")
    if not colon or not name or not version or "/" in version:
        raise CliError(f"{text!r} is not NAME:VERSION", hint="like genomics/samtools:1.19", exit_code=2)
    return name, version


@image_app.command("resolve")
def resolve(
    reference: Annotated[str, typer.Argument(metavar="NAME:VERSION", help="Like genomics/samtools:1.19.")],
    json: output.JsonFlag = False,
) -> None:
    """Print the digest-pinned pull reference: docker pull $(dockyard image resolve NAME:VERSION)."""
    name, version = split_name_version(reference)
    with connect() as api:
        pinned = api.get(f"{version_path(name, version)}/resolve")
    if json:
        output.print_json(pinned)
    else:
        typer.echo(pinned["reference"])


@image_app.command("runnable")
def runnable(
    workspace: Workspace = None,
    kind: Kind = None,
    status: Status = None,
    platform: Platform = None,
    json: output.JsonFlag = False,
) -> None:
    """List the versions you may run, with what to pull."""
    with connect() as api:
        found = api.get("/runnable", workspace=workspace, type=kind, status=status, platform=platform)
    if json:
        output.print_json(found)
        return
    grid(
        ["IMAGE", "VERSION", "SOURCE", "TYPE", "STATUS", "PLATFORMS", "PULL"],
        (
            [
                r["image"],
                r["version"],
                r["source"],
                r["kind"],
                styled_status(r["status"]),
                r["platforms"],
                r["pull"],
            ]
            for r in found
        ),
        empty="No runnable images.",
    )


def register(app: typer.Typer) -> None:
    image_changes.attach(image_app)
    downloads.attach(image_app)
    archives.attach(image_app)
    app.add_typer(image_app, name="image", rich_help_panel=PANEL)
