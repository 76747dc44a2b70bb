"""Builds (issue #6): Dockerfile images defined in Dockyard and built by buildah, pushed to
the registry, and pulled and run with podman.

Definitions are saved and builds started through the build services (the API comes
later), running in the test process on the same data and database as a real ``dockyard
serve`` (see tests.support.builds); the worker's jobs run with ``Worker.run_once()``.
Base images come from the busybox test image, pushed to the server first: builds pull
them from a private repository, signed in as the user who started the build.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from dockyard.auth.policy import Subject
from dockyard.auth.tables import refresh_tokens
from dockyard.builds.definitions import DefinitionChanges, DefinitionInput
from dockyard.builds.spec import GitSource
from dockyard.errors import Conflict, Forbidden, NotFound
from dockyard.jobs.queue import JobQueue
from tests.support.builds import (
    Builds,
    GitRepo,
    Team,
    chunks,
    in_process,
    pull_and_run,
    tar_of,
)
from tests.support.catalog import CatalogUser
from tests.support.clients import MANIFEST_ACCEPT, Podman
from tests.support.identity import ADMIN, ADMIN_PASSWORD, oci_as, start_token_dockyard
from tests.support.servers import RunningRegistry

pytestmark = pytest.mark.clients


async def local_definition(builds: Builds, actor: Subject, team: Team, label: str, body: str) -> str:
    definition = await builds.definitions.create(
        actor, team.workspace, label, DefinitionInput(dockerfile=f"FROM {team.base}\n{body}")
    )
    return definition.name


async def test_a_local_context_with_copy_and_run_is_built_pushed_and_runs(
    server: RunningRegistry, team: Team, builds: Builds, podman: Podman
) -> None:
    owner = await builds.subject(team.owner)
    dockerfile = (
        f"FROM {team.base}\n"
        "ARG GREETING=hello\n"
        "COPY greet.sh /usr/local/bin/greet\n"
        "COPY data/ /data/\n"
        'RUN /usr/local/bin/greet "$GREETING" > /greeting.txt && cat /data/note.txt >> /greeting.txt\n'
        'CMD ["/bin/cat", "/greeting.txt"]\n'
    )
    created = await builds.definitions.create(
        owner,
        team.workspace,
        "greeter",
        DefinitionInput(dockerfile=dockerfile, build_args={"GREETING": "bonjour"}, description="says hello"),
    )
    assert (created.name, created.status, created.created_by) == (
        f"{team.workspace}/greeter",
        "not_built",
        team.owner,
    )
    files = tar_of(
        {
            "greet.sh": (b'#!/bin/sh\necho "$1 from a script"\n', 0o755),
            "data/note.txt": (b"a note from the uploaded folder\n", 0o644),
        }
    )
    uploaded = await builds.definitions.upload_context(owner, created.name, chunks(files))
    assert uploaded.context_size == len(files)
    assert uploaded.content_hash != created.content_hash

    run = await builds.build(owner, created.name, "1.0")
    log = await builds.log(owner, run.id)
    assert run.status == "succeeded", f"{run.reason}\n{log}"
    assert run.digest is not None
    assert run.digest.startswith("sha256:")
    assert run.builder is not None
    assert run.builder.startswith("buildah ")
    assert (run.started_by, run.version, run.dockerfile) == (team.owner, "1.0", dockerfile)
    assert run.duration is not None
    assert run.log_bytes == len(log.encode())
    assert "STEP 5/6: RUN" in log
    assert f"pushed {server.host}/{created.name}:1.0@{run.digest}" in log

    async with builds.services.db.read() as conn:  # the build's own sign-in ended with it
        tokens = (
            await conn.execute(
                select(refresh_tokens.c.revoked_at, refresh_tokens.c.expires_at).where(
                    refresh_tokens.c.client_id == f"dockyard-build-{run.id}"
                )
            )
        ).all()
    assert len(tokens) == 1
    assert tokens[0][0] is not None
    assert tokens[0][1] < time.time() + 3600 + 700  # never longer than the build's time limit

    definition = await builds.service.definition(owner, created.name)
    assert definition.status == "built"
    assert definition.last_success is not None
    assert definition.last_success.id == run.id

    with CatalogUser.connect(server, team.owner) as user:
        version = user.wait_inspected(created.name, "1.0", run.digest)
        assert version["status"] == "available", version
        built = [e for e in user.events(created.name) if e["kind"] == "built"]
    assert len(built) == 1
    assert built[0]["version"] == "1.0"
    assert built[0]["actor"] == team.owner
    provenance = built[0]["detail"]
    assert provenance["run_id"] == run.id
    assert provenance["digest"] == run.digest
    assert provenance["dockerfile"] == dockerfile
    assert provenance["builder"] == run.builder
    assert provenance["source"] == "local"
    assert provenance["context_digest"] == uploaded.recipe.context_digest

    output = pull_and_run(podman, server, team.owner, f"{server.host}/{created.name}:1.0")
    assert output == "bonjour from a script\na note from the uploaded folder\n"


async def test_an_edit_marks_the_image_modified_until_it_is_built_again(team: Team, builds: Builds) -> None:
    owner, developer = await builds.subject(team.owner), await builds.subject(team.developer)
    name = await local_definition(builds, developer, team, "edited", "RUN echo one > /one.txt\n")
    assert (await builds.build(owner, name)).status == "succeeded"
    assert (await builds.service.definition(owner, name)).status == "built"

    await builds.definitions.update(owner, name, DefinitionChanges(description="only words"))
    assert (await builds.service.definition(owner, name)).status == "built"  # not part of the image

    changed = await builds.definitions.update(
        developer, name, DefinitionChanges(dockerfile=f"FROM {team.base}\nRUN echo two > /two.txt\n")
    )
    assert (changed.status, changed.updated_by, changed.revision) == ("modified", team.developer, 3)
    assert (await builds.service.definition(owner, name)).status == "modified"

    rebuilt = await builds.build(owner, name)
    assert rebuilt.status == "succeeded"
    definition = await builds.service.definition(owner, name)
    assert definition.status == "built"
    assert definition.last_success is not None
    assert definition.last_success.id == rebuilt.id

    history = list(reversed(await builds.definitions.history(owner, name)))
    assert [(e.kind, e.actor) for e in history] == [
        ("created", team.developer),
        ("build.started", team.owner),
        ("built", team.owner),
        ("modified", team.owner),
        ("modified", team.developer),
        ("build.started", team.owner),
        ("built", team.owner),
    ]
    assert history[4].detail["fields"] == ["dockerfile"]
    assert history[4].detail["changes"]["dockerfile"]["diff"].splitlines()[-2:] == [
        "-RUN echo one > /one.txt",
        "+RUN echo two > /two.txt",
    ]
    assert history[3].detail["changes"] == {"description": {"before": "", "after": "only words"}}
    assert [run.id for run in await builds.service.history(owner, name)] == [
        rebuilt.id,
        history[1].detail["run_id"],
    ]


async def test_a_git_repository_folder_at_an_older_commit(
    server: RunningRegistry, team: Team, builds: Builds, podman: Podman, tmp_path: Path
) -> None:
    owner = await builds.subject(team.owner)
    repo = GitRepo(tmp_path / "repo")
    dockerfile = f'FROM {team.base}\nCOPY message.txt /message.txt\nCMD ["/bin/cat", "/message.txt"]\n'
    first = repo.commit(
        {"README": "not the context\n", "tool/Dockerfile": dockerfile, "tool/message.txt": "first version\n"},
        "first",
    )
    second = repo.commit({"tool/message.txt": "second version\n"}, "second")
    definition = await builds.definitions.create(
        owner,
        team.workspace,
        "from-git",
        DefinitionInput(context="git", git=GitSource(repo.url, first, "tool")),
    )

    run = await builds.build(owner, definition.name, "old")
    assert run.status == "succeeded", f"{run.reason}\n{await builds.log(owner, run.id)}"
    assert (run.git_commit, run.dockerfile) == (first, dockerfile)
    assert run.source["git_ref"] == first
    assert run.source["git_directory"] == "tool"
    reference = f"{server.host}/{definition.name}:old"
    assert pull_and_run(podman, server, team.owner, reference) == "first version\n"

    moved = await builds.definitions.update(
        owner, definition.name, DefinitionChanges(git=GitSource(repo.url, "main", "tool"))
    )
    assert moved.status == "modified"
    newer = await builds.build(owner, definition.name, "new")
    assert newer.status == "succeeded"
    assert newer.git_commit == second
    assert (
        pull_and_run(podman, server, team.owner, f"{server.host}/{definition.name}:new") == "second version\n"
    )
    with CatalogUser.connect(server, team.owner) as user:
        user.wait_inspected(definition.name, "new", newer.digest)
        built = {e["version"]: e["detail"] for e in user.events(definition.name) if e["kind"] == "built"}
    assert built["old"]["git_commit"] == first
    assert built["new"]["git_commit"] == second
    assert built["new"]["git_url"] == repo.url
    assert built["new"]["git_ref"] == "main"


async def test_a_failing_build_is_failed_and_its_log_shows_the_step(
    server: RunningRegistry, team: Team, builds: Builds
) -> None:
    owner = await builds.subject(team.owner)
    name = await local_definition(
        builds, owner, team, "broken", "RUN echo first step works\nRUN echo about to fail && /bin/false\n"
    )
    run = await builds.build(owner, name)
    log = await builds.log(owner, run.id)
    assert run.status == "failed", log
    assert run.reason is not None
    assert "step 3/3: RUN echo about to fail && /bin/false" in run.reason, run.reason
    assert "STEP 3/3: RUN echo about to fail && /bin/false" in log
    assert "about to fail" in log
    assert "[dockyard] build failed" in log
    assert run.digest is None
    assert run.finished_at is not None
    assert (await builds.service.definition(owner, name)).status == "not_built"
    assert [e.kind for e in await builds.definitions.history(owner, name)][:1] == ["build.failed"]
    with CatalogUser.connect(server, team.owner) as user:
        assert user.http.get(f"/images/{name}").status_code == 404  # nothing was pushed


async def test_a_running_build_is_cancelled_and_its_processes_stopped(
    team: Team, builds: Builds, tmp_path: Path
) -> None:
    owner = await builds.subject(team.owner)
    name = await local_definition(
        builds, owner, team, "slow", "RUN echo sleeping && /bin/busybox sleep 600\n"
    )
    run = await builds.service.start(owner, name)
    worker = asyncio.create_task(builds.run_next())
    await builds.wait_log(owner, run.id, "sleeping")
    assert (await builds.service.run(owner, run.id)).status == "running"
    assert _processes_under(tmp_path / "builds"), "the build's processes should be running"

    requested = await builds.service.cancel(owner, run.id)
    assert requested.cancel_requested
    assert requested.cancelled_by == team.owner
    await worker
    ended = await builds.service.run(owner, run.id)
    log = await builds.log(owner, run.id)
    assert ended.status == "cancelled", f"{ended}\n{log}"
    assert f"[dockyard] cancelled by {team.owner}" in log
    assert _processes_under(tmp_path / "builds") == []
    assert list((tmp_path / "builds").iterdir()) == []  # the build's folder is gone
    assert [e.kind for e in await builds.definitions.history(owner, name)][:1] == ["build.cancelled"]


async def test_a_queued_build_is_cancelled_before_it_starts(team: Team, builds: Builds) -> None:
    owner = await builds.subject(team.owner)
    name = await local_definition(builds, owner, team, "queued", "RUN true\n")
    run = await builds.service.start(owner, name)
    cancelled = await builds.service.cancel(owner, run.id)
    assert cancelled.status == "cancelled"
    assert cancelled.started_at is None
    assert not await builds.worker.run_once()  # its job was cancelled too: nothing to run

    developer = await builds.subject(team.developer)
    with pytest.raises(Forbidden, match="maintainer"):
        await builds.definitions.delete(developer, name)
    await builds.definitions.delete(owner, name)
    with pytest.raises(NotFound):
        await builds.service.definition(owner, name)
    with pytest.raises(NotFound):
        await builds.service.run(owner, run.id)


async def test_only_workspace_owners_start_builds(team: Team, builds: Builds) -> None:
    owner = await builds.subject(team.owner)
    developer, reader = await builds.subject(team.developer), await builds.subject(team.reader)
    outsider, admin = await builds.subject(team.outsider), await builds.subject(ADMIN)
    name = await local_definition(builds, developer, team, "rules", "RUN true\n")
    await builds.definitions.update(developer, name, DefinitionChanges(description="developers may edit"))

    with pytest.raises(Forbidden) as refused:
        await builds.service.start(developer, name)
    message = str(refused.value)
    assert f"only owners of workspace {team.workspace!r}" in message, message
    assert team.owner in message, message
    with pytest.raises(Forbidden):
        await builds.service.start(reader, name)
    with pytest.raises(Forbidden):
        await builds.definitions.update(reader, name, DefinitionChanges(description="readers may not"))
    assert (await builds.service.definition(reader, name)).name == name  # but they may look
    with pytest.raises(NotFound):
        await builds.service.definition(outsider, name)
    with pytest.raises(NotFound):
        await builds.service.start(outsider, name)

    run = await builds.service.start(admin, name)  # admins count as owners
    with pytest.raises(Forbidden):
        await builds.service.cancel(developer, run.id)
    assert (await builds.service.cancel(owner, run.id)).status == "cancelled"
    assert not await builds.worker.run_once()

    with pytest.raises(Conflict):
        await builds.definitions.create(
            owner, team.workspace, "rules", DefinitionInput(dockerfile="FROM x\n")
        )


async def test_a_build_past_its_time_limit_is_stopped(
    server: RunningRegistry, team: Team, tmp_path: Path
) -> None:
    async with in_process(server, tmp_path / "builds", build_time_limit_seconds=5) as builds:
        owner = await builds.subject(team.owner)
        name = await local_definition(builds, owner, team, "too-slow", "RUN /bin/busybox sleep 600\n")
        run = await builds.build(owner, name)
    assert run.status == "failed"
    assert run.reason is not None
    assert "time limit of 5 seconds" in run.reason, run.reason
    assert _processes_under(tmp_path / "builds") == []


async def test_a_long_log_is_cut_at_its_limit_but_keeps_its_end(
    server: RunningRegistry, team: Team, tmp_path: Path
) -> None:
    async with in_process(server, tmp_path / "builds", build_log_max_bytes=4000) as builds:
        owner = await builds.subject(team.owner)
        loop = 'RUN i=0; while [ $i -lt 3000 ]; do echo "line $i"; i=$((i+1)); done\n'
        name = await local_definition(builds, owner, team, "chatty", loop)
        run = await builds.build(owner, name)
        log = await builds.log(owner, run.id)
    assert run.status == "succeeded", log
    assert "[dockyard] the log reached its limit of 4000 bytes" in log
    assert "line 2999\n" in log
    assert "line 1500\n" not in log
    assert log.rstrip().endswith("[dockyard] build succeeded: " + str(run.digest))


def _processes_under(folder: Path) -> list[int]:
    """Processes whose command line names ``folder`` (buildah runs with --root inside it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if str(folder).encode() in cmdline:
            found.append(int(entry.name))
    return found


def start_worker(server: RunningRegistry, build_dir: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """``dockyard worker`` on the server's data, building in ``build_dir``."""
    env = {
        **server.env,
        "DOCKYARD_BUILD_DIR": str(build_dir),
        "DOCKYARD_BUILD_GIT_PROTOCOLS": '["file"]',
    }
    with log_path.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "dockyard", "worker"], env=env, stdout=out, stderr=subprocess.STDOUT
        )


