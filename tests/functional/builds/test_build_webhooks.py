"""A build tells the workspace's webhooks that it started and how it finished (#18)."""

from __future__ import annotations

import asyncio

import pytest

from dockyard.builds.definitions import DefinitionInput
from tests.support.builds import Builds, Team
from tests.support.identity import PASSWORD, Api
from tests.support.servers import RunningRegistry
from tests.support.webhooks import Receiver

pytestmark = pytest.mark.clients


async def test_a_build_tells_the_webhooks_it_started_and_finished(
    server: RunningRegistry, team: Team, builds: Builds
) -> None:
    receiver = Receiver().start()
    try:
        with Api.connect(server, team.owner, PASSWORD) as api:
            events = ["build.started", "build.finished"]
            api.call(
                "POST",
                f"/workspaces/{team.workspace}/webhooks",
                201,
                json={"url": receiver.url, "events": events},
            )
        owner = await builds.subject(team.owner)
        dockerfile = f"FROM {team.base}\nRUN /bin/false\n"
        name = (
            await builds.definitions.create(
                owner, team.workspace, "hooked", DefinitionInput(dockerfile=dockerfile)
            )
        ).name
        run = await builds.build(owner, name)
        assert run.status == "failed"
        received = await asyncio.to_thread(receiver.wait_for, lambda r: len(r) >= 2)
        started, finished = (r.event for r in received)
        repository = f"{team.workspace}/{name}"
        assert started["type"] == "org.dockyard.build.started"
        assert started["subject"] == finished["subject"] == f"{repository}/builds/{run.id}"
        assert started["data"]["status"] == "running"
        assert finished["type"] == "org.dockyard.build.finished"
        assert finished["data"]["status"] == "failed"
        assert finished["data"]["reason"] == run.reason
        assert finished["data"]["started_by"] == team.owner
    finally:
        receiver.stop()
