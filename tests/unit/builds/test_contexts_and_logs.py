"""Uploaded contexts are checked before they are kept; logs keep their end past the limit."""

from __future__ import annotations

import io
import stat
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dockyard.builds.contexts import context_path, store_context, unpack
from dockyard.builds.logs import LogHub, RunLog, read_log
from dockyard.errors import Invalid
from dockyard.storage.base import PathNotFound
from dockyard.storage.memory import MemoryDriver


def tar_with(*entries: tarfile.TarInfo, content: bytes = b"data") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for info in entries:
            if info.isfile():
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
            else:
                tar.addfile(info)
    return buffer.getvalue()


def entry(name: str, kind: bytes = tarfile.REGTYPE, link: str = "", mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, link, mode
    return info


async def once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_a_good_context_is_kept_by_digest_and_unpacked_with_its_modes(tmp_path: Path) -> None:
    storage = MemoryDriver()
    data = tar_with(entry("run.sh", mode=0o755), entry("docs/readme.txt"))
    stored = await store_context(storage, 7, once(data), max_bytes=1 << 20)
    assert (stored.size, stored.files) == (len(data), 2)
    assert await storage.get_content(context_path(7, stored.digest)) == data
    assert await storage.list("builds/contexts/7") == [context_path(7, stored.digest)]
    await unpack(storage.reader(context_path(7, stored.digest)), tmp_path / "context")
    assert (tmp_path / "context" / "docs" / "readme.txt").read_bytes() == b"data"
    assert stat.S_IMODE((tmp_path / "context" / "run.sh").stat().st_mode) & 0o111


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ((entry("../escape"),), "refused"),
        ((entry("/etc/passwd"),), "refused"),
        ((entry("link", tarfile.SYMTYPE, "/etc/shadow"),), "outside the archive"),
        ((entry("dev", tarfile.CHRTYPE),), "not allowed"),
    ],
)
async def test_an_unsafe_context_is_refused_and_nothing_is_kept(
    entries: tuple[tarfile.TarInfo, ...], message: str
) -> None:
    storage = MemoryDriver()
    with pytest.raises(Invalid, match=message):
        await store_context(storage, 7, once(tar_with(*entries)), max_bytes=1 << 20)
    assert await stored(storage, "builds/contexts/7") == []


async def stored(storage: MemoryDriver, folder: str) -> list[str]:
    try:
        return await storage.list(folder)
    except PathNotFound:
        return []


async def test_a_context_over_the_limit_is_refused() -> None:
    with pytest.raises(Invalid, match="larger than the limit of 100 bytes"):
        await store_context(MemoryDriver(), 7, once(tar_with(entry("a"))), max_bytes=100)


async def test_a_log_past_its_limit_keeps_a_marker_and_its_last_lines() -> None:
    storage = MemoryDriver()
    sink = await RunLog(storage, LogHub(), 3, limit=200).open()
    for number in range(100):
        await sink.write(f"line {number}")
    await sink.close()
    text = (await read_log(storage, 3)).decode()
    assert text.startswith("line 0\nline 1\n")
    assert "[dockyard] the log reached its limit of 200 bytes" in text
    assert "line 40\n" not in text
    assert text.endswith("".join(f"line {n}\n" for n in range(50, 100)))
    assert sink.size == len(text.encode())
    assert await read_log(storage, 3, offset=len(text.encode())) == b""


async def test_a_first_attempt_starts_an_empty_log_and_a_retry_appends() -> None:
    """A run id can come again (SQLite reuses the highest id once its row is gone with a
    deleted workspace): a new run never opens the log an earlier run of that id left."""
    storage = MemoryDriver()
    old = await RunLog(storage, LogHub(), 9, limit=10_000).open(fresh=True)
    await old.write("secret of a deleted workspace")
    await old.close()
    first = await RunLog(storage, LogHub(), 9, limit=10_000).open(fresh=True)
    await first.write("attempt 1")
    await first.close()
    retry = await RunLog(storage, LogHub(), 9, limit=10_000).open()
    await retry.write("attempt 2")
    await retry.close()
    assert (await read_log(storage, 9)).decode() == "attempt 1\nattempt 2\n"
