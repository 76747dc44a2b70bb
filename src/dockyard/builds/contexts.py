"""Uploaded build contexts: a tar of files, checked once on the way in and unpacked for
each build.

On upload the bytes stream to a scratch object in storage while
:class:`~dockyard.archive.safe_tar.SafeTarReader` reads them (no absolute names,
no ``..``, links only to files inside, no devices, entry and size limits, no bombs); only
an archive that passed is moved to ``builds/contexts/<definition id>/<sha256>.tar``. The
stored tar is unpacked for a build with :mod:`tarfile`'s ``data`` filter, a second guard
that also keeps the files' modes (a script copied by the Dockerfile stays executable).
"""

from __future__ import annotations

import asyncio
import hashlib
import tarfile
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from dockyard.archive.decompress import Compression
from dockyard.archive.errors import ArchiveError
from dockyard.archive.safe_tar import LinkPolicy, SafeTarReader, TarLimits
from dockyard.errors import Invalid
from dockyard.storage.base import StorageDriver

CONTEXT_LIMITS = TarLimits(max_entries=50_000, links=LinkPolicy.INSIDE)


@dataclass(frozen=True)
class StoredContext:
    digest: str  # sha256:<hex> of the tar as uploaded
    size: int
    files: int


def context_path(definition_id: int, digest: str) -> str:
    return f"builds/contexts/{definition_id}/{digest.split(':', 1)[1]}.tar"


def log_path(run_id: int) -> str:
    return f"builds/logs/{run_id}.log"


class _TooLarge(Exception):
    pass


async def store_context(
    storage: StorageDriver, definition_id: int, source: AsyncIterable[bytes], max_bytes: int
) -> StoredContext:
    """Check and keep an uploaded tar (plain or gzip); raises ``Invalid`` saying why it was refused."""
    scratch = f"builds/contexts/{definition_id}/upload-{uuid.uuid4().hex}"
    writer = await storage.writer(scratch)
    hasher = hashlib.sha256()
    size = 0

    async def tee() -> AsyncIterator[bytes]:
        nonlocal size
        async for chunk in source:
            size += len(chunk)
            if size > max_bytes:
                raise _TooLarge
            hasher.update(chunk)
            await writer.write(chunk)
            yield chunk

    reader = SafeTarReader(
        tee(), TarLimits(**{**CONTEXT_LIMITS.__dict__, "max_total_size": max(max_bytes * 4, 1 << 20)})
    )
    try:
        async for _entry in reader:
            pass  # content is skipped (and counted against the limits) by the reader
        if reader.compression not in (Compression.NONE, Compression.GZIP):
            raise Invalid("upload the context as a plain or gzip-compressed tar")
        files = len(reader.files())
    except _TooLarge:
        await writer.cancel()
        raise Invalid(f"the context archive is larger than the limit of {max_bytes} bytes") from None
    except ArchiveError as exc:
        await writer.cancel()
        raise Invalid(f"the context archive was refused: {exc}") from None
    except BaseException:
        await writer.cancel()
        raise
    await writer.commit()
    digest = "sha256:" + hasher.hexdigest()
    await storage.move(scratch, context_path(definition_id, digest))
    return StoredContext(digest, size, files)


async def unpack(source: AsyncIterator[bytes], dest: Path) -> None:
    """Write the stored tar to ``dest``/../context.tar and unpack it into ``dest``."""
    archive = dest.parent / "context.tar"
    with archive.open("wb") as out:
        async for chunk in source:
            await asyncio.to_thread(out.write, chunk)
    await asyncio.to_thread(_extract, archive, dest)
    archive.unlink()


def _extract(archive: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:*") as tar:
        tar.extractall(dest, filter="data")
