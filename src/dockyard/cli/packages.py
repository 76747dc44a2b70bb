"""``dockyard image packages NAME:VERSION``: the software inside a version (deb, apk, rpm,
conda, python, r packages its filesystem declares), read when the version was inspected."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from dockyard.cli import output
from dockyard.cli.catalog_format import version_path
from dockyard.cli.client import connect
from dockyard.cli.images import split_name_version

ECOSYSTEMS = ("deb", "apk", "rpm", "conda", "python", "r")


def packages(
    reference: Annotated[str, typer.Argument(metavar="NAME:VERSION", help="Like genomics/samtools:1.19.")],
    ecosystem: Annotated[str | None, typer.Option(help="Only one of: " + ", ".join(ECOSYSTEMS) + ".")] = None,
    query: Annotated[str | None, typer.Option("--query", "-q", help="Part of the package name.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Packages per page.")] = 100,
    last: Annotated[str | None, typer.Option(help="The 'next' printed with the previous page.")] = None,
    json: output.JsonFlag = False,
) -> None:
    """List the packages a version's filesystem declares, and how reading them went."""
    name, version = split_name_version(reference)
    with connect() as api:
        found: dict[str, Any] = api.get(
            f"{version_path(name, version)}/packages", ecosystem=ecosystem, q=query, limit=limit, last=last
        )
    if json:
        output.print_json(found)
        return
    scan = found["scan"]
    if scan is None:
        output.say(f"{name}:{version}: the packages are not read yet")
    else:
        line = f"{name}:{version}: {scan['packages']} package(s), scan {scan['state']}"
        output.say(line + (f" ({scan['detail']})" if scan["detail"] else ""))
    output.table(
        ["ECOSYSTEM", "NAME", "VERSION", "PLATFORM"],
        ([p["ecosystem"], p["name"], p["version"], p["platform"]] for p in found["packages"]),
        empty="No packages.",
    )
    if found["next"]:
        output.say(f"more: --last {found['next']!r}")


def attach(image_app: typer.Typer) -> None:
    image_app.command("packages")(packages)
