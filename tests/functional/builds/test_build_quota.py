"""A build is one more way bytes arrive (buildah pushes through /v2): a built image whose new
layer does not fit the workspace's quota is refused like any push, the run fails saying so, and
no tag or version appears."""

from __future__ import annotations

import os

import pytest

from dockyard.builds.definitions import DefinitionInput
from tests.support.builds import Builds, Team, chunks, tar_of
from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api, oci_as
from tests.support.servers import RunningRegistry

pytestmark = pytest.mark.clients


async def test_a_build_over_the_quota_fails_and_leaves_nothing(
    server: RunningRegistry, team: Team, builds: Builds
) -> None:
    owner = await builds.subject(team.owner)
    with Api.connect(server, ADMIN, ADMIN_PASSWORD) as admin:
        used = admin.call("GET", f"/workspaces/{team.workspace}/quota")["used_bytes"]
        admin.call("PUT", f"/workspaces/{team.workspace}/quota", json={"limit_bytes": used + 256 * 1024})
    definition = await builds.definitions.create(
        owner,
        team.workspace,
        "heavy",
        DefinitionInput(dockerfile=f"FROM {team.base}\nCOPY big.bin /big.bin\n"),
    )
    files = tar_of({"big.bin": (os.urandom(2 << 20), 0o644)})  # random: gzip cannot shrink it
    await builds.definitions.upload_context(owner, definition.name, chunks(files))

    run = await builds.build(owner, definition.name, "1.0")
    log = await builds.log(owner, run.id)
    assert run.status == "failed", log
    assert f"quota exceeded: workspace {team.workspace} would use" in log, log
    with oci_as(server, team.owner, PASSWORD) as oci:
        assert oci.get_manifest(definition.name, "1.0").status_code == 404
    with Api.connect(server, ADMIN, ADMIN_PASSWORD) as admin:
        assert admin.call("GET", f"/workspaces/{team.workspace}/quota")["used_bytes"] <= used + 256 * 1024
