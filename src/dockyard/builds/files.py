"""A local context edited file by file: list its files, put one (added or replaced), remove one.

The context stays one tar in storage. A change reads the current tar, writes a new one with
the file added, replaced or removed (the other entries copied as they are), and stores it
like an upload (:func:`~dockyard.builds.contexts.store_context`: checked again, size limit,
content-addressed), so the definition's content hash changes and it shows ``modified``.
Putting a file with the bytes and mode it already has changes nothing. Files put here get
a fixed timestamp, so the same files give the same context digest.

Paths are relative: no absolute paths, no ``..``, no backslashes or NUL, at most 512 bytes.
"""

from __future__ import annotations

import asyncio
import tarfile
import tempfile
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockyard.auth.policy import Subject
from dockyard.builds.contexts import context_path, store_context
from dockyard.builds.definitions import BuildDefinitions, load
from dockyard.builds.spec import LOCAL
from dockyard.builds.views import DefinitionView
from dockyard.errors import Conflict, Invalid, NotFound

MAX_PATH_BYTES = 512
DEFAULT_MODE, EXECUTABLE_MODE = 0o644, 0o755
_KINDS = {
    tarfile.REGTYPE: "file",
    tarfile.AREGTYPE: "file",
    tarfile.SYMTYPE: "symlink",
    tarfile.LNKTYPE: "link",
}


@dataclass(frozen=True)
class ContextFile:
    path: str
    size: int
    mode: int
    kind: str  # file, symlink or link (a hard link)


def check_file_path(path: str) -> str:
    """The normalised path of a file in the context, or ``Invalid`` saying why not."""
    refused = f"the file path {path[:100]!r} must be relative to the context, without '..'"
    if not path or path.startswith("/") or "\\" in path or any(ord(c) < 32 for c in path):
        raise Invalid(refused + ", backslashes or control characters")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if not parts or ".." in parts:
        raise Invalid(refused)
    normal = "/".join(parts)
    if len(normal.encode()) > MAX_PATH_BYTES:
        raise Invalid(f"the file path is longer than {MAX_PATH_BYTES} bytes")
    return normal


def check_mode(mode: str | None, executable: bool) -> int:
    """``0755``-style permissions; without them 0755 for an executable, else 0644."""
    if mode is None:
        return EXECUTABLE_MODE if executable else DEFAULT_MODE
    try:
        value = int(mode, 8)
    except ValueError:
        value = -1
    if not 0 <= value <= 0o777:
        raise Invalid(f"the mode {mode[:20]!r} is not octal permissions like 0644 or 0755")
    return value


def _name(member: tarfile.TarInfo) -> str:
    return "/".join(part for part in member.name.split("/") if part not in ("", "."))


def _list(archive: Path) -> list[ContextFile]:
    with tarfile.open(archive, "r:*") as tar:
        return [
            ContextFile(_name(m), m.size, m.mode & 0o7777, _KINDS[m.type]) for m in tar if m.type in _KINDS
        ]


def _rewrite(old: Path | None, new: Path, path: str, content: Path | None, mode: int) -> bool:
    """Copy ``old`` to ``new`` without ``path`` (and, if ``content``, with it); whether it was there."""
    found = False
    folders: set[str] = set()
    with tarfile.open(new, "w", format=tarfile.PAX_FORMAT) as out:
        if old is not None:
            with tarfile.open(old, "r:*") as tar:
                for member in tar:
                    name = _name(member)
                    if name == path or name.startswith(path + "/"):
                        if content is not None and member.isdir():
                            raise Conflict(f"{path!r} is a folder in the context")
                        found = True
                        continue
                    if content is not None and path.startswith(name + "/") and not member.isdir():
                        raise Conflict(f"{name!r} is a file in the context, not a folder")
                    if member.islnk() and "/".join(p for p in member.linkname.split("/") if p != ".") == path:
                        raise Conflict(f"{name!r} is a hard link to {path!r}; remove it first")
                    if member.isdir():
                        folders.add(name)
                    out.addfile(member, tar.extractfile(member) if member.isreg() else None)
        if content is not None:
            parts = path.split("/")
            for depth in range(1, len(parts)):
                folder = "/".join(parts[:depth])
                if folder not in folders:
                    out.addfile(_info(folder, tarfile.DIRTYPE, 0o755, 0))
            with content.open("rb") as data:
                out.addfile(_info(path, tarfile.REGTYPE, mode, content.stat().st_size), data)
    return found


