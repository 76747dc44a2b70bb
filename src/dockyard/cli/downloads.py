"""``dockyard image download NAME:VERSION``: save an image version as a tar that ``docker load``
and ``podman load`` accept (or, with ``--format oci``, an OCI archive), with a progress bar.

The bytes go to ``FILE.part`` and the archive's ETag to ``FILE.part.etag``; the file gets
its name only once it is whole. Run the same command again after an interruption and it
continues where it stopped (``Range`` with ``If-Range``): if the tag was pushed again
meanwhile, the server sends the new archive whole and the download starts over.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import IO, Annotated

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

from dockyard.cli import output
from dockyard.cli.catalog_format import human_size, version_path
from dockyard.cli.client import Client, connect
from dockyard.cli.errors import ApiError, CliError
from dockyard.oci.ranges import parse_served_range

RESUME_HINT = "run the same command again to resume"


class ArchiveFormat(StrEnum):
    docker = "docker"
    oci = "oci"


def _name_version(text: str) -> tuple[str, str]:
    name, colon, version = text.rpartition(":")
    if not colon or not name or not version or "/" in version:
        raise CliError(f"{text!r} is not NAME:VERSION", hint="like genomics/samtools:1.19", exit_code=2)
    return name, version


def _default_file(name: str, version: str, fmt: ArchiveFormat) -> Path:
    suffix = ".oci.tar" if fmt is ArchiveFormat.oci else ".tar"
    return Path(f"{name.replace('/', '_')}_{version}{suffix}")


def download(
    reference: Annotated[str, typer.Argument(metavar="NAME:VERSION", help="Like genomics/samtools:1.19.")],
    output_file: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Where to save it (default: NAME_VERSION.tar here)."),
    ] = None,
    fmt: Annotated[
        ArchiveFormat, typer.Option("--format", help="docker (for docker/podman load) or oci.")
    ] = ArchiveFormat.docker,
    platform: Annotated[
        str | None,
        typer.Option(help="From a multi-platform image: os/arch or os/arch/variant (default linux/amd64)."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Download an image version as a tar (images of your own workspaces, status available)."""
    name, version = _name_version(reference)
    target = output_file or _default_file(name, version, fmt)
    params = {"format": fmt.value, "platform": platform}
    with connect() as api:
        saved = _Download(api, f"{version_path(name, version)}/archive", params, target, quiet).run()
    output.say(f"Saved {name}:{version} to {target} ({human_size(saved.size)}).")
    if saved.platform:
        output.say(f"Platform: {saved.platform}")
    output.say(f"Digest: {saved.digest}")
    if fmt is ArchiveFormat.oci:
        output.note(f"Load it with: podman load -i {target}  (or: skopeo copy oci-archive:{target} ...)")
    else:
        output.note(f"Load it with: docker load -i {target}  (or: podman load -i {target})")


class _Saved:
    def __init__(self, size: int, digest: str, platform: str | None) -> None:
        self.size = size
        self.digest = digest
        self.platform = platform


class _Download:
    def __init__(
        self, api: Client, path: str, params: dict[str, str | None], target: Path, quiet: bool
    ) -> None:
        self.api = api
        self.path = path
        self.params = {k: v for k, v in params.items() if v is not None}
        self.target = target
        self.part = target.with_name(target.name + ".part")
        self.etag_file = target.with_name(target.name + ".part.etag")
        self.quiet = quiet

    def run(self) -> _Saved:
        for _attempt in range(2):  # a second time only after a stale .part was dropped
            start = self._resumable()
            headers = {}
            if start:
                headers = {"Range": f"bytes={start}-", "If-Range": self.etag_file.read_text().strip()}
            try:
                with self.api.http.stream(
                    "GET", self.path, params=self.params, headers=headers, timeout=_TIMEOUT
                ) as response:
                    if response.status_code == 416:
                        self._drop_part()  # the .part is not a prefix of this archive
                        continue
                    self._check(response)
                    return self._save(response)
            except httpx.TransportError as exc:
                raise CliError(
                    f"the download was interrupted: {exc or type(exc).__name__}", hint=RESUME_HINT
                ) from None
        raise CliError("the server refused to resume the download; delete the .part file and try again")

    def _resumable(self) -> int:
        if self.part.exists() and self.etag_file.exists():
            return self.part.stat().st_size
        self._drop_part()
        return 0

    def _drop_part(self) -> None:
        for leftover in (self.part, self.etag_file):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()

    def _check(self, response: httpx.Response) -> None:
        if response.status_code < 400:
            return
        response.read()
        detail = f"HTTP {response.status_code}"
        with contextlib.suppress(ValueError):
            body = response.json()
            if isinstance(body, dict) and isinstance(body.get("detail"), str):
                detail = body["detail"]
        hint = "log in first: run 'dockyard login URL'" if response.status_code == 401 else None
        raise ApiError(response.status_code, detail, hint=hint)

    def _save(self, response: httpx.Response) -> _Saved:
        length = int(response.headers["content-length"])
        if response.status_code == 206:
            start, total = _content_range(response.headers.get("content-range", ""))
            mode = "ab"
        else:
            start, total, mode = 0, length, "wb"
        if start != (self.part.stat().st_size if mode == "ab" else 0):
            raise CliError("the server resumed at another byte than asked for; delete the .part file")
        self.etag_file.write_text(response.headers.get("etag", ""))
        console = Console(stderr=True)
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
        )
        label = "resuming" if start else "downloading"
        with (
            self.part.open(mode) as out,
            Progress(*columns, console=console, disable=self.quiet, transient=True) as progress,
        ):
            task = progress.add_task(label, total=total, completed=start)
            written = _copy(response, out, lambda n: progress.advance(task, n))
            out.flush()
            os.fsync(out.fileno())
        if written != length:
            raise CliError(f"the server sent {written} of {length} bytes", hint=RESUME_HINT)
        self.part.replace(self.target)
        self.etag_file.unlink()
        if start:
            output.note(f"Resumed at byte {start} of {total}.")
        return _Saved(
            total,
            response.headers.get("dockyard-image-digest", ""),
            response.headers.get("dockyard-platform"),
        )


_TIMEOUT = httpx.Timeout(60.0, read=300.0)


def _content_range(header: str) -> tuple[int, int]:
    found = parse_served_range(header)
    if found is None or found.total is None:
        raise CliError(f"the server answered a resume with an unreadable Content-Range {header!r}")
    return found.start, found.total


def _copy(response: httpx.Response, out: IO[bytes], advance: Callable[[int], None]) -> int:
    written = 0
    for chunk in response.iter_bytes(1024 * 1024):
        out.write(chunk)
        written += len(chunk)
        advance(len(chunk))
    return written


def attach(image_app: typer.Typer) -> None:
    image_app.command("download")(download)
