"""Builds that reach other registries: where the worker's outbound policy allows, checked when
they run; and push targets (issue #16, part 6), other registries a definition names through
registry profiles of its own workspace (platform-wide ones serve pulls only), each push's
result on the run.

Push targets: Debian's ``docker-registry`` behind Basic auth stands in for the other registry.
The API test checks who may set targets and what is refused (problem+json 422); the build test
runs buildah and pulls the pushed image back from the other registry with skopeo.

Outbound policy:

The definitions are saved on the module's server, which allows loopback (as the tests'
servers do); the build runs on a worker without that allowance (an admin withdrew it since,
or the name now resolves elsewhere). The clone and the push are refused before any
connection: the canary they name sees none.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from dockyard.builds.definitions import DefinitionInput
from dockyard.builds.targets import MAX_TARGETS, PushTarget
from dockyard.upstream.credentials import ProfileSettings
from tests.support.builds import Builds, Team, in_process
from tests.support.catalog import new_user
from tests.support.clients import Skopeo
from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api, unique
from tests.support.outbound import canary
from tests.support.servers import RunningRegistry
from tests.support.upstreams import closed_port, private_ca_certificates, start_upstream_registry

pytestmark = pytest.mark.clients

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
            # A push target: the build succeeds, its push there is refused (and recorded).
            api.call("PUT", f"/workspaces/{owner}/registries", json={"registry": target.host})
            targeted = {
                "dockerfile": "FROM scratch\n",
                "push_targets": [{"profile": target.host, "repository": "m/t"}],
            }
            api.call("POST", "/builds", 201, json={"workspace": owner, "name": "targeted", **targeted})

        async with in_process(
            server, tmp_path / "builds", outbound_allow=[], build_git_protocols=["http"]
        ) as builds:
            actor = await builds.subject(owner)
            cloned = await builds.build(actor, f"{owner}/cloned")
            clone_log = await builds.log(actor, cloned.id)
            pushed_run = await builds.build(actor, f"{owner}/pushed")
            targeted_run = await builds.build(actor, f"{owner}/targeted")

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
    assert targeted_run.status == "succeeded", targeted_run.reason
    (refused,) = targeted_run.push_results
    assert (refused["ok"], refused["reason"], refused["digest"]) == (False, "refused", None)
    assert refused["message"] == (
        f"the push to {target.host} is refused: destination 127.0.0.1 is a loopback address, {NOT_ALLOWED}"
    )


def problem(api: Api, method: str, path: str, expect: int, **kwargs: Any) -> dict[str, Any]:
    response = api.http.request(method, path, **kwargs)
    assert response.status_code == expect, response.text[:500]
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    found: dict[str, Any] = response.json()
    return found


def test_push_targets_need_a_profile_of_the_workspace_itself(server: RunningRegistry, team: Team) -> None:
    mine, platform, theirs = f"mine-{unique('r')}.example:5000", "platform.example", "theirs.example"
    with Api.connect(server, ADMIN, ADMIN_PASSWORD) as admin:
        admin.call("PUT", "/registries", json={"registry": platform})
        stranger = new_user(admin, "stranger")
    with Api.connect(server, stranger, PASSWORD) as api:
        other = unique("other")
        api.create_workspace(other)
        api.call(
            "PUT",
            f"/workspaces/{other}/registries",
            json={"registry": theirs, "username": "u", "secret": "s"},
        )
    with Api.connect(server, team.owner, PASSWORD) as owner:
        owner.call(
            "PUT",
            f"/workspaces/{team.workspace}/registries",
            json={"registry": mine, "username": "u", "secret": "s"},
        )

    with Api.connect(server, team.developer, PASSWORD) as developer:
        body = {"workspace": team.workspace, "name": unique("targets"), "dockerfile": f"FROM {team.base}\n"}
        refused = problem(
            developer,
            "POST",
            "/builds",
            422,
            json={**body, "push_targets": [{"profile": theirs, "repository": "x/y"}]},
        )
        assert f"no registry profile for {theirs} in workspace {team.workspace!r}" in refused["detail"]
        # A platform-wide profile holds an administrator's credentials, kept for pulls: no pushes.
        platform_target = [{"profile": platform, "repository": "org/tool"}]
        refused = problem(developer, "POST", "/builds", 422, json={**body, "push_targets": platform_target})
        assert "platform-wide profiles serve pulls only" in refused["detail"]
        targets = [
            {"profile": mine, "repository": "mirror/tool", "tag": "stable"},
            {"profile": mine, "repository": "org/tool", "tag": None},
        ]
        created = developer.call("POST", "/builds", 201, json={**body, "push_targets": targets})
        assert created["push_targets"] == targets
        name = created["name"]
        for bad, said in (
            ([{"profile": mine, "repository": "Mirror/Tool"}], "invalid repository name"),
            ([{"profile": mine, "repository": "m/t", "tag": "-x"}], "invalid tag"),
            ([{"profile": "no host here", "repository": "m/t"}], "not a registry host"),
            ([{"profile": mine, "repository": "m/t"}] * 2, "given twice"),
            ([{"profile": theirs, "repository": "m/t"}], "no registry profile"),
        ):
            assert (
                said
                in problem(developer, "PATCH", f"/builds/{name}", 422, json={"push_targets": bad})["detail"]
            )
        too_many = [{"profile": mine, "repository": f"m/t{i}"} for i in range(MAX_TARGETS + 1)]
        problem(developer, "PATCH", f"/builds/{name}", 422, json={"push_targets": too_many})
        problem(
            developer,
            "PATCH",
            f"/builds/{name}",
            422,
            json={"push_targets": [{"profile": mine, "repository": "m" * 5000}]},
        )
        assert developer.call("GET", f"/builds/{name}")["push_targets"] == targets  # nothing changed

        cleared = developer.call("PATCH", f"/builds/{name}", json={"push_targets": []})
        assert cleared["push_targets"] == []
        assert cleared["status"] == "not_built"
        modified = developer.call("GET", f"/builds/{name}/events")[0]
        assert modified["kind"] == "modified"
        assert modified["detail"]["changes"]["push_targets"] == {"before": targets, "after": []}

    with Api.connect(server, team.reader, PASSWORD) as reader:
        problem(reader, "PATCH", f"/builds/{name}", 403, json={"push_targets": targets})
    with Api.connect(server, team.outsider, PASSWORD) as outsider:
        problem(outsider, "PATCH", f"/builds/{name}", 404, json={"push_targets": targets})


async def test_a_build_goes_to_each_target_and_a_failed_target_does_not_fail_it(
    team: Team, builds: Builds, tmp_path: Path
) -> None:
    good = start_upstream_registry(tmp_path / "good", {"pusher": "right-secret"})
    locked = start_upstream_registry(tmp_path / "locked", {"pusher": "other-secret"})
    stopped = f"127.0.0.1:{closed_port()}"
    cert, key, ca_pem = private_ca_certificates(tmp_path / "certs")
    secure = start_upstream_registry(tmp_path / "secure", tls=(cert, key))
    try:
        owner = await builds.subject(team.owner)
        credentials = builds.services.verification.credentials
        await credentials.put(owner, team.workspace, good.host, "pusher", "right-secret")
        await credentials.put(owner, team.workspace, locked.host, "pusher", "wrong-secret")
        await credentials.put(owner, team.workspace, stopped, "", "")
        https = ProfileSettings(plain_http=False, ca_bundle=ca_pem)  # TLS with a private CA
        await credentials.put(owner, team.workspace, secure.host, "", "", settings=https)
        here = builds.server.host.replace("127.0.0.1", "localhost")  # this Dockyard, by another name
        await credentials.put(owner, team.workspace, here, "", "")
        definition = await builds.definitions.create(
            owner,
            team.workspace,
            unique("targeted"),
            DefinitionInput(
                dockerfile=f"FROM {team.base}\nRUN echo targeted > /t.txt\n",
                push_targets=(
                    PushTarget(good.host, "mirror/tool"),
                    PushTarget(locked.host, "mirror/tool", "kept"),
                    PushTarget(stopped, "mirror/tool"),
                    PushTarget(secure.host, "mirror/tool"),
                    PushTarget(here, f"{team.outsider}/tool"),  # another user's workspace
                ),
            ),
        )
        run = await builds.build(owner, definition.name, "2.0")
        log = await builds.log(owner, run.id)
        assert run.status == "succeeded", f"{run.reason}\n{log}"
        assert run.pushed == [
            {"reference": f"{builds.server.host}/{definition.name}:2.0", "digest": run.digest}
        ]
        first, second, third, fourth, fifth = run.push_results
        assert (first["reference"], first["ok"]) == (f"{good.host}/mirror/tool:2.0", True), first
        assert first["profile"].startswith(f"{good.host} (workspace ")
        assert (second["reference"], second["ok"], second["reason"]) == (
            f"{locked.host}/mirror/tool:kept",
            False,
            "unauthorized",
        ), second
        assert second["profile"] is not None
        assert second["profile"] in second["message"]
        assert (third["ok"], third["reason"], third["detail"]) == (False, "unreachable", "connect"), third
        assert (fourth["reference"], fourth["ok"]) == (f"{secure.host}/mirror/tool:2.0", True), fourth
        assert fourth["digest"] == first["digest"]  # the same image, through TLS trusting the CA
        # Not into this Dockyard itself: the build's own login would push into any workspace.
        assert (fifth["ok"], fifth["reason"]) == (False, "refused"), fifth
        assert "is this Dockyard" in fifth["message"], fifth
        assert run.reason is not None
        assert "3 of 5 push targets failed" in run.reason
        assert "push target failed (unauthorized)" in log

        # Pulled back from the other registry: the very image pushed there.
        skopeo = Skopeo(tmp_path / "skopeo")
        pulled = tmp_path / "pulled"
        skopeo.copy(
            f"docker://{first['reference']}", f"dir:{pulled}", extra=["--src-creds", "pusher:right-secret"]
        )
        manifest = (pulled / "manifest.json").read_bytes()
        assert f"sha256:{hashlib.sha256(manifest).hexdigest()}" == first["digest"]
        # The history says so too.
        built = (await builds.definitions.history(owner, definition.name))[0]
        assert built.kind == "built"
        assert [t["ok"] for t in built.detail["push_targets"]] == [True, False, False, True, False]
    finally:
        good.stop()
        locked.stop()
        secure.stop()
