"""``dockyard``: serve, run background jobs, collect garbage, migrate the database, rotate
keys; and manage users, workspaces, robots, webhooks and access.

Commands that act on a server's data (``serve``, ``worker``, ``gc``, ``db``, ``keys``) are in
:mod:`dockyard.cli.server` and build the application from settings; every other command talks
to a server over HTTP (``/api/v1``), with the login that ``dockyard login`` stores (see
:mod:`dockyard.cli.config`).
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console

from dockyard.cli import (
    access,
    builds,
    catalog_admin,
    client,
    deletes,
    images,
    imports,
    lineage,
    marks,
    output,
    packages,
    regions,
    registries,
    repos,
    retention,
    robots,
    search,
    server,
    session,
    users,
    webhooks,
    workspaces,
)
from dockyard.cli.errors import CliError

app = typer.Typer(help="Dockyard: a container image platform for research computing.", no_args_is_help=True)
for module in (
    session,
    users,
    workspaces,
    robots,
    webhooks,
    registries,
    repos,
    access,
    images,
    catalog_admin,
    search,
    builds,
    retention,
    server,
):
    module.register(app)
imports.attach(images.image_app)
regions.attach(images.image_app)
lineage.attach(images.image_app)
packages.attach(images.image_app)
deletes.register(app, images.image_app, workspaces.workspace_app, repos.repo_app, builds.build_app)
marks.register(workspaces.workspace_app, deletes.version_app)
console = Console(stderr=True)


@app.callback()
def _global_options(
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            envvar=client.SERVER_ENV,
            help="The server for API commands (default: the one you logged in to). "
            "DOCKYARD_TOKEN sets the token.",
        ),
    ] = None,
) -> None:
    client.use_server(server)


def main() -> None:
    try:
        app()
    except CliError as exc:
        output.report(exc)
        sys.exit(exc.exit_code)
