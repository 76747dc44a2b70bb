"""``dockyard image upload FILE``: upload a ``docker save`` or OCI archive (plain, gzip or
zstd) and create an image version from it, with progress bars for the upload and the import.

The archive goes in chunks. The upload session's id is remembered (``uploads.json`` beside
the CLI's config file, keyed by server, file, size, modification time and workspace), so
after an interruption the same command asks the server how far it got and sends the rest.
Once the server has imported the archive, the version is created (name and version default
to the image's tag; ``--image`` picks one of several images) and the session is removed.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from dockyard.cli import config, output
from dockyard.cli.catalog_format import Clusters, Kind, Regions, Visibility, human_size, settings_body
from dockyard.cli.client import Client, connect, seg
from dockyard.cli.errors import ApiError, CliError

RESUME_HINT = "run the same command again to resume"
STEP = 1 << 20  # bytes read from the file at a time
_TIMEOUT = httpx.Timeout(60.0, write=300.0, read=300.0)
# A request that finds the session held while the server records a refusal it found between
# two requests is sent again, every half second for at most this many times (20 s).
_BUSY_TRIES = 40
_BUSY_WAIT = 0.5
_RESENDS = 3  # imports interrupted on the server, sent again from what it kept, in one command


def upload(
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE",
            exists=True,
            dir_okay=False,
            readable=True,
            help="The archive (.tar, .tar.gz, ...).",
        ),
    ],
    workspace: Annotated[
        str | None, typer.Option("--workspace", "-w", help="Its workspace (default: your personal one).")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="The image's name (default: from the archive's tag).")
    ] = None,
    version: Annotated[str | None, typer.Option(help="The version (default: the archive's tag).")] = None,
    image: Annotated[
        str | None, typer.Option(help="Which image of a multi-image archive: its tag or index.")
    ] = None,
    kind: Kind = None,
    visibility: Visibility = None,
    region: Regions = None,
    cluster: Clusters = None,
    replace: Annotated[bool, typer.Option(help="Replace the version if it exists.")] = False,
    layer_compression: Annotated[
        str, typer.Option(help="How uncompressed (docker save) layers are stored: gzip or zstd.")
    ] = "gzip",
    chunk_mib: Annotated[int, typer.Option("--chunk-size", min=1, max=1024, help="MiB per request.")] = 64,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    json_output: output.JsonFlag = False,
) -> None:
    """Upload an image archive (docker save or OCI; developers) and create a version from it."""
    with connect() as api:
        ws = workspace or str(api.get("/user")["username"])
        session = _Session(api, file, ws, layer_compression, quiet)
        archive_id = session.upload(chunk_mib << 20)
        done = session.imported(archive_id, chunk_mib << 20)
        chosen: int | str | None = image
        if image is not None and image.isascii() and image.isdigit() and len(image) < 10:  # not '²'
            chosen = int(image)
        body: dict[str, Any] = {
            "image": chosen,
            "name": name,
            "version": version,
            "replace": replace,
            **settings_body(kind, visibility, region, cluster),
        }
        created = api.post(f"/archives/{seg(archive_id)}/create-version", body)
        with contextlib.suppress(CliError):
            api.delete(f"/archives/{seg(archive_id)}")
        session.forget()
    if json_output:
        output.print_json(created)
        return
    output.say(f"Created {created['image']}:{created['version']} ({created['kind']}, {created['status']}).")
    output.say(f"Digest: {created['digest']}")
    written, known = done.get("bytes_written"), done.get("bytes_deduplicated")
    if written is not None and known is not None:
        output.say(f"Stored {human_size(written)} of new blobs; {human_size(known)} were already stored.")
    for warning in done.get("warnings", []):
        output.note(f"warning: {warning}")
    if created["status"] == "pending":
        output.note(f"Dockyard is inspecting it: dockyard image show {created['image']}")


class _Session:
    def __init__(self, api: Client, file: Path, workspace: str, layer_compression: str, quiet: bool) -> None:
        self.api = api
        self.file = file
        self.size = file.stat().st_size
        self.workspace = workspace
        self.layer_compression = layer_compression
        self.quiet = quiet
        stat = file.stat()
        self.key = f"{api.url}|{file.resolve()}|{self.size}|{stat.st_mtime_ns}|{workspace}"
        self.state_file = config.config_path().parent / "uploads.json"

    # --- remembering the session ----------------------------------------------------

    def _load(self) -> dict[str, str]:
        try:
            found = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}

    def _save(self, known: dict[str, str]) -> None:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_name(self.state_file.name + ".tmp")
        tmp.write_text(json.dumps(known, indent=1))
        tmp.replace(self.state_file)

    def remember(self, archive_id: str) -> None:
        self._save({**self._load(), self.key: archive_id})

    def forget(self) -> None:
        known = self._load()
        if known.pop(self.key, None) is not None:
            self._save(known)

    # --- uploading -----------------------------------------------------------------

    def _resumable(self) -> tuple[str, dict[str, Any]] | None:
        archive_id = self._load().get(self.key)
        if archive_id is None:
            return None
        try:
            status: dict[str, Any] = self.api.get(f"/archives/{seg(archive_id)}")
        except ApiError as exc:
            if exc.status != 404:
                raise
            self.forget()
            return None
        if status["state"] == "failed" and "PUT again" not in (status["reason"] or ""):
            self.forget()
            return None
        return archive_id, status

    def upload(self, chunk: int) -> str:
        """Send what the server does not have yet; the session's id."""
        found = self._resumable()
        if found is None:
            started = self.api.post(
                "/archives",
                {"workspace": self.workspace, "size": self.size, "layer_compression": self.layer_compression},
            )
            archive_id, offset, state = str(started["id"]), 0, "receiving"
            self.remember(archive_id)
        else:
            archive_id, status = found
            offset, state = int(status["offset"]), str(status["state"])
            if state == "receiving" and offset:
                output.note(f"Resuming the upload at byte {offset} of {self.size}.")
        if state == "receiving":
            self._send(archive_id, offset, chunk)
        return archive_id

    def _send(self, archive_id: str, offset: int, chunk: int) -> None:
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
        )
        console = Console(stderr=True)
        with (
            self.file.open("rb") as source,
            Progress(*columns, console=console, disable=self.quiet, transient=True) as progress,
        ):
            task = progress.add_task("uploading", total=self.size, completed=offset)
            busy = 0
            while offset < self.size:
                length = min(chunk, self.size - offset)
                source.seek(offset)
                headers = {
                    "Content-Range": f"bytes {offset}-{offset + length - 1}/{self.size}",
                    "Content-Type": "application/octet-stream",
                    "Content-Length": str(length),
                }
                body = _pieces(source, length, lambda n: progress.advance(task, n))
                try:
                    response = self.api.http.patch(
                        f"/archives/{seg(archive_id)}", content=body, headers=headers, timeout=_TIMEOUT
                    )
                except httpx.TransportError as exc:
                    raise CliError(
                        f"the upload was interrupted: {exc or type(exc).__name__}", hint=RESUME_HINT
                    ) from None
                if self._busy(archive_id, response, busy):
                    busy += 1
                    progress.update(task, completed=offset)
                    continue
                busy = 0
                if response.status_code == 416 and _offset_of(response) not in (None, offset):
                    # The server lost what it had past its last checkpoint (it restarted):
                    # it says where to go on from.
                    offset = int(_offset_of(response) or 0)
                    progress.update(task, completed=offset)
                    continue
                self._refused(archive_id, response)
                _check(response)
                offset = int(response.json()["offset"])
                progress.update(task, completed=offset)

    def _busy(self, archive_id: str, response: httpx.Response, tries: int) -> bool:
        """Whether to send the request again: the session was held for a moment (the server
        was recording a refusal it found between requests, or another request was working).
        Raises the refusal once it is recorded."""
        if response.status_code != 409 or tries >= _BUSY_TRIES:
            return False
        status = self.api.get(f"/archives/{seg(archive_id)}")
        if status["state"] == "failed":
            self.forget()
            raise CliError(f"the archive was refused: {status['reason']}")
        if status["state"] != "receiving":
            return False
        time.sleep(_BUSY_WAIT)
        return True

    def _refused(self, archive_id: str, response: httpx.Response) -> None:
        """Raise the reason when the import refused the archive (now, or after an earlier chunk)."""
        if response.status_code == 422:
            self.forget()
            raise CliError(f"the archive was refused: {_detail(response)}")
        if response.status_code == 409:
            status = self.api.get(f"/archives/{seg(archive_id)}")
            if status["state"] == "failed":
                self.forget()
                raise CliError(f"the archive was refused: {status['reason']}")

    def imported(self, archive_id: str, chunk: int) -> dict[str, Any]:
        """Complete the upload (the server imports in the background) and follow the import.
        An import interrupted on the server (the process finishing it died, and nothing could
        go on from where it was) is back at what the server kept: the rest is sent again."""
        for _ in range(_RESENDS + 1):
            status = self._follow(archive_id)
            if status["state"] == "done":
                return status
            if status["state"] != "receiving":
                self.forget()
                raise CliError(f"the archive was refused: {status['reason']}")
            offset = int(status["offset"])
            output.note(
                f"The import was interrupted on the server; sending the archive again from byte "
                f"{offset} of {self.size}."
            )
            self._send(archive_id, offset, chunk)
        raise CliError("the import was interrupted on the server again and again", hint=RESUME_HINT)

    def _follow(self, archive_id: str) -> dict[str, Any]:
        """Complete the upload and follow the import until it is no longer importing."""
        status: dict[str, Any] = self.api.get(f"/archives/{seg(archive_id)}")
        if status["state"] in ("receiving", "failed"):
            tries = 0
            while True:
                try:
                    response = self.api.http.put(
                        f"/archives/{seg(archive_id)}", params={"wait": "false"}, timeout=_TIMEOUT
                    )
                except httpx.TransportError as exc:
                    raise CliError(f"cannot reach {self.api.url}: {exc}", hint=RESUME_HINT) from None
                if not self._busy(archive_id, response, tries):
                    break
                tries += 1
            self._refused(archive_id, response)
            _check(response)
            status = response.json()
        columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
        with Progress(*columns, console=Console(stderr=True), disable=self.quiet, transient=True) as progress:
            task = progress.add_task("importing", total=self.size)
            while status["state"] == "importing":
                progress.update(task, completed=int(status["processed"]))
                time.sleep(0.5)
                status = self.api.get(f"/archives/{seg(archive_id)}")
        return status


def _pieces(source: IO[bytes], length: int, advance: Callable[[int], None]) -> Iterator[bytes]:
    left = length
    while left:
        piece = source.read(min(STEP, left))
        if not piece:
            raise CliError("the file got shorter while it was being uploaded")
        left -= len(piece)
        advance(len(piece))
        yield piece


def _offset_of(response: httpx.Response) -> int | None:
    """The offset a refused chunk's answer names (416: send from there)."""
    with contextlib.suppress(ValueError, KeyError, TypeError):
        return int(response.json()["offset"])
    return None


def _detail(response: httpx.Response) -> str:
    """The problem document's detail, or the status."""
    with contextlib.suppress(ValueError):
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("detail"), str):
            return str(body["detail"])
    return f"HTTP {response.status_code}"


def _check(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    detail = _detail(response)
    hint = "log in first: run 'dockyard login URL'" if response.status_code == 401 else None
    if response.status_code == 416:
        hint = RESUME_HINT
    raise ApiError(response.status_code, detail, hint=hint)


def attach(image_app: typer.Typer) -> None:
    image_app.command("upload")(upload)
