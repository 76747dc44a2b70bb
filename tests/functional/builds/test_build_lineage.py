"""Lineage of images built here (buildah): the build's FROM names the base, the base lists the
built version as its child, a newer base flags it, and it is rebuilt in one action, or by
itself when its definition asks for it."""

from __future__ import annotations

import pytest

from dockyard.builds.definitions import DefinitionInput
from tests.support.builds import Builds, Team, push_base_image
from tests.support.catalog import CatalogUser, problem
from tests.support.clients import Skopeo
from tests.support.identity import PASSWORD, oci_as
from tests.support.images import TestImages
from tests.support.lineage import children, image, layers, push
from tests.support.servers import RunningRegistry

pytestmark = pytest.mark.clients


async def test_an_image_built_here_shows_its_base_and_a_newer_base_queues_its_rebuild(
    server: RunningRegistry, team: Team, builds: Builds, test_images: TestImages, skopeo: Skopeo
) -> None:
    owner = await builds.subject(team.owner)
    base_name = f"{team.workspace}/busybox"
    # A copy of the base with the same layers, pushed later: only the build's FROM tells them apart.
    copy_name = f"{team.workspace}/copy"
    copy = push_base_image(test_images, skopeo, server.host, copy_name, team.owner)
    with CatalogUser.connect(server, team.owner) as user:
        user.wait_inspected(base_name, "v1")
        copied = user.wait_inspected(copy_name, "v1")
        definition = await builds.definitions.create(
            owner,
            team.workspace,
            "tool",
            DefinitionInput(dockerfile=f"FROM {copy}\nRUN echo built > /b.txt\n"),
        )
        run = await builds.build(owner, definition.name, "1")
        assert run.status == "succeeded", run.reason
        built = user.wait_inspected(definition.name, "1", run.digest)
        expected = {"image": copy_name, "version": "v1", "digest": copied["digest"], "layers_added": 1}
        assert built["based_on"] == {"visible": True, **expected}
        assert built["base_updated"] is False
        assert children(user, copy_name, "v1") == [(definition.name, "1", False)]

        # Rebuilding is for the workspace's maintainers.
        with CatalogUser.connect(server, team.developer) as developer:
            refused = developer.http.post(f"/images/{definition.name}/versions/1/rebuild")
            assert "maintainer" in problem(refused, 403)
        assert problem(user.http.post(f"/images/{copy_name}/versions/v1/rebuild"), 404).endswith(
            "was not built here: there is no build to run again"
        )

        # A newer version of the base image: the built version is flagged, and rebuilt on request.
        with oci_as(server, team.owner, PASSWORD) as oci:
            push(oci, user, copy_name, "v2", image(layers("a newer base"), "newer"))
        assert user.version(definition.name, "1")["base_updated"] is True
        assert children(user, copy_name, "v1") == [(definition.name, "1", True)]
        rebuilt = user.api.call("POST", f"/images/{definition.name}/versions/1/rebuild", 201)
        assert (rebuilt["status"], rebuilt["version"], rebuilt["started_by"]) == ("queued", "1", team.owner)
        await builds.run_next()
        assert (await builds.service.run(owner, rebuilt["id"])).status == "succeeded"

        # With the definition's setting, the next newer base queues the rebuild by itself.
        path = f"/builds/{definition.name}/rebuild-on-base-update"
        assert user.api.call("GET", path) == {"definition": definition.name, "rebuild_on_base_update": False}
        with CatalogUser.connect(server, team.developer) as developer:
            refused = developer.http.put(path, json={"rebuild_on_base_update": True})
            assert "maintainer" in problem(refused, 403)
        user.api.call("PUT", path, json={"rebuild_on_base_update": True})
        assert user.api.call("GET", path)["rebuild_on_base_update"] is True
        with oci_as(server, team.owner, PASSWORD) as oci:
            push(oci, user, copy_name, "v3", image(layers("the newest base"), "newest"))
        runs = await builds.service.history(owner, definition.name)
        assert (runs[0].status, runs[0].started_by, runs[0].version) == ("queued", team.owner, "1")
        events = user.api.call("GET", f"/builds/{definition.name}/events")
        queued = [(e["actor"], e["detail"]["run_id"]) for e in events if e["kind"] == "rebuild.queued"]
        assert queued == [("dockyard (base updated)", runs[0].id)]
        # Another push while it is queued queues nothing more.
        with oci_as(server, team.owner, PASSWORD) as oci:
            push(oci, user, copy_name, "v4", image(layers("yet another base"), "another"))
        assert len(await builds.service.history(owner, definition.name)) == len(runs)
        await builds.run_next()
        assert (await builds.service.history(owner, definition.name))[0].status == "succeeded"
        before = len(await builds.service.history(owner, definition.name))
        # The built image copied under another name (its digest unchanged) was not built by that
        # name's definition: rebuilding the copy must not run the original's recipe.
        creds = f"{team.owner}:{PASSWORD}"
        current = user.version(definition.name, "1")["digest"]
        skopeo.copy(
            f"docker://{server.host}/{definition.name}:1",
            f"docker://{server.host}/{team.workspace}/tool-copy:1",
            extra=["--preserve-digests", "--src-creds", creds, "--dest-creds", creds],
        )
        assert user.wait_inspected(f"{team.workspace}/tool-copy", "1", current)["digest"] == current
        refused = user.http.post(f"/images/{team.workspace}/tool-copy/versions/1/rebuild")
        assert problem(refused, 404).endswith("was not built here: there is no build to run again")
        assert len(await builds.service.history(owner, definition.name)) == before
    assert base_name != copy_name
