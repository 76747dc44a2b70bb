"""The progress bar of a server job that moves bytes (bytes, speed, blobs), on stderr."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

# given the job's progress: bytes_done, bytes_total, blobs_done, blobs_total
Update = Callable[[Mapping[str, Any]], None]


@contextlib.contextmanager
def transfer_bar(description: str, quiet: bool) -> Iterator[Update]:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TextColumn("{task.fields[blobs]}"),
    )
    with Progress(*columns, console=Console(stderr=True), disable=quiet, transient=True) as bar:
        task = bar.add_task(description, total=None, blobs="")

        def update(progress: Mapping[str, Any]) -> None:
            blobs = f"blobs {progress['blobs_done']}/{progress['blobs_total']}"
            bar.update(task, total=progress["bytes_total"], completed=progress["bytes_done"], blobs=blobs)

        yield update
