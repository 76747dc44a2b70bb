"""A forced workspace deletion takes its build definitions with it, and the bytes they kept
outside the database too (#18): the uploaded contexts and the runs' logs are gone from the
server's storage once the deletion answered, measured on disk (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

from dockyard.builds.definitions import DefinitionInput
from tests.support.builds import Builds, Team, chunks, tar_of
from tests.support.identity import PASSWORD, Api
from tests.support.servers import RunningRegistry


def stored_bytes(paths: list[Path]) -> int:
    files = [f for p in paths for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file()]
    return sum(f.stat().st_size for f in files)


async def test_a_forced_workspace_delete_removes_its_build_contexts_and_logs(
    server: RunningRegistry, team: Team, builds: Builds
) -> None:
    owner = await builds.subject(team.owner)
    dockerfile = f"FROM {team.base}\nCOPY note.txt /note.txt\nRUN cat /note.txt\n"
    created = await builds.definitions.create(
        owner, team.workspace, "noted", DefinitionInput(dockerfile=dockerfile)
    )
    context = tar_of({"note.txt": (b"kept in the build context\n" * 100, 0o644)})
    await builds.definitions.upload_context(owner, created.name, chunks(context))
    runs = [await builds.build(owner, created.name, version) for version in ("1.0", "1.1")]
    assert [r.status for r in runs] == ["succeeded", "succeeded"], [r.reason for r in runs]

    storage = server.data_dir / "storage" / "builds"
    kept = [storage / "contexts" / str(created.id), *(storage / "logs" / f"{r.id}.log" for r in runs)]
    assert all(p.exists() for p in kept)
    before = stored_bytes(kept)
    assert before >= len(context)

    with Api.connect(server, team.owner, PASSWORD) as api:
        api.call("DELETE", f"/workspaces/{team.workspace}", 204, params={"force": "true"})
        assert api.http.get(f"/workspaces/{team.workspace}").status_code == 404

    assert [p for p in kept if p.exists()] == []
    assert stored_bytes(kept) == 0
