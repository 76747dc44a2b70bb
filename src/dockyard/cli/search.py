"""``dockyard search QUERY``: the catalog searched by words, packages, labels and facets
(``GET /api/v1/search``; the query language is described there and in the README)."""

from __future__ import annotations

from typing import Annotated

import typer

from dockyard.cli import output
from dockyard.cli.catalog_format import grid
from dockyard.cli.client import connect
from dockyard.cli.marks import marks_line

PACKAGES_SHOWN = 3  # per image in the table (--json has them all)


def search(
    query: Annotated[
        str,
        typer.Argument(
            help="Words, packages (samtools>=1.19, pkg:bwa), labels (label:key=value, * a glob) and "
            "filters (workspace:, source:internal|external|cached, type:tool|bench, platform:).",
        ),
    ],
    limit: Annotated[int, typer.Option(min=1, max=100, help="Results per page.")] = 20,
    offset: Annotated[int, typer.Option(min=0, max=10_000, help="Results to skip.")] = 0,
    json: output.JsonFlag = False,
) -> None:
    """Search the images you may see, best matches first."""
    with connect() as api:
        found = api.get("/search", q=query, limit=limit, offset=offset)
    if json:
        output.print_json(found)
        return
    items = found["items"]
    # The packages the query's package terms matched (why an image is there), when it has any.
    matched = any(i.get("packages") for i in items)
    grid(
        [
            "NAME",
            "VERSIONS",
            "SOURCE",
            "PLATFORMS",
            "MARKS",
            *(["PACKAGES"] if matched else []),
            "DESCRIPTION",
        ],
        (
            [
                i["name"],
                ", ".join(v["version"] for v in i["versions"][:5]) + (" …" if len(i["versions"]) > 5 else ""),
                ", ".join(sorted({v["source"] for v in i["versions"]})),
                ", ".join(sorted({p for v in i["versions"] for p in v["platforms"]})),
                marks_line(i.get("marks")),
                *([_packages(i.get("packages") or [])] if matched else []),
                i["description"],
            ]
            for i in items
        ),
        empty="Nothing found.",
    )
    if items:
        first = found["offset"] + 1
        of = f"{found['total']:,}" + ("" if found.get("total_exact", True) else "+")
        output.say(f"{first}-{first + len(items) - 1} of {of} image{'s' if found['total'] != 1 else ''}")


def _packages(found: list[dict[str, str]]) -> str:
    """``samtools 1.19.2 (conda), ...``: the first few packages an image matched."""
    shown = [f"{p['name']} {p['version']} ({p['ecosystem']})" for p in found[:PACKAGES_SHOWN]]
    return ", ".join(shown) + (" …" if len(found) > PACKAGES_SHOWN else "")


def register(app: typer.Typer) -> None:
    app.command("search")(search)
