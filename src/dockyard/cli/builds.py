"""``dockyard build ...``: images built in Dockyard from a Dockerfile and files (a local
folder) or a git repository, their builds, live logs and history.

Names are whole names, like ``genomics/samtools`` (the registry repository builds push to).
Only the workspace's owners start and cancel builds; developers create and edit.
"""

from __future__ import annotations

import io
import stat
import sys
import tarfile
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import httpx
import typer

from dockyard.cli import output
from dockyard.cli.build_targets import (
    NoPushTargets,
    PushTo,
    pushes,
    results_cell,
    show_results,
    target_lines,
    targets_body,
)
from dockyard.cli.catalog_format import PANEL
from dockyard.cli.client import Client, connect, seg
from dockyard.cli.errors import ApiError, CliError
from dockyard.cli.numbers import MAX_ID

build_app = typer.Typer(help="Images built here (buildah): definitions, builds, logs.", no_args_is_help=True)

Name = Annotated[str, typer.Argument(help="The image name, like genomics/samtools.")]
RunId = Annotated[
    int, typer.Argument(min=1, max=MAX_ID, help="The build's number (from 'start' or 'history').")
]
Dockerfile = Annotated[
    Path | None, typer.Option("--dockerfile", "-f", help="A Dockerfile to use (local context).")
]
Files = Annotated[
    Path | None, typer.Option("--files", help="Context files: a folder or a tar (local context); uploaded.")
]
GitUrl = Annotated[str | None, typer.Option("--git", help="Build from this git repository instead.")]
Ref = Annotated[str | None, typer.Option(help="Git branch, tag or commit.")]
Folder = Annotated[str | None, typer.Option("--dir", help="The folder in the repository to build.")]
DockerfilePath = Annotated[str | None, typer.Option(help="The Dockerfile's path in that folder.")]
Args = Annotated[list[str] | None, typer.Option("--arg", help="A build argument NAME=VALUE (repeat).")]
Target = Annotated[str | None, typer.Option(help="Target stage ('' clears it).")]
Platform = Annotated[str | None, typer.Option(help="os/arch (default: linux/amd64).")]
Version = Annotated[str | None, typer.Option(help="The tag builds push (default: latest).")]
External = Annotated[
    str | None,
    typer.Option("--external", help="Also push to this repository of another registry ('' clears)."),
]
Description = Annotated[str | None, typer.Option(help="What the image is for.")]
Network = Annotated[
    str | None,
    typer.Option(
        "--network",
        help="What RUN steps reach: none (default) or egress (other hosts, never the server's loopback).",
    ),
]
Follow = Annotated[bool, typer.Option("--follow", help="Print the log as the build runs, until it ends.")]


