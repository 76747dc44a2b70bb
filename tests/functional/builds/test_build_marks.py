"""Trust marks of a version Dockyard built: *built here* with its run (provenance), and
*Dockerfile visible* to whoever may read the workspace's build definitions, not to an outsider
who sees the public image. The server and team are those of the other build tests."""

from __future__ import annotations

import pytest

from dockyard.builds.definitions import DefinitionInput
from tests.support.builds import Builds, Team
from tests.support.identity import PASSWORD, Api
from tests.support.servers import RunningRegistry

pytestmark = pytest.mark.clients


async def test_a_built_version_is_marked_built_with_its_run_and_its_dockerfile_shown_to_members(
    server: RunningRegistry, team: Team, builds: Builds
) -> None:
    owner = await builds.subject(team.owner)
    definition = await builds.definitions.create(
        owner, team.workspace, "marked", DefinitionInput(dockerfile=f"FROM {team.base}\nRUN echo hi > /hi\n")
    )
    run = await builds.build(owner, definition.name, "1.0")
    assert run.status == "succeeded"
    name = definition.name
    with Api.connect(server, team.reader, PASSWORD) as reader:
        marks = reader.call("GET", f"/images/{name}/versions/1.0")["marks"]
        assert marks["build_run"] == run.id
        assert {"built", "dockerfile"} <= set(marks["marks"])
        listed = reader.call("GET", "/images", params={"workspace": team.workspace, "mark": "built"})
        assert [i["name"] for i in listed["items"]] == [name]
        listed = reader.call("GET", "/images", params={"workspace": team.workspace, "mark": "dockerfile"})
        assert [i["name"] for i in listed["items"]] == [name]
    with Api.connect(server, team.owner, PASSWORD) as api:
        api.set_visibility(name, "public")
    with Api.connect(server, team.outsider, PASSWORD) as outsider:
        marks = outsider.call("GET", f"/images/{name}/versions/1.0")["marks"]
        assert "built" in marks["marks"]
        assert "dockerfile" not in marks["marks"]  # the definition is the workspace's to read
        listed = outsider.call("GET", "/images", params={"workspace": team.workspace, "mark": "dockerfile"})
        assert listed["items"] == []
