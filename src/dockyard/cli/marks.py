"""``dockyard workspace mark`` (admins), ``dockyard workspace key`` (the public keys a workspace
trusts for its signatures) and ``dockyard version sbom`` (the packages an SBOM lists)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from dockyard.cli import output
from dockyard.cli.catalog_format import version_path
from dockyard.cli.client import connect, seg

key_app = typer.Typer(
    help="Public keys a workspace trusts for its images' cosign signatures (maintainers manage them).",
    no_args_is_help=True,
)

Ws = Annotated[str, typer.Argument(metavar="WORKSPACE", help="The workspace.")]
SIGNATURES = {
    "verified": "signed (verified)",
    "invalid": "signature invalid",
    "unverified": "signature attached (not verified)",
}


def marks_line(marks: dict[str, Any] | None) -> str:
    """The marks as one line: ``official, built, signed``; '-' when there are none to show."""
    if not marks:
        return "-"
    shown = [m for m in marks["marks"] if m != "user"]
    if marks["signature"] in ("invalid", "unverified"):
        shown.append(SIGNATURES[marks["signature"]])
    return ", ".join(shown) or "-"


def set_mark(
    workspace: Ws,
    mark: Annotated[str, typer.Argument(metavar="MARK", help="official, verified or none.")],
) -> None:
    """Mark a workspace official or verified publisher, or none (administrators)."""
    with connect() as api:
        found = api.put(f"/workspaces/{seg(workspace)}/mark", {"mark": mark})
    output.say(f"Workspace {found['workspace']} is now {found['mark']}.")


@key_app.command("list")
def list_keys(workspace: Ws, json: output.JsonFlag = False) -> None:
    """List the public keys the workspace trusts (members)."""
    with connect() as api:
        keys = api.get(f"/workspaces/{seg(workspace)}/trusted-keys")
    if json:
        output.print_json(keys)
        return
    output.table(
        ["NAME", "ALGORITHM", "KEY ID", "ADDED"],
        (
            [k["name"], k["algorithm"], k["key_id"], f"{output.when(k['created_at'])} by {k['created_by']}"]
            for k in keys
        ),
        empty="No trusted keys.",
    )


@key_app.command("add")
def add_key(
    workspace: Ws,
    name: Annotated[str, typer.Argument(metavar="NAME", help="What the key is called here.")],
    pem: Annotated[
        Path, typer.Argument(metavar="FILE", help="The PEM public key (cosign.pub).", exists=True)
    ],
) -> None:
    """Trust a public key (ECDSA P-256, Ed25519 or RSA PEM) for the workspace's signatures (maintainers)."""
    with connect() as api:
        key = api.post(
            f"/workspaces/{seg(workspace)}/trusted-keys", {"name": name, "pem": pem.read_text()[:16_384]}
        )
    output.say(f"Workspace {workspace} trusts {key['algorithm']} key {key['name']} ({key['key_id']}).")


@key_app.command("remove")
def remove_key(
    workspace: Ws, key_id: Annotated[str, typer.Argument(metavar="KEY_ID", help="sha256:... (see key list).")]
) -> None:
    """Stop trusting a key; what it signed is no longer signed (maintainers)."""
    with connect() as api:
        api.delete(f"/workspaces/{seg(workspace)}/trusted-keys/{seg(key_id)}")
    output.say(f"Workspace {workspace} no longer trusts {key_id}.")


def sbom(
    name: Annotated[str, typer.Argument(metavar="IMAGE", help="The image.")],
    version: Annotated[str, typer.Argument(metavar="VERSION", help="The version.")],
    json: output.JsonFlag = False,
) -> None:
    """List the packages of the SBOMs (SPDX, CycloneDX) attached to a version."""
    with connect() as api:
        found = api.get(version_path(name, version) + "/sbom")
    if json:
        output.print_json(found)
        return
    if not found["sboms"]:
        output.say("No SBOM attached.")
    for document in found["sboms"]:
        output.say(
            f"{document['format']} SBOM {document['digest']}"
            + (" (truncated)" if document["truncated"] else "")
        )
        if document["problem"]:
            output.note(document["problem"])
        output.table(
            ["PACKAGE", "VERSION"],
            ([p["name"], p["version"]] for p in document["packages"]),
            empty="No packages.",
        )


def register(workspace_app: typer.Typer, version_app: typer.Typer) -> None:
    workspace_app.command("mark")(set_mark)
    workspace_app.add_typer(key_app, name="key")
    version_app.command("sbom")(sbom)