async def test_a_build_whose_worker_is_killed_runs_again_on_another_worker(
    server: RunningRegistry, team: Team, builds: Builds, tmp_path: Path, podman: Podman
) -> None:
    owner = await builds.subject(team.owner)
    repo = GitRepo(tmp_path / "repo")
    repo.commit(
        {"Dockerfile": f"FROM {team.base}\nRUN echo first attempt && /bin/busybox sleep 600\n"}, "slow"
    )
    definition = await builds.definitions.create(
        owner, team.workspace, "crash", DefinitionInput(context="git", git=GitSource(repo.url, "main"))
    )
    run = await builds.service.start(owner, definition.name)
    worker = start_worker(server, tmp_path / "builds", tmp_path / "worker.log")
    try:
        await builds.wait_log(owner, run.id, "first attempt")
    finally:
        worker.kill()  # SIGKILL: no shutdown code runs
        worker.wait()
    orphans = _processes_under(tmp_path / "builds")
    assert orphans, "buildah runs in its own session and outlives the worker"
    assert (await builds.service.run(owner, run.id)).status == "running"

    # The branch moves on while the build waits; the dead worker's lease runs out (the
    # clock is moved instead of waiting) and recovery queues the job again.
    second = repo.commit({"Dockerfile": f'FROM {team.base}\nCMD ["/bin/echo", "second attempt"]\n'}, "fast")
    assert await JobQueue(builds.services.db, clock=lambda: time.time() + 120).recover() == 1
    assert (await builds.service.run(owner, run.id)).status == "queued"

    await builds.run_next()
    ended = await builds.service.run(owner, run.id)
    log = await builds.log(owner, run.id)
    assert ended.status == "succeeded", f"{ended.reason}\n{log}"
    assert ended.attempt == 2
    assert ended.git_commit == second
    assert "[dockyard] attempt 2: the previous worker stopped; building again" in log
    assert log.index("first attempt") < log.index("attempt 2")
    assert _processes_under(tmp_path / "builds") == []  # the next build killed what was left
    assert [p.name for p in (tmp_path / "builds").iterdir()] == []
    reference = f"{server.host}/{definition.name}:latest"
    assert pull_and_run(podman, server, team.owner, reference) == "second attempt\n"