def _info(name: str, kind: bytes, mode: int, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.mtime = kind, mode, size, 0
    return info


async def _file_chunks(path: Path, size: int = 1 << 20) -> AsyncIterator[bytes]:
    with path.open("rb") as source:
        while chunk := await asyncio.to_thread(source.read, size):
            yield chunk


class ContextFiles:
    """File-by-file changes to local contexts (developers and up; readers may list)."""

    def __init__(self, definitions: BuildDefinitions) -> None:
        self.definitions = definitions

    async def resolve(self, actor: Subject, name: str, file_path: str) -> tuple[str, str]:
        """Split ``name/files/file_path`` (a URL's greedy match) at the first definition the actor sees."""
        whole = f"{name}/files/{file_path}"
        marker = "/files/"
        for at in (i for i in range(len(whole)) if whole.startswith(marker, i)):
            candidate = whole[:at]
            try:
                async with self.definitions.db.read() as conn:
                    await load(conn, actor, candidate, "reader")
            except NotFound:
                continue
            return candidate, whole[at + len(marker) :]
        return name, file_path

    async def list(self, actor: Subject, name: str) -> list[ContextFile]:
        async with self.definitions.db.read() as conn:
            m, _ = await load(conn, actor, name, "reader")
        if not m["context_digest"]:
            return []
        with tempfile.TemporaryDirectory(prefix="dockyard-context-") as tmp:
            archive = await self._download(m, Path(tmp))
            return await asyncio.to_thread(_list, archive)

    async def put(
        self, actor: Subject, name: str, path: str, source: AsyncIterable[bytes], mode: int
    ) -> DefinitionView:
        """Add or replace one file with the bytes of ``source``."""
        path = check_file_path(path)
        return await self._change(actor, name, path, source, mode)

    async def remove(self, actor: Subject, name: str, path: str) -> DefinitionView:
        """Remove a file (or a folder with everything in it)."""
        path = check_file_path(path)
        return await self._change(actor, name, path, None, 0)

    async def _change(
        self, actor: Subject, name: str, path: str, source: AsyncIterable[bytes] | None, mode: int
    ) -> DefinitionView:
        definitions = self.definitions
        async with definitions.db.read() as conn:
            m, _ = await load(conn, actor, name, "developer")
        if m["context"] != LOCAL:
            raise Conflict("only a local context has uploaded files; this one builds from git")
        with tempfile.TemporaryDirectory(prefix="dockyard-context-") as tmp:
            folder = Path(tmp)
            content = None if source is None else await self._receive(source, folder / "file")
            old = await self._download(m, folder) if m["context_digest"] else None
            new = folder / "new.tar"
            found = await asyncio.to_thread(_rewrite, old, new, path, content, mode)
            if source is None and not found:
                raise NotFound(f"there is no file {path!r} in the context of {m['name']!r}")
            stored = await store_context(
                definitions.storage, m["id"], _file_chunks(new), definitions.context_max_bytes
            )
        action = "removed" if source is None else "replaced" if found else "added"
        detail: dict[str, Any] = {"file": path, "action": action, "files": stored.files}
        if source is not None:
            detail["mode"] = f"{mode:04o}"
        return await definitions.replace_context(actor, m["name"], stored, m["context_digest"], detail)

    async def _receive(self, source: AsyncIterable[bytes], dest: Path) -> Path:
        limit, size = self.definitions.context_max_bytes, 0
        with dest.open("wb") as out:
            async for chunk in source:
                size += len(chunk)
                if size > limit:
                    raise Invalid(f"the file is larger than the context's limit of {limit} bytes")
                await asyncio.to_thread(out.write, chunk)
        return dest

    async def _download(self, m: Any, folder: Path) -> Path:
        archive = folder / "old.tar"
        with archive.open("wb") as out:
            async for chunk in self.definitions.storage.reader(context_path(m["id"], m["context_digest"])):
                await asyncio.to_thread(out.write, chunk)
        return archive
