"""A build connects only where the worker's outbound policy allows, checked when it runs.

The definitions are saved on the module's server, which allows loopback (as the tests'
servers do); the build runs on a worker without that allowance (an admin withdrew it since,
or the name now resolves elsewhere). The clone and the push are refused before any
connection: the canary they name sees none.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.builds import in_process
from tests.support.catalog import new_user
from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api
from tests.support.outbound import canary
from tests.support.servers import RunningRegistry

NOT_ALLOWED = "which an administrator has not allowed (DOCKYARD_OUTBOUND_ALLOW)"


async def test_a_build_from_or_to_a_refused_destination_fails_without_connecting(
    server: RunningRegistry, tmp_path: Path
) -> None:
    with canary() as target:
        with Api.connect(server, ADMIN, ADMIN_PASSWORD) as admin:
            owner = new_user(admin, "outbound")
        url = f"http://127.0.0.1:{target.port}/repo.git"
        with Api.connect(server, owner, PASSWORD) as api:
            git = {"url": url, "ref": "main"}
            api.call("POST", "/builds", 201, json={"workspace": owner, "name": "cloned", "git": git})
            pushed = {"dockerfile": "FROM scratch\n", "external_destination": f"{target.host}/mirror/tool"}
            api.call("POST", "/builds", 201, json={"workspace": owner, "name": "pushed", **pushed})

        async with in_process(
            server, tmp_path / "builds", outbound_allow=[], build_git_protocols=["http"]
        ) as builds:
            actor = await builds.subject(owner)
            cloned = await builds.build(actor, f"{owner}/cloned")
            clone_log = await builds.log(actor, cloned.id)
            pushed_run = await builds.build(actor, f"{owner}/pushed")

        assert target.accepted == 0
    assert cloned.status == "failed"
    assert (
        cloned.reason
        == f"git clone of {url} refused: destination 127.0.0.1 is a loopback address, {NOT_ALLOWED}"
    )
    assert f"[dockyard] build failed: {cloned.reason}" in clone_log
    assert "cloning" not in clone_log
    assert pushed_run.status == "failed"
    assert pushed_run.reason == (
        f"the push to {target.host} is refused: destination 127.0.0.1 is a loopback address, {NOT_ALLOWED}"
    )
    assert pushed_run.pushed == []
