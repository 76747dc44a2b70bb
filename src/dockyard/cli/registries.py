"""``dockyard registry ...``: registry profiles, how a workspace reaches other registries
(maintainers), or the platform-wide ones (``--platform``, administrators manage them)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from dockyard.cli import output
from dockyard.cli.client import connect, seg
from dockyard.cli.errors import CliError

registry_app = typer.Typer(
    help="Registry profiles: hosts, kinds, TLS and credentials for other registries.", no_args_is_help=True
)

MAX_CA_FILE = 64 * 1024
KINDS = "dockerhub, quay, gitlab, ghcr, ecr, ngc or distribution"
Ws = Annotated[
    str | None,
    typer.Argument(metavar="[WORKSPACE]", help="The workspace (omit it with --platform)."),
]
Host = Annotated[str, typer.Option("--host", help="The registry host, e.g. quay.io or reg.example.org:5000.")]
Platform = Annotated[bool, typer.Option("--platform", help="A platform-wide profile (administrators).")]


def _path(workspace: str | None, platform: bool, host: str | None = None) -> str:
    if platform == (workspace is not None):
        raise CliError("name a WORKSPACE, or give --platform for a platform-wide profile")
    base = "/registries" if workspace is None else f"/workspaces/{seg(workspace)}/registries"
    return base if host is None else f"{base}/{seg(host)}"


def _show(profile: dict[str, Any]) -> None:
    settings = profile["settings"]
    plain = settings["plain_http"]
    output.fields(
        [
            ("registry", profile["registry"]),
            ("kind", settings["kind"]),
            ("username", profile["username"] or "(anonymous)"),
            ("transport", "default" if plain is None else ("plain HTTP" if plain else "HTTPS")),
            ("tls verify", settings["tls_verify"]),
            ("CA bundle", "yes" if settings["ca_bundle"] else "no"),
            *(
                [("ECR", f"account {settings['ecr_account']}, {settings['ecr_region']}")]
                if settings["kind"] == "ecr"
                else []
            ),
            ("created", f"{output.when(profile['created_at'])} by {profile['created_by']}"),
        ]
    )


@registry_app.command("add")
def add(
    host: Host,
    workspace: Ws = None,
    platform: Platform = False,
    kind: Annotated[str, typer.Option(help=f"The registry's kind: {KINDS}.")] = "distribution",
    username: Annotated[str, typer.Option(help="User, robot or (ECR) access key id; omit: anonymous.")] = "",
    secret_stdin: Annotated[
        bool, typer.Option("--secret-stdin", help="Read the password, token or (ECR) secret key from stdin.")
    ] = False,
    plain_http: Annotated[
        bool | None, typer.Option("--plain-http/--https", help="Plain HTTP (administrators) or HTTPS.")
    ] = None,
    no_tls_verify: Annotated[
        bool, typer.Option("--no-tls-verify", help="Do not check the certificate.")
    ] = False,
    ca_file: Annotated[
        Path | None, typer.Option("--ca-file", help="PEM CA bundle to trust (64 KiB at most).")
    ] = None,
    ecr_account: Annotated[str | None, typer.Option(help="ECR: the 12-digit account id.")] = None,
    ecr_region: Annotated[str | None, typer.Option(help="ECR: the region.")] = None,
    json: output.JsonFlag = False,
) -> None:
    """Keep (or replace) a registry profile; the secret is stored encrypted, never shown again."""
    secret = typer.get_text_stream("stdin").read(4096).strip() if secret_stdin else ""
    ca_bundle = None
    if ca_file is not None:
        if ca_file.stat().st_size > MAX_CA_FILE:
            raise CliError(f"{ca_file} is over 64 KiB: give only the registry's CA certificates")
        ca_bundle = ca_file.read_text()
    body = {
        "registry": host,
        "kind": kind,
        "username": username,
        "secret": secret,
        "plain_http": plain_http,
        "tls_verify": not no_tls_verify,
        "ca_bundle": ca_bundle,
        "ecr_account": ecr_account,
        "ecr_region": ecr_region,
    }
    with connect() as api:
        profile = api.put(_path(workspace, platform), body)
    if json:
        output.print_json(profile)
        return
    _show(profile)


@registry_app.command("list")
def list_profiles(workspace: Ws = None, platform: Platform = False, json: output.JsonFlag = False) -> None:
    """The registry profiles of a workspace (or the platform-wide ones)."""
    with connect() as api:
        found = api.get(_path(workspace, platform), limit=500)
    if json:
        output.print_json(found)
        return
    output.table(
        ["REGISTRY", "KIND", "USERNAME", "TLS VERIFY", "CA"],
        (
            [p["registry"], p["settings"]["kind"], p["username"] or "-", p["settings"]["tls_verify"],
             "yes" if p["settings"]["ca_bundle"] else "-"]
            for p in found
        ),
        empty="No registry profiles.",
    )  # fmt: skip


@registry_app.command("show")
def show(host: Host, workspace: Ws = None, platform: Platform = False, json: output.JsonFlag = False) -> None:
    """One registry profile (never its secret)."""
    with connect() as api:
        profile = api.get(_path(workspace, platform, host))
    if json:
        output.print_json(profile)
        return
    _show(profile)


@registry_app.command("remove")
def remove(host: Host, workspace: Ws = None, platform: Platform = False) -> None:
    """Forget a registry profile."""
    with connect() as api:
        api.delete(_path(workspace, platform, host))
    output.say(f"Removed the registry profile for {host}.")


@registry_app.command("check")
def check(
    host: Host, workspace: Ws = None, platform: Platform = False, json: output.JsonFlag = False
) -> None:
    """Log in to the registry as the workspace would; on failure, say why (the reason)."""
    with connect() as api:
        result = api.post(f"{_path(workspace, platform, host)}/check")
    if json:
        output.print_json(result)
        return
    via = f"with the profile {result['profile']}" if result["profile"] else "anonymously (no profile)"
    output.say(f"{host}: login works ({result['scheme']}, {via}).")


def register(app: typer.Typer) -> None:
    app.add_typer(registry_app, name="registry", rich_help_panel=output.PANEL)
