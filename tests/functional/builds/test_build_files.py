"""A local build context put together file by file over /api/v1 (issue #6: "a folder
uploaded as a tar or file by file"): files are added, replaced and removed one at a time,
the definition shows ``modified``, and a build of them runs with podman.

The server, team and in-process build services are set up as in test_builds (see
tests.support.builds).
"""

from __future__ import annotations

from typing import Any

import pytest

from dockyard.builds.definitions import DefinitionInput
from tests.support.builds import (
    Builds,
    Team,
    pull_and_run,
)
from tests.support.clients import Podman
from tests.support.identity import PASSWORD, Api
from tests.support.servers import RunningRegistry

pytestmark = pytest.mark.clients


SCRIPT = b'#!/bin/sh\necho "the script says: $(cat /etc/message.txt)"\n'


def files_of(api: Api, name: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = api.call("GET", f"/builds/{name}/files")
    return found


async def test_files_put_one_by_one_are_listed_built_and_run(
    server: RunningRegistry,
    team: Team,
    builds: Builds,
    podman: Podman,
) -> None:
    developer, owner = await builds.subject(team.developer), await builds.subject(team.owner)
    dockerfile = (
        f"FROM {team.base}\n"
        "COPY hello.sh /usr/local/bin/hello\n"
        "COPY conf/message.txt /etc/message.txt\n"
        'CMD ["/usr/local/bin/hello"]\n'
    )
    created = await builds.definitions.create(
        developer, team.workspace, "by-file", DefinitionInput(dockerfile=dockerfile)
    )
    name = created.name
    with Api.connect(server, team.developer, PASSWORD) as api:
        assert files_of(api, name) == []
        api.call("PUT", f"/builds/{name}/files/hello.sh", content=SCRIPT, params={"executable": "true"})
        put = api.call(
            "PUT", f"/builds/{name}/files/conf/message.txt", content=b"first\n", params={"mode": "0644"}
        )
        assert put["context_size"] > 0
        assert put["updated_by"] == team.developer
        assert files_of(api, name) == [
            {"path": "hello.sh", "size": len(SCRIPT), "mode": "0755", "kind": "file"},
            {"path": "conf/message.txt", "size": 6, "mode": "0644", "kind": "file"},
        ]

    run = await builds.build(owner, name, "1.0")
    assert run.status == "succeeded", f"{run.reason}\n{await builds.log(owner, run.id)}"
    assert (await builds.service.definition(owner, name)).status == "built"
    reference = f"{server.host}/{name}:1.0"
    assert pull_and_run(podman, server, team.owner, reference) == "the script says: first\n"

    with Api.connect(server, team.developer, PASSWORD) as api:
        replaced = api.call("PUT", f"/builds/{name}/files/conf/message.txt", content=b"second\n")
        assert replaced["status"] == "modified"
        again = api.call("PUT", f"/builds/{name}/files/conf/message.txt", content=b"second\n")
        assert again["revision"] == replaced["revision"]  # the same bytes change nothing
        events = api.call("GET", f"/builds/{name}/events")
        assert events[0]["kind"] == "modified"
        assert events[0]["actor"] == team.developer
        assert (events[0]["detail"]["file"], events[0]["detail"]["action"]) == (
            "conf/message.txt",
            "replaced",
        )
        assert events[0]["detail"]["fields"] == ["files"]

        # A folder named "files" inside the context is not mistaken for the end of the name.
        api.call("PUT", f"/builds/{name}/files/files/extra.txt", content=b"extra\n")
        assert [f["path"] for f in files_of(api, name)] == ["hello.sh", "conf/message.txt", "files/extra.txt"]

        removed = api.call("DELETE", f"/builds/{name}/files/conf/message.txt")
        assert removed["status"] == "modified"
        assert [f["path"] for f in files_of(api, name)] == ["hello.sh", "files/extra.txt"]
        assert api.call("GET", f"/builds/{name}/events")[0]["detail"]["action"] == "removed"
        gone = api.http.delete(f"/builds/{name}/files/conf/message.txt")
        assert gone.status_code == 404
        assert "conf/message.txt" in gone.json()["detail"]


async def test_unsafe_paths_modes_and_readers_are_refused(
    server: RunningRegistry,
    team: Team,
    builds: Builds,
) -> None:
    developer = await builds.subject(team.developer)
    created = await builds.definitions.create(
        developer, team.workspace, "guarded", DefinitionInput(dockerfile=f"FROM {team.base}\n")
    )
    name = created.name
    with Api.connect(server, team.developer, PASSWORD) as api:
        for path in ("%2E%2E/%2E%2E/etc/passwd", "sub/%2E%2E/%2E%2E/x", "/etc/passwd", "a%5Cb", "a%00b"):
            refused = api.http.put(f"/builds/{name}/files/{path}", content=b"x")
            assert refused.status_code == 422, (path, refused.text)
            assert refused.headers["content-type"].startswith("application/problem+json")
        too_long = api.http.put(f"/builds/{name}/files/{'a' * 600}", content=b"x")
        assert too_long.status_code == 422
        bad_mode = api.http.put(f"/builds/{name}/files/ok.txt", content=b"x", params={"mode": "4755"})
        assert bad_mode.status_code == 422
        assert "0755" in bad_mode.json()["detail"]
        assert files_of(api, name) == []  # nothing was written
        assert api.call("GET", f"/builds/{name}")["revision"] == created.revision

        api.call("PUT", f"/builds/{name}/files/dir/file.txt", content=b"x")
        folder = api.http.put(f"/builds/{name}/files/dir", content=b"x")
        assert folder.status_code == 409  # a folder is not replaced by a file
        under_file = api.http.put(f"/builds/{name}/files/dir/file.txt/inner", content=b"x")
        assert under_file.status_code == 409

    with Api.connect(server, team.reader, PASSWORD) as reader:
        assert [f["path"] for f in files_of(reader, name)] == ["dir/file.txt"]  # readers may look
        assert reader.http.put(f"/builds/{name}/files/x.txt", content=b"x").status_code == 403
        assert reader.http.delete(f"/builds/{name}/files/dir/file.txt").status_code == 403
    with Api.connect(server, team.outsider, PASSWORD) as outsider:
        assert outsider.http.get(f"/builds/{name}/files").status_code == 404
        assert outsider.http.put(f"/builds/{name}/files/x.txt", content=b"x").status_code == 404
