"""The network namespace of RUN steps with ``egress``: a way out of its own, torn down after
the build, and a readable failure where slirp4netns is missing. Real unshare and slirp4netns."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from dockyard.builds.builder import BuildFailed
from dockyard.builds.sandbox import isolation_args, run_network


def _routes(pid: str) -> list[list[str]]:
    """Interface and destination of each route in ``pid``'s network namespace."""
    return [line.split()[:2] for line in Path(f"/proc/{pid}/net/route").read_text().splitlines()[1:]]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def test_egress_is_a_namespace_of_its_own_with_a_default_route_and_ends_with_the_block(
    tmp_path: Path,
) -> None:
    groups: list[int] = []
    async with run_network("egress", tmp_path, groups.append) as path:
        assert path is not None
        assert isolation_args(path)[-2:] == ["--network", f"ns:{path}"]
        assert os.stat(path).st_ino != os.stat("/proc/self/ns/net").st_ino
        assert [r for r in _routes(path.split("/")[2]) if r[1] == "00000000"] == [["tap0", "00000000"]]
        assert len(groups) == 2  # the holder and slirp4netns, for the reaper
        assert not any(_gone(group) for group in groups)
    assert all(_gone(group) for group in groups)
    assert "tap0" not in [r[0] for r in _routes("self")]  # the server's own namespace is untouched


async def test_none_starts_nothing(tmp_path: Path) -> None:
    groups: list[int] = []
    async with run_network("none", tmp_path, groups.append) as path:
        assert path is None
        assert isolation_args(path)[-2:] == ["--network", "none"]
    assert groups == []


async def test_without_slirp4netns_egress_fails_readably_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("unshare", "sh", "cat"):
        found = shutil.which(tool)
        assert found is not None
        (tools / tool).symlink_to(found)
    monkeypatch.setenv("PATH", str(tools))
    groups: list[int] = []
    with pytest.raises(BuildFailed, match="network 'egress' needs slirp4netns on the build server"):
        async with run_network("egress", tmp_path, groups.append):
            pytest.fail("the network came up without slirp4netns")
    assert len(groups) == 1
    assert _gone(groups[0])  # the namespace's holder went with the failure
