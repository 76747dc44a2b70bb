"""Deleting (and ``dockyard version show``): ``dockyard image delete``, ``dockyard version
delete`` (also ``image remove``), ``dockyard repo delete``, ``dockyard build delete`` and
``dockyard workspace delete [--force]``. Each asks before it deletes unless given ``--yes``;
the server decides who may (maintainers for images, versions, repositories and build
definitions; owners and admins for workspaces) and audits it."""

from __future__ import annotations

from typing import Annotated

import typer

from dockyard import __version__
from dockyard.cli import output
from dockyard.cli.catalog_format import PANEL, Image, Version, image_path, version_path
from dockyard.cli.client import connect, seg
from dockyard.cli.errors import CliError
from dockyard.cli.image_changes import show_version

Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def confirm(question: str, yes: bool) -> None:
    """Ask ``question`` (y/N) unless ``yes``; a no (or no answer at all) deletes nothing."""
    if yes:
        return
    try:
        agreed = typer.confirm(question, default=False)
    except typer.Abort:
        agreed = False
    if not agreed:
        raise CliError("nothing was deleted", hint="answer y, or pass --yes")


def delete_image(name: Image, yes: Yes = False) -> None:
    """Delete an image: every version (internal or external), its tags and repository (maintainers).
    The bytes are reclaimed by the next garbage collection."""
    confirm(f"Delete image {name} with all its versions and tags?", yes)
    with connect() as api:
        api.delete(image_path(name))
    output.say(f"Deleted image {name}.")


def delete_version(name: Image, version: Version, yes: Yes = False) -> None:
    """Delete one version (maintainers): an external one, or an internal one with its tag."""
    confirm(f"Delete {name}:{version}?", yes)
    with connect() as api:
        api.delete(version_path(name, version))
    output.say(f"Deleted {name}:{version}.")


def delete_repository(
    name: Annotated[str, typer.Argument(metavar="REPOSITORY", help="Like 'genomics/samtools'.")],
    yes: Yes = False,
) -> None:
    """Delete a repository with its manifests and tags, and its catalog image (maintainers)."""
    confirm(f"Delete repository {name} with all its tags?", yes)
    with connect() as api:
        api.delete("/repository", name=name)
    output.say(f"Deleted repository {name}.")


def delete_definition(
    name: Annotated[str, typer.Argument(help="The build definition, like genomics/samtools.")],
    yes: Yes = False,
) -> None:
    """Delete a build definition with its builds and logs (maintainers); images it built stay."""
    confirm(f"Delete build definition {name} and its builds?", yes)
    with connect() as api:
        api.delete(f"/builds/{name}")
    output.say(f"Deleted build definition {name}.")


def delete_workspace(
    name: Annotated[str, typer.Argument(metavar="WORKSPACE", help="The workspace.")],
    force: Annotated[
        bool, typer.Option("--force", help="Also delete everything it holds (images, repositories, builds).")
    ] = False,
    yes: Yes = False,
) -> None:
    """Delete a workspace (owners and admins). One that holds anything is refused with the
    list, unless --force: then everything it holds goes with it."""
    confirm(
        f"Delete workspace {name} and EVERYTHING it holds?" if force else f"Delete workspace {name}?", yes
    )
    with connect() as api:
        api.delete(f"/workspaces/{seg(name)}", force="true" if force else None)
    output.say(f"Deleted workspace {name}.")


version_app = typer.Typer(
    help="Print Dockyard's version; 'version show' shows an image's version (with its signatures), "
    "'version delete' deletes one."
)


@version_app.callback(invoke_without_command=True)
def _print_version(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        typer.echo(__version__)


def register(
    app: typer.Typer,
    image_app: typer.Typer,
    workspace_app: typer.Typer,
    repo_app: typer.Typer,
    build_app: typer.Typer,
) -> None:
    image_app.command("delete")(delete_image)
    image_app.command("remove", help="Delete one version (the same as 'dockyard version delete').")(
        delete_version
    )
    version_app.command("delete")(delete_version)
    version_app.command("show")(show_version)
    workspace_app.command("delete")(delete_workspace)
    repo_app.command("delete")(delete_repository)
    build_app.command("delete")(delete_definition)
    app.add_typer(version_app, name="version", rich_help_panel=PANEL)