def _fields(
    dockerfile: Path | None,
    git: str | None,
    ref: str | None,
    folder: str | None,
    dockerfile_path: str | None,
    args: list[str] | None,
    target: str | None,
    platform: str | None,
    version: str | None,
    external: str | None,
    description: str | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if dockerfile is not None:
        try:
            body["dockerfile"] = dockerfile.read_text()
        except OSError as exc:
            raise CliError(f"cannot read {dockerfile}: {exc.strerror}") from None
        body["context"] = "local"
    if git is not None:
        if ref is None:
            raise CliError("--git needs --ref (a branch, tag or commit)", exit_code=2)
        body["git"] = {
            "url": git,
            "ref": ref,
            "directory": folder or "",
            "dockerfile": dockerfile_path or "Dockerfile",
        }
        body["context"] = "git"
    if args is not None:
        pairs = [arg.partition("=") for arg in args]
        if any(not sep or not key for key, sep, _ in pairs):
            raise CliError("build arguments are NAME=VALUE", exit_code=2)
        body["build_args"] = {key: value for key, _, value in pairs}
    for key, value in (
        ("target", target),
        ("platform", platform),
        ("version", version),
        ("external_destination", external),
        ("description", description),
    ):
        if value is not None:
            body[key] = value
    return body


def _context_tar(path: Path) -> bytes:
    if path.is_file():
        return path.read_bytes()
    if not path.is_dir():
        raise CliError(f"{path} is neither a folder nor a tar file")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for item in sorted(path.iterdir()):
            tar.add(item, arcname=item.name)
    return buffer.getvalue()


def _upload(api: Client, name: str, files: Path) -> dict[str, Any]:
    response = _send(api, "PUT", f"/builds/{name}/context", content=_context_tar(files))
    result: dict[str, Any] = response.json()
    return result


def _send(api: Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
    try:
        response = api.http.request(method, path, **kwargs)
    except httpx.TransportError as exc:
        raise CliError(f"cannot reach {api.url}: {exc or type(exc).__name__}") from None
    if response.status_code >= 400:
        try:
            detail = str(response.json().get("detail"))
        except ValueError:
            detail = f"HTTP {response.status_code}"
        raise ApiError(response.status_code, detail)
    return response


def _show(definition: dict[str, Any]) -> None:
    last = definition.get("last_build") or {}
    git = definition["git"]
    source = (
        f"git {git['url']} @ {git['ref']} ({git['directory'] or '/'})"
        if git
        else f"local (files: {definition['context_size'] or 0} bytes)"
    )
    output.fields(
        [
            ("name", definition["name"]),
            ("status", definition["status"]),
            ("description", definition["description"]),
            ("source", source),
            ("platform", definition["platform"]),
            ("network", definition["network"]),
            ("version", definition["version"]),
            ("build args", [f"{k}={v}" for k, v in definition["build_args"].items()]),
            ("target", definition["target"]),
            ("external", definition["external_destination"]),
            ("push targets", target_lines(definition)),
            ("modified", f"{output.when(definition['updated_at'])} by {definition['updated_by']}"),
            ("last build", f"#{last['id']} {last['status']}" if last else None),
        ]
    )


def create(
    name: Name,
    workspace: Annotated[str, typer.Option("--workspace", "-w", help="The workspace it belongs to.")],
    dockerfile: Dockerfile = None,
    files: Files = None,
    git: GitUrl = None,
    ref: Ref = None,
    folder: Folder = None,
    dockerfile_path: DockerfilePath = None,
    arg: Args = None,
    target: Target = None,
    platform: Platform = None,
    version: Version = None,
    external: External = None,
    description: Description = None,
    network: Network = None,
    push_to: PushTo = None,
    json: output.JsonFlag = False,
) -> None:
    """Create a build definition."""
    body = _fields(
        dockerfile, git, ref, folder, dockerfile_path, arg, target, platform, version, external, description
    ) | targets_body(push_to, False)
    if network is not None:
        body["network"] = network
    with connect() as api:
        definition = api.post("/builds", {"workspace": workspace, "name": name, **body})
        if files is not None:
            definition = _upload(api, definition["name"], files)
    if json:
        output.print_json(definition)
    else:
        _show(definition)


def edit(
    name: Name,
    new_name: Annotated[str | None, typer.Option("--name", help="Rename it.")] = None,
    dockerfile: Dockerfile = None,
    files: Files = None,
    git: GitUrl = None,
    ref: Ref = None,
    folder: Folder = None,
    dockerfile_path: DockerfilePath = None,
    arg: Args = None,
    target: Target = None,
    platform: Platform = None,
    version: Version = None,
    external: External = None,
    description: Description = None,
    network: Network = None,
    push_to: PushTo = None,
    no_push_targets: NoPushTargets = False,
    json: output.JsonFlag = False,
) -> None:
    """Change a build definition (SAVE); it shows 'modified' until it is built again."""
    body = _fields(
        dockerfile, git, ref, folder, dockerfile_path, arg, target, platform, version, external, description
    ) | targets_body(push_to, no_push_targets)
    if network is not None:
        body["network"] = network
    if new_name is not None:
        body["name"] = new_name
    with connect() as api:
        definition = api.patch(f"/builds/{name}", body) if body else api.get(f"/builds/{name}")
        if files is not None:
            definition = _upload(api, definition["name"], files)
    if json:
        output.print_json(definition)
    else:
        _show(definition)


def show(name: Name, json: output.JsonFlag = False) -> None:
    """Show a build definition and its status (built, not_built, modified)."""
    with connect() as api:
        definition = api.get(f"/builds/{name}")
    if json:
        output.print_json(definition)
    else:
        _show(definition)


def list_definitions(
    workspace: Annotated[str, typer.Option("--workspace", "-w")], json: output.JsonFlag = False
) -> None:
    """List a workspace's build definitions."""
    with connect() as api:
        found = api.get(f"/workspaces/{seg(workspace)}/builds")
    if json:
        output.print_json(found)
        return
    output.table(
        ["NAME", "STATUS", "SOURCE", "LAST BUILD", "MODIFIED"],
        (
            [
                d["name"],
                d["status"],
                d["context"],
                f"#{d['last_build']['id']} {d['last_build']['status']}" if d["last_build"] else None,
                output.when(d["updated_at"]),
            ]
            for d in found
        ),
        empty="no build definitions",
    )


def start(
    name: Name,
    version: Annotated[str | None, typer.Option(help="The tag to push (default: the definition's).")] = None,
    follow: Follow = False,
    json: output.JsonFlag = False,
) -> None:
    """Start a build (workspace owners)."""
    with connect() as api:
        run = api.post(f"/builds/{name}/runs", {"version": version} if version else {})
        if json and not follow:
            output.print_json(run)
            return
        output.note(f"build #{run['id']} of {run['image']}:{run['version']} queued")
        if follow:
            _follow(api, run["id"])


def logs(run_id: RunId, follow: Follow = False) -> None:
    """Print a build's log (with --follow, live until the build ends)."""
    with connect() as api:
        if follow:
            _follow(api, run_id)
        else:
            sys.stdout.write(_send(api, "GET", f"/build-runs/{run_id}/log").text)


def _follow(api: Client, run_id: int) -> None:
    try:
        with api.http.stream(
            "GET", f"/build-runs/{run_id}/log", params={"follow": "true"}, timeout=None
        ) as stream:
            if stream.status_code >= 400:
                stream.read()
                _send(api, "GET", f"/build-runs/{run_id}")  # raises with the server's reason
            for text in stream.iter_text():
                sys.stdout.write(text)
                sys.stdout.flush()
    except httpx.TransportError as exc:
        raise CliError(
            f"the log stream broke off: {exc}", hint=f"dockyard build logs {run_id} --follow"
        ) from None
    run = api.get(f"/build-runs/{run_id}")
    show_results(run)
    if run["status"] != "succeeded":
        raise CliError(f"build #{run_id} {run['status']}: {run['reason'] or ''}".rstrip(": "))
    output.note(f"build #{run_id} succeeded: {run['image']}:{run['version']}@{run['digest']}")


def history(
    name: Name,
    limit: Annotated[int, typer.Option(min=1, max=500, help="At most this many.")] = 20,
    json: output.JsonFlag = False,
) -> None:
    """The builds of an image, newest first."""
    with connect() as api:
        runs = api.get(f"/builds/{name}/runs", limit=limit)
    if json:
        output.print_json(runs)
        return
    output.table(
        ["BUILD", "STATUS", "VERSION", "STARTED", "DURATION", "BY", "DIGEST", "TARGETS"],
        (
            [
                f"#{r['id']}",
                r["status"],
                r["version"],
                output.when(r["started_at"], "-"),
                None if r["duration"] is None else f"{r['duration']:.0f}s",
                r["started_by"],
                r["digest"],
                results_cell(r),
            ]
            for r in runs
        ),
        empty="no builds yet",
    )


def cancel(run_id: RunId) -> None:
    """Cancel a queued or running build (workspace owners)."""
    with connect() as api:
        run = api.post(f"/build-runs/{run_id}/cancel")
    output.say(f"build #{run_id}: {run['status']}" + (" (stopping)" if run["status"] == "running" else ""))


def changes(name: Name, json: output.JsonFlag = False) -> None:
    """The definition's history: created, modified, built, with author and time."""
    with connect() as api:
        found = api.get(f"/builds/{name}/events")
    if json:
        output.print_json(found)
        return
    output.table(
        ["WHEN", "WHAT", "WHO", "DETAIL"],
        ([output.when(e["at"]), e["kind"], e["actor"], _detail(e["detail"])] for e in found),
        empty="no history",
    )


def _detail(detail: dict[str, Any]) -> str:
    parts = []
    if "fields" in detail:
        parts.append("changed " + ", ".join(detail["fields"]))
    if "file" in detail:
        parts.append(f"{detail.get('action', 'changed')} {detail['file']}")
    if "run_id" in detail:
        parts.append(f"build #{detail['run_id']}")
    if "reason" in detail:
        parts.append(str(detail["reason"]))
    return "; ".join(parts)


def _file_url(name: str, path: str) -> str:
    """``.../files/PATH`` with each part escaped (``.`` and ``..`` too: the server refuses those)."""
    parts = ["%2E" * len(p) if p in (".", "..") else quote(p, safe="") for p in path.split("/")]
    return f"/builds/{name}/files/{'/'.join(parts)}"


def put_file(
    name: Name,
    local_file: Annotated[Path, typer.Argument(help="The file to upload.")],
    as_path: Annotated[
        str | None, typer.Option("--as", help="Its path in the context [the file's name].")
    ] = None,
    executable: Annotated[
        bool, typer.Option("--executable", help="Mode 0755 (also when the local file is executable).")
    ] = False,
    json: output.JsonFlag = False,
) -> None:
    """Add or replace one file of a local context (developers); other files stay."""
    try:
        content = local_file.read_bytes()
        executable = executable or bool(local_file.stat().st_mode & stat.S_IXUSR)
    except OSError as exc:
        raise CliError(f"cannot read {local_file}: {exc.strerror}") from None
    path = as_path if as_path is not None else local_file.name
    with connect() as api:
        response = _send(
            api, "PUT", _file_url(name, path), content=content, params={"executable": str(executable).lower()}
        )
    definition: dict[str, Any] = response.json()
    if json:
        output.print_json(definition)
    else:
        output.note(f"{path} saved ({len(content)} bytes, {'0755' if executable else '0644'})")
        _show(definition)


def rm_file(
    name: Name,
    path: Annotated[str, typer.Argument(help="The file (or folder) in the context.")],
    json: output.JsonFlag = False,
) -> None:
    """Remove a file, or a folder with its files, from a local context (developers)."""
    with connect() as api:
        definition: dict[str, Any] = _send(api, "DELETE", _file_url(name, path)).json()
    if json:
        output.print_json(definition)
    else:
        output.note(f"{path} removed")
        _show(definition)


def files(name: Name, json: output.JsonFlag = False) -> None:
    """List the files of a local context."""
    with connect() as api:
        found = api.get(f"/builds/{name}/files")
    if json:
        output.print_json(found)
        return
    output.table(
        ["PATH", "MODE", "SIZE", "KIND"],
        ([f["path"], f["mode"], f["size"], f["kind"]] for f in found),
        empty="no files",
    )


def register(app: typer.Typer) -> None:
    build_app.command()(create)
    build_app.command()(edit)
    build_app.command()(show)
    build_app.command("list")(list_definitions)
    build_app.command()(start)
    build_app.command()(logs)
    build_app.command()(history)
    build_app.command()(pushes)
    build_app.command()(cancel)
    build_app.command()(changes)
    build_app.command("put-file")(put_file)
    build_app.command("rm-file")(rm_file)
    build_app.command()(files)
    app.add_typer(build_app, name="build", rich_help_panel=PANEL)