async def test_a_build_whose_last_attempt_is_lost_is_failed_not_stuck(team: Team, builds: Builds) -> None:
    owner = await builds.subject(team.owner)
    builds.service.limits = dataclasses.replace(builds.service.limits, max_attempts=1)
    name = await local_definition(builds, owner, team, "lost", "RUN true\n")
    run = await builds.service.start(owner, name)
    # A worker takes the job and vanishes before its handler records anything.
    taken = await builds.services.jobs.claim(["build"], "vanished-worker", 30.0)
    assert taken is not None
    assert taken.payload == {"run_id": run.id}
    assert await JobQueue(builds.services.db, clock=lambda: time.time() + 120).recover() == 1

    ended = await builds.service.run(owner, run.id)
    assert ended.status == "failed"
    assert ended.reason is not None
    assert "the worker stopped" in ended.reason, ended.reason
    assert (await builds.service.definition(owner, name)).status == "not_built"


async def test_a_build_is_also_pushed_to_an_external_registry_with_stored_credentials(
    team: Team, builds: Builds, tmp_path: Path
) -> None:
    # Another Dockyard stands in for the external registry: it refuses anonymous pushes.
    external = start_token_dockyard("sqlite", tmp_path / "external")
    try:
        owner = await builds.subject(team.owner)
        credentials = builds.services.verification.credentials
        await credentials.put(owner, team.workspace, external.host, ADMIN, ADMIN_PASSWORD)
        definition = await builds.definitions.create(
            owner,
            team.workspace,
            "mirrored",
            DefinitionInput(
                dockerfile=f"FROM {team.base}\nRUN echo mirrored > /m.txt\n",
                external_destination=f"{external.host}/mirror/tool",
            ),
        )
        assert definition.external_destination == f"{external.host}/mirror/tool"
        run = await builds.build(owner, definition.name, "2.0")
        assert run.status == "succeeded", f"{run.reason}\n{await builds.log(owner, run.id)}"
        assert [p["reference"] for p in run.pushed] == [
            f"{builds.server.host}/{definition.name}:2.0",
            f"{external.host}/mirror/tool:2.0",
        ]
        with oci_as(external, ADMIN, ADMIN_PASSWORD) as client:
            served = client.http.get("/v2/mirror/tool/manifests/2.0", headers={"Accept": MANIFEST_ACCEPT})
        assert served.status_code == 200
        assert served.headers["Docker-Content-Digest"] == run.pushed[1]["digest"]
    finally:
        external.stop()
