"""Shared by the catalog commands: argument types, API paths and how versions, statuses,
sizes, digests and warnings are shown (warnings in yellow, under their version)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.table import Table
from rich.text import Text

from dockyard.cli import output

PANEL = "Catalog: images for compute (over HTTP)"

Image = Annotated[str, typer.Argument(metavar="NAME", help="The image, like 'genomics/samtools'.")]
Version = Annotated[str, typer.Argument(metavar="VERSION", help="The version, like '1.19'.")]
Workspace = Annotated[str | None, typer.Option("--workspace", "-w", help="Only this workspace.")]
Kind = Annotated[str | None, typer.Option("--type", help="tool or bench.")]
Status = Annotated[
    str | None,
    typer.Option(
        help="pending, available, failed (internal); unverified, reachable, unreachable (external)."
    ),
]
Platform = Annotated[str | None, typer.Option(help="Like linux/amd64 (any variant matches).")]
Visibility = Annotated[
    str | None,
    typer.Option(
        help="public or private: the new image's, for all its versions (its repository's). "
        "Default: the workspace's. Change it later with 'dockyard image visibility'."
    ),
]
Regions = Annotated[list[str] | None, typer.Option("--region", help="A region it may run in; repeat it.")]
Clusters = Annotated[
    list[str] | None, typer.Option("--cluster", help="Bench images: a cluster it runs on; repeat it.")
]
NewVersion = Annotated[str | None, typer.Option(help="The version's name (default: the tag, or the digest).")]

STATUS_STYLES = {
    "available": "green",
    "reachable": "green",
    "pending": "yellow",
    "unverified": "yellow",
    "failed": "red",
    "unreachable": "red",
}
CREDENTIALS_HINT = "keep credentials for it: dockyard credentials set WORKSPACE REGISTRY -u USER"

# --- formatting -------------------------------------------------------------------------


def image_path(name: str) -> str:
    """``/images/NAME``: image names keep their '/' (the API takes them as a path)."""
    return "/images/" + quote(name.strip("/"), safe="/")


def version_path(name: str, version: str) -> str:
    return f"{image_path(name)}/versions/{quote(version, safe='')}"


def human_size(size: int | None) -> str:
    """Bytes in decimal units, like docker: ``512 B``, ``1.5 kB``, ``23.4 MB``."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def short_digest(digest: str | None) -> str:
    if not digest:
        return "-"
    algorithm, _, hex_part = digest.partition(":")
    return f"{algorithm}:{hex_part[:12]}"


def styled_status(status: str) -> Text:
    return Text(status, style=STATUS_STYLES.get(status, ""))


def amd64_flag(has_amd64: bool | None) -> Text:
    if has_amd64 is None:
        return Text("?")
    return Text("yes") if has_amd64 else Text("NO", style="bold red")


def grid(columns: Sequence[str], rows: Iterable[Sequence[object]], *, empty: str) -> None:
    """Like :func:`output.table`, but cells that are already rich ``Text`` keep their style."""
    found = [[v if isinstance(v, Text) else output.cell(v) for v in row] for row in rows]
    if not found:
        output.say(empty)
        return
    table = Table(*columns, box=None, header_style="bold", pad_edge=False)
    for column in table.columns:
        column.overflow = "fold"
    for row in found:
        table.add_row(*row)
    output.out.print(table)


def show_warnings(version: dict[str, Any], indent: str = "  ") -> None:
    for warning in version["warnings"]:
        output.out.print(Text(f"{indent}warning: {warning['message']}", style="bold yellow"))


def signature_summary(signatures: list[dict[str, Any]]) -> str:
    """ "signed, 2 attestations": what is attached to a version, counted by kind."""
    counts: dict[str, int] = {}
    for item in signatures:
        counts[item["kind"]] = counts.get(item["kind"], 0) + 1
    words = {"signature": "signed", "attestation": "attestation", "sbom": "SBOM", "other": "other artifact"}
    parts = []
    for kind in ("signature", "attestation", "sbom", "other"):
        n = counts.get(kind, 0)
        if n and kind == "signature":
            parts.append("signed" if n == 1 else f"signed ({n} signatures)")
        elif n:
            parts.append(f"{n} {words[kind]}{'s' if n != 1 else ''}")
    return ", ".join(parts)


def version_details(version: dict[str, Any], *, heading: bool = True) -> None:
    """What does not fit the versions table: the status reason, the upstream, the warnings."""
    lines: list[tuple[str, str]] = []
    if version["status_reason"]:
        lines.append(("reason", version["status_reason"]))
    upstream = version.get("upstream")
    if version["external_reference"]:
        lines.append(("reference", version["external_reference"]))
    if upstream:
        lines.append(("upstream", f"{upstream['registry']} ({upstream['provider']})"))
        if upstream.get("ecr_account_id") or upstream.get("ecr_region"):
            lines.append(("ECR", f"account {upstream['ecr_account_id']}, region {upstream['ecr_region']}"))
    if version["source"] == "external":
        lines.append(("checked", output.when(version["checked_at"])))
    marks = version.get("marks")
    if marks and (marks["marks"] != ["user"] or marks["signature"] != "none"):
        lines.append(("marks", ", ".join(m for m in marks["marks"] if m != "user") or "-"))
        lines.append(
            ("signature", marks["signature"] + (f" by {marks['signed_by']}" if marks["signed_by"] else ""))
        )
        if marks["build_run"] is not None:
            lines.append(("built by run", str(marks["build_run"])))
    signatures = version.get("signatures") or []
    if signatures:
        lines.append(("attached", signature_summary(signatures)))
    for item in signatures:
        how = f"tag {item['tag']}" if item["tag"] else "referrer"
        what = item["artifact_type"] or item["media_type"]
        lines.append((f"  {item['kind']}", f"{short_digest(item['digest'])} ({how}, {what})"))
    if not lines and not version["warnings"]:
        return
    if heading:  # a block per version, under the table
        output.say("")
        output.say(f"{version['version']}:")
    for name, value in lines:
        output.say(f"  {name}: {value}")
    show_warnings(version)


def settings_body(
    kind: str | None, visibility: str | None, regions: list[str] | None, clusters: list[str] | None
) -> dict[str, Any]:
    return {
        "type": kind,
        "visibility": visibility,
        "regions": regions or None,
        "cluster_compatibility": clusters or None,
    }


def status_summary(versions: list[dict[str, Any]]) -> str:
    counts = Counter(v["status"] for v in versions)
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "-"


def version_names(versions: list[dict[str, Any]], shown: int = 3) -> str:
    names = [v["version"] for v in versions]
    if len(names) <= shown:
        return ", ".join(names) or "-"
    return f"{', '.join(names[-shown:])} (+{len(names) - shown} older)"
