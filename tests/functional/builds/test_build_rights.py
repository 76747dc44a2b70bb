"""A definition read over /api/v1 says what its reader may not do to it (``refused``), in the
words the refused action itself answers with, so the web UI can disable SAVE, BUILD and
Delete with the reason instead of letting the click fail (issue 14, screens 6 and 7).

The server and team are those of the other build tests (see tests.support.builds).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.builds import Team
from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api
from tests.support.servers import RunningRegistry

pytestmark = pytest.mark.clients


def refusal(api: Api, method: str, path: str, **kwargs: Any) -> str:
    problem: dict[str, Any] = api.call(method, path, 403, **kwargs)
    detail: str = problem["detail"]
    return detail


def test_each_role_is_told_what_it_may_not_do_as_the_action_would_refuse_it(
    server: RunningRegistry, team: Team
) -> None:
    with Api.connect(server, team.developer, PASSWORD) as developer:
        body = {"workspace": team.workspace, "name": "rights", "dockerfile": f"FROM {team.base}\n"}
        created = developer.call("POST", "/builds", 201, json=body)
        name = created["name"]
        assert created["my_role"] == "developer"
        assert sorted(created["refused"]) == ["build", "delete"]
        assert refusal(developer, "POST", f"/builds/{name}/runs") == created["refused"]["build"]
        assert refusal(developer, "DELETE", f"/builds/{name}") == created["refused"]["delete"]
        assert team.owner in created["refused"]["build"]  # whom to ask
        # The listing says the same as the definition read alone.
        listed = developer.call("GET", f"/workspaces/{team.workspace}/builds")
        assert next(d for d in listed if d["name"] == name)["refused"] == created["refused"]

    with Api.connect(server, team.reader, PASSWORD) as reader:
        seen = reader.call("GET", f"/builds/{name}")
        assert seen["my_role"] == "reader"
        assert sorted(seen["refused"]) == ["build", "delete", "edit"]
        changes = {"description": "not mine to change"}
        assert refusal(reader, "PATCH", f"/builds/{name}", json=changes) == seen["refused"]["edit"]
        put = refusal(reader, "PUT", f"/builds/{name}/files/a.txt", content=b"a")
        assert put == seen["refused"]["edit"]

    for username, password in ((team.owner, PASSWORD), (ADMIN, ADMIN_PASSWORD)):
        with Api.connect(server, username, password) as api:
            seen = api.call("GET", f"/builds/{name}")
            assert (seen["my_role"], seen["refused"]) == ("owner", {}), username
    with Api.connect(server, team.owner, PASSWORD) as owner:
        owner.call("DELETE", f"/builds/{name}", 204)
