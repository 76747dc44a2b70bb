"""``dockyard image add``, ``add-version``, ``set``, ``visibility``, ``describe`` and ``verify``:
registering external images, changing versions and the image's one visibility (attached to
``dockyard image``)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.text import Text

from dockyard.cli import output
from dockyard.cli.catalog_format import (
    CREDENTIALS_HINT,
    Clusters,
    Image,
    Kind,
    NewVersion,
    Regions,
    Version,
    Visibility,
    human_size,
    image_path,
    settings_body,
    show_warnings,
    styled_status,
    version_details,
    version_path,
)
from dockyard.cli.client import Client, connect
from dockyard.cli.errors import CliError


def _registered(version: dict[str, Any], reference: str, filled: list[str]) -> None:
    output.say(
        f"Registered {version['image']}:{version['version']} "
        f"({version['source']}, {version['kind']}, {version['status']})."
    )
    if filled:
        output.say("Filled in from the reference: " + ", ".join(filled) + ".")
    if version["external_reference"] and version["external_reference"] != reference:
        output.say(f"Reference: {version['external_reference']} (normalised from {reference!r}).")
    if version["status"] == "unverified":
        show_warnings(version, indent="")
        output.note(f"Check it now: dockyard image verify {version['image']} {version['version']}")
    else:  # verified at once, as the workspace's amd64 policy asks
        version_details(version, heading=False)


def _filled(version: dict[str, Any], name: str | None, given_version: str | None) -> list[str]:
    filled = []
    if name is None:
        filled.append(f"name {version['image']}")
    if given_version is None:
        filled.append(f"version {version['version']}")
    return filled


def _personal_workspace(api: Client) -> str:
    username: str = api.get("/user")["username"]
    return username


def add(
    reference: Annotated[
        str,
        typer.Argument(help="Like quay.io/biocontainers/samtools:1.19--h50ea8bc_0 or docker.io/alpine:3.20."),
    ],
    workspace: Annotated[
        str | None, typer.Option("--workspace", "-w", help="Its workspace (default: your personal one).")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="The image's name (default: the reference's last part).")
    ] = None,
    version: NewVersion = None,
    kind: Kind = None,
    visibility: Visibility = None,
    region: Regions = None,
    cluster: Clusters = None,
    description: Annotated[str, typer.Option(help="What the image is for.")] = "",
    json: output.JsonFlag = False,
) -> None:
    """Register an external image by reference (it stays in its registry; developers)."""
    with connect() as api:
        body = {
            "workspace": workspace or _personal_workspace(api),
            "reference": reference,
            "name": name,
            "version": version,
            "description": description,
            **settings_body(kind, visibility, region, cluster),
        }
        created = api.post("/images", body)
        shown = api.get(image_path(created["image"]))
    if json:
        output.print_json(created)
    else:
        _registered(created, reference, _filled(created, name, version))
        output.say(f"{shown['name']} is {shown['visibility']}: {VISIBILITY_MEANS[shown['visibility']]}.")


def add_version(
    name: Image,
    reference: Annotated[str, typer.Argument(help="The external reference of the new version.")],
    version: NewVersion = None,
    kind: Kind = None,
    region: Regions = None,
    cluster: Clusters = None,
    json: output.JsonFlag = False,
) -> None:
    """Add an external version to an image (developers); it has the image's visibility."""
    body = {"reference": reference, "version": version, **settings_body(kind, None, region, cluster)}
    with connect() as api:
        created = api.post(f"{image_path(name)}/versions", body)
    if json:
        output.print_json(created)
    else:
        _registered(created, reference, _filled(created, name, version))


def update_version(
    name: Image,
    version: Version,
    kind: Kind = None,
    region: Regions = None,
    cluster: Clusters = None,
) -> None:
    """Change a version's type, regions or clusters (developers). Who sees it is the image's
    visibility: 'dockyard image visibility'."""
    body = {k: v for k, v in settings_body(kind, None, region, cluster).items() if v is not None}
    if not body:
        raise typer.BadParameter("give --type, --region and/or --cluster")
    with connect() as api:
        found = api.patch(version_path(name, version), body)
    regions, clusters = (output.cell(found[k]).plain for k in ("regions", "cluster_compatibility"))
    output.say(
        f"{found['image']}:{found['version']}: {found['kind']}, regions {regions}, clusters {clusters}."
    )


VISIBILITY_MEANS = {
    "public": "anyone may see it and pull it, signed in or not",
    "private": "members of its workspace and those given access (teams, grants, approved requests)",
}


def visibility(
    name: Image,
    value: Annotated[str, typer.Argument(metavar="public|private", help="Who may see and pull it.")],
) -> None:
    """Make an image, all its versions and its repository public or private (maintainers).
    The same setting as 'dockyard repo visibility'; recorded in the image's history."""
    with connect() as api:
        found = api.put(f"{image_path(name)}/visibility", {"visibility": value})
    output.say(f"{found['name']} is {found['visibility']}: {VISIBILITY_MEANS[found['visibility']]}.")


def describe(
    name: Image, text: Annotated[str, typer.Argument(metavar="TEXT", help="The new description.")]
) -> None:
    """Set an image's description (developers)."""
    with connect() as api:
        found = api.patch(image_path(name), {"description": text})
    output.say(f"{found['name']}: description set.")


def verify(name: Image, version: Version, json: output.JsonFlag = False) -> None:
    """Check an external version against its registry now; exits 1 when it is unreachable."""
    with connect() as api:
        found = api.post(f"{version_path(name, version)}/verify")
    if json:
        output.print_json(found)
    else:
        output.out.print(Text(f"{found['image']}:{found['version']} is ") + styled_status(found["status"]))
        if found["status"] == "reachable":
            output.say(f"  digest: {found['digest']}")
            output.say(f"  platforms: {output.cell(found['platforms']).plain}")
            output.say(f"  size: {human_size(found['compressed_size'])}")
        version_details(found, heading=False)
    if found["status"] == "unreachable":
        reason = found["status_reason"] or "unknown"
        raise CliError(
            f"{found['image']}:{found['version']} cannot be pulled: {reason}",
            hint=CREDENTIALS_HINT if reason.startswith(("unauthorized", "rate_limited")) else None,
        )


def show_version(name: Image, version: Version, json: output.JsonFlag = False) -> None:
    """Show one version: its status, digest, platforms, and the signatures, attestations and
    SBOMs attached to it (cosign tags and OCI referrers; they are not versions themselves)."""
    with connect() as api:
        found = api.get(version_path(name, version))
    if json:
        output.print_json(found)
        return
    output.out.print(
        Text(f"{found['image']}:{found['version']} ({found['source']}) is ") + styled_status(found["status"])
    )
    output.say(f"  digest: {found['digest'] or '-'}")
    output.say(f"  platforms: {output.cell(found['platforms']).plain}")
    output.say(f"  size: {human_size(found['compressed_size'])}")
    version_details(found, heading=False)
    if not found["signatures"] and found["source"] == "internal":
        output.say("  attached: nothing (no signature, attestation or SBOM)")


def attach(image_app: typer.Typer) -> None:
    for name, command in (
        ("add", add),
        ("add-version", add_version),
        ("set", update_version),
        ("visibility", visibility),
        ("describe", describe),
        ("verify", verify),
    ):
        image_app.command(name)(command)
