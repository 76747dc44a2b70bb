"""Builds: start (owners only), cancel, history, logs; and the ``build`` job handler that
runs a build on a worker.

Starting a build snapshots the definition into a ``build_runs`` row and queues a job
``build`` with ``{"run_id": ...}``; edits made afterwards do not change it. The handler
runs the builder with heartbeats (progress: bytes of log), then records the outcome: on
the run (status, duration, digest, commit, Dockerfile, builder), in the definition's
history, and, for a success, as a ``built`` event of the catalog image with the build's
provenance. The pushed version itself becomes ``available`` through the catalog's push
listener, like any push.

A build that fails is a job that succeeded (its failure is recorded; retrying would fail
again). Only a worker that stops mid-build makes the job run again (a new attempt), and
if it stops on the last attempt the run is marked failed when next read (``settle``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from dockyard.auth.policy import Subject
from dockyard.builds import runs
from dockyard.builds.builder import Builder, BuildFailed, BuildResult, BuildSpec, RegistryLogin
from dockyard.builds.contexts import context_path
from dockyard.builds.definitions import BuildDefinitions, load, record_event
from dockyard.builds.files import ContextFiles
from dockyard.builds.history import without_userinfo
from dockyard.builds.logins import InternalLogins
from dockyard.builds.logs import LogHub, RunLog, read_log
from dockyard.builds.rights import BUILD, NEEDED, owners_of, owners_only
from dockyard.builds.spec import LOCAL, Recipe, check_version
from dockyard.builds.tables import build_runs
from dockyard.builds.targets import Planned, PushTarget, plan, results_of, summary
from dockyard.builds.views import CANCELLED, FAILED, FINISHED, SUCCEEDED, DefinitionView, RunView, recipe_of
from dockyard.catalog.chains import from_reference
from dockyard.catalog.lineage import Lineage
from dockyard.catalog.service import create_image
from dockyard.catalog.service import record_event as record_image_event
from dockyard.catalog.tables import images
from dockyard.catalog.views import INTERNAL
from dockyard.db.engine import Connection, Database
from dockyard.errors import Conflict, Forbidden, Invalid, NotFound
from dockyard.jobs.queue import JobQueue
from dockyard.jobs.worker import JobCancelled, JobContext
from dockyard.oci.reference import ReferenceError, parse_reference
from dockyard.outbound import OutboundRefused, loopback_registry, split_host_port
from dockyard.storage.base import StorageDriver
from dockyard.upstream.credentials import CredentialStore
from dockyard.upstream.profiles import Profiles
from dockyard.upstream.results import Failed

log = logging.getLogger("dockyard.builds")


JOB_KIND = "build"


@dataclass(frozen=True)
class BuildLimits:
    time_limit_seconds: float = 3600.0
    log_max_bytes: int = 16 << 20
    heartbeat_seconds: float = 2.0  # how often a build reports progress (and learns of a cancel)
    max_attempts: int = 2  # runs of a build's job lost to stopped workers before it fails


def _same_registry(a: str, b: str) -> bool:
    """Whether two registry hosts name the same registry (loopback names alike on one port)."""
    a, b = a.lower(), b.lower()
    if a == b:
        return True
    return split_host_port(a)[1] == split_host_port(b)[1] and loopback_registry(a) and loopback_registry(b)


class BuildService:
    def __init__(
        self,
        db: Database,
        storage: StorageDriver,
        queue: JobQueue,
        builder: Builder,
        definitions: BuildDefinitions,
        logins: InternalLogins,
        credentials: CredentialStore,
        limits: BuildLimits,
        insecure_registries: list[str],
        hub: LogHub | None = None,
        *,
        profiles: Profiles,
    ) -> None:
        self.db = db
        self.storage = storage
        self.queue = queue
        self.builder = builder
        self.definitions = definitions
        self.files = ContextFiles(definitions)  # a local context edited file by file
        self.logins = logins
        self.credentials = credentials
        self.profiles = profiles  # push targets reach their registries through these
        self.limits = limits
        self.insecure_registries = insecure_registries
        self.hub = hub or LogHub()
        self.lineage: Lineage | None = None  # told what each successful run was built FROM

    # --- starting and cancelling -----------------------------------------------------

    async def start(self, actor: Subject, name: str, version: str | None = None) -> RunView:
        """Queue a build of the definition as it is now (the workspace's owners only)."""
        async with self.db.write() as conn:
            m, role = await load(conn, actor, name, "reader")
            if role != NEEDED[BUILD]:
                raise Forbidden(await self._owners_only(conn, m, "start builds of"))
            run_id = await self.create_run(
                conn, m, version, actor.name, actor.id if actor.kind == "user" else None
            )
        await self.enqueue_run(run_id)
        return await self.run(actor, run_id)

    async def create_run(
        self, conn: Connection, m: Any, version: str | None, started_by: str, started_by_id: int | None
    ) -> int:
        """A queued run of the definition row ``m`` as it is now (the caller checked who may)."""
        recipe = recipe_of(m)
        if recipe.context == LOCAL and not recipe.dockerfile:
            raise Invalid("the definition has no Dockerfile yet")
        tag = check_version(version or m["version"])
        spec = {
            "recipe": recipe.as_json(),
            "repository": m["name"],
            "workspace_id": m["workspace_id"],
            "external_destination": m["external_destination"],
            "push_targets": json.loads(m["push_targets"]),
        }
        run_id = await runs.create(
            conn, m["id"], version=tag, content_hash=m["content_hash"], spec=spec,
            started_by=started_by, started_by_id=started_by_id,
        )  # fmt: skip
        await record_event(conn, m["id"], started_by, "build.started", run_id=run_id, version=tag)
        return run_id

    async def enqueue_run(self, run_id: int) -> None:
        """Queue the job of a run :meth:`create_run` made (committed)."""
        try:
            job_id = await self.queue.enqueue(
                JOB_KIND,
                {"run_id": run_id},
                max_attempts=self.limits.max_attempts,
                dedupe_key=f"build-{run_id}",
            )
        except Exception:
            await runs.finish(self.db, run_id, FAILED, reason="the build could not be queued")
            raise
        await runs.set_job(self.db, run_id, job_id)

    async def _owners_only(self, conn: Connection, m: Any, what: str) -> str:
        owners = await owners_of(conn, m["workspace_id"])
        return owners_only(m["workspace_name"], m["name"], owners, what)

    async def cancel(self, actor: Subject, run_id: int) -> RunView:
        async with self.db.write() as conn:
            m = await self._run_row(conn, actor, run_id)
            definition, role = await load(conn, actor, m["image"], "reader")
            if role != NEEDED[BUILD]:
                raise Forbidden(await self._owners_only(conn, definition, "cancel builds of"))
            if m["status"] in FINISHED:
                raise Conflict(f"build {run_id} already ended ({m['status']})")
            await runs.request_cancel(conn, run_id, actor.name)
        if m["job_id"] is not None:
            await self.queue.request_cancel(m["job_id"])
        queued = m["status"] == "queued" or m["job_id"] is None
        reason = f"cancelled by {actor.name} before it started"
        if queued and await runs.finish(self.db, run_id, CANCELLED, reason=reason):
            await self._history(m, actor.name, "build.cancelled", run_id=run_id)
        return await self.run(actor, run_id)

    # --- reading ----------------------------------------------------------------------

    async def _run_row(self, conn: Connection, actor: Subject, run_id: int) -> Any:
        m = await runs.row(conn, run_id)
        if m is None:
            raise NotFound(f"build {run_id} not found")
        try:
            await load(conn, actor, m["image"], "reader")
        except NotFound:
            raise NotFound(f"build {run_id} not found") from None
        return m

    async def run(self, actor: Subject, run_id: int) -> RunView:
        async with self.db.read() as conn:
            m = await self._run_row(conn, actor, run_id)
        if await runs.settle(self.db, self.queue, [m]):
            async with self.db.read() as conn:
                m = await runs.row(conn, run_id)
        return runs.view(m)

    async def history(self, actor: Subject, name: str, limit: int = 50) -> list[RunView]:
        """The definition's builds, newest first."""
        for _ in range(2):
            async with self.db.read() as conn:
                definition, _ = await load(conn, actor, name, "reader")
                rows = (
                    (
                        await conn.execute(
                            runs.select_runs()
                            .where(build_runs.c.definition_id == definition["id"])
                            .order_by(build_runs.c.id.desc())
                            .limit(limit)
                        )
                    )
                    .mappings()
                    .all()
                )
            if not await runs.settle(self.db, self.queue, list(rows)):
                break
        return [runs.view(m) for m in rows]

    async def definition(self, actor: Subject, name: str) -> DefinitionView:
        """The definition with its status, after settling runs whose worker is gone."""
        await self.history(actor, name, limit=5)
        return await self.definitions.get(actor, name)

    async def log(self, actor: Subject, run_id: int, offset: int = 0, limit: int | None = None) -> bytes:
        async with self.db.read() as conn:
            await self._run_row(conn, actor, run_id)
        return await read_log(self.storage, run_id, offset, limit)

    async def follow(
        self, actor: Subject, run_id: int, offset: int = 0, poll: float = 1.0
    ) -> AsyncIterator[bytes]:
        """The log from ``offset`` as it grows, until the build has ended and all was read."""
        run = await self.run(actor, run_id)
        while True:
            data = await read_log(self.storage, run_id, offset)
            if data:
                offset += len(data)
                yield data
                continue
            if run.finished:
                return
            await self.hub.wait(run_id, poll)
            run = await self.run(actor, run_id)

    # --- the job handler --------------------------------------------------------------

    async def handle(self, ctx: JobContext) -> None:
        run_id = int(ctx.job.payload["run_id"])
        m = await runs.begin(self.db, run_id)
        if m is None:
            return  # it ended before it started (cancelled while queued)
        sink = await RunLog(self.storage, self.hub, run_id, self.limits.log_max_bytes).open(
            fresh=m["attempt"] == 1
        )
        if m["attempt"] > 1:
            await sink.write(
                f"[dockyard] attempt {m['attempt']}: the previous worker stopped; building again"
            )
        login: RegistryLogin | None = None
        try:
            try:
                login = await self.logins.issue(
                    m["started_by_id"], run_id, time.time() + self.limits.time_limit_seconds + 600
                )
                spec, planned = await self._spec(m, login)
                result = await self.builder.build(spec, sink, self._heartbeat(ctx, sink))
                pushes = results_of(planned, result.targets)
            except BuildFailed as exc:
                await sink.write(f"[dockyard] build failed: {exc}")
                await self._failed(m, exc)
                return
            except (JobCancelled, asyncio.CancelledError):
                await self._interrupted(ctx, m, sink)
                raise
            except Exception as exc:
                log.exception("build %s failed unexpectedly", run_id)
                await sink.write(f"[dockyard] build failed: internal error: {exc}")
                await self._failed(m, BuildFailed(f"internal error: {exc}"))
                return
            for failed in (r for r in pushes if not r["ok"]):
                await sink.write(f"[dockyard] push target failed ({failed['reason']}): {failed['message']}")
            await sink.write(f"[dockyard] build succeeded: {result.digest}")
            await self._succeeded(m, result, pushes)
        finally:
            await asyncio.shield(self._close(run_id, sink, login))

    async def _close(self, run_id: int, sink: RunLog, login: RegistryLogin | None) -> None:
        try:
            await sink.close()
            await runs.set_log_bytes(self.db, run_id, sink.size)
        finally:
            if login is not None:
                await self.logins.revoke(login)

    def _heartbeat(self, ctx: JobContext, sink: RunLog) -> Any:
        last = time.monotonic()

        async def cancelled() -> None:
            nonlocal last
            if ctx.cancelled or time.monotonic() - last >= self.limits.heartbeat_seconds:
                last = time.monotonic()
                await ctx.heartbeat({"log_bytes": sink.size})

        return cancelled

    async def _spec(self, m: Any, login: RegistryLogin | None) -> tuple[BuildSpec, list[Planned]]:
        spec = json.loads(m["spec"])
        recipe = Recipe.from_json(spec["recipe"])
        destinations = [f"{self.logins.registry}/{spec['repository']}:{m['version']}"]
        logins = [login] if login is not None else []
        insecure = list(self.insecure_registries)
        if self.logins.insecure:
            insecure.append(self.logins.registry)
        external = spec.get("external_destination")
        if external:
            try:
                ref = parse_reference(external)
            except ReferenceError as exc:
                raise BuildFailed(f"the external destination is not valid: {exc}") from None
            if loopback_registry(ref.registry):
                insecure.append(ref.registry)  # as the catalog verifies them: plain HTTP
            await self._may_push(ref.api_host, plain=ref.api_host in insecure)
            destinations.append(f"{ref.name}:{m['version']}")
            found = await self.credentials.lookup(spec["workspace_id"], ref.registry)
            if found is not None:
                logins.append(RegistryLogin(ref.registry, found[0], secret=found[1]))
        planned = [
            await self._plan(spec["workspace_id"], PushTarget(**t), m) for t in spec.get("push_targets", [])
        ]
        for target in planned:
            if target.login is not None and target.login.registry not in {x.registry for x in logins}:
                logins.append(target.login)  # a registry already signed in to keeps its login
        files = None
        if recipe.context == LOCAL and recipe.context_digest:
            path = context_path(m["definition_id"], recipe.context_digest)

            def files() -> AsyncIterator[bytes]:
                return self.storage.reader(path)

        return BuildSpec(
            run_id=m["id"],
            recipe=recipe,
            destinations=destinations,
            files=files,
            logins=logins,
            insecure_registries=insecure,
            time_limit=self.limits.time_limit_seconds,
            targets=[target.push for target in planned if target.push is not None],
        ), planned

    async def _plan(self, workspace_id: int, target: PushTarget, m: Any) -> Planned:
        if _same_registry(target.profile, self.logins.registry):
            # The build is signed in to this Dockyard as whoever builds (the admin in basic
            # mode): a target here would push with that login into any workspace. Builds put
            # their image here already; a copy in another workspace is pushed there by its members.
            here = Failed(
                "refused", f"{target.profile} is this Dockyard: a push target names another registry"
            )
            return Planned(target, target.reference(m["version"]), failure=here)
        planned = await plan(self.profiles, workspace_id, target, m["version"])
        if planned.push is None:
            return planned
        try:
            await self._may_push(target.profile, plain=planned.push.insecure)
        except BuildFailed as exc:
            refused = Failed("refused", str(exc), profile=planned.profile)
            return dataclasses.replace(planned, push=None, login=None, failure=refused)
        return planned

    async def _may_push(self, registry: str, *, plain: bool) -> None:
        """Refuse a push the outbound policy refuses. buildah resolves the name again itself: a
        name whose DNS answer changes in between is not caught here (a network sandbox is)."""
        host, port = split_host_port(registry)
        try:
            await self.definitions.outbound.addresses(host, port or (80 if plain else 443))
        except OutboundRefused as exc:
            raise BuildFailed(f"the push to {registry} is refused: {exc.message}") from None
        except OSError:
            pass  # buildah reports the name that does not resolve

    async def _interrupted(self, ctx: JobContext, m: Any, sink: RunLog) -> None:
        reason = ctx.reason
        if reason == "cancel":
            async with self.db.read() as conn:
                now = await runs.row(conn, m["id"])
            who = (now["cancelled_by"] if now is not None else None) or "a cancel of the job"
            await sink.write(f"[dockyard] cancelled by {who}")
            if await runs.finish(self.db, m["id"], CANCELLED, reason=f"cancelled by {who}"):
                await self._history(m, who, "build.cancelled", run_id=m["id"])
        elif reason == "shutdown":
            await sink.write("[dockyard] the worker is stopping; the build goes back to the queue")
            await runs.requeue(self.db, m["id"])
        else:
            await sink.write("[dockyard] this worker lost the build (its lease expired); it stops here")

    async def _failed(self, m: Any, exc: BuildFailed) -> None:
        values: dict[str, Any] = {"reason": str(exc), "builder": await self._builder_name()}
        if exc.pushed:
            values.update(digest=exc.pushed[0].digest, pushed=[p.__dict__ for p in exc.pushed])
        if exc.git_commit:
            values["git_commit"] = exc.git_commit
        if exc.dockerfile is not None:
            values["dockerfile"] = exc.dockerfile
        if await runs.finish(self.db, m["id"], FAILED, **values):
            await self._history(m, m["started_by"], "build.failed", run_id=m["id"], reason=str(exc))

    async def _builder_name(self) -> str | None:
        try:
            return await self.builder.version()
        except BuildFailed:
            return None

    async def _succeeded(self, m: Any, result: BuildResult, pushes: list[dict[str, Any]]) -> None:
        spec = json.loads(m["spec"])
        recipe = Recipe.from_json(spec["recipe"])
        provenance: dict[str, Any] = {
            "run_id": m["id"],
            "digest": result.digest,
            "builder": result.builder,
            "started_by": m["started_by"],
            "source": recipe.context,
            "platform": recipe.platform,
            "pushed": [p.reference for p in result.pushed],
            "dockerfile": result.dockerfile,
        }
        if recipe.git is not None:
            provenance.update(
                git_url=without_userinfo(recipe.git.url), git_ref=recipe.git.ref, git_commit=result.git_commit
            )
            provenance.update(git_directory=recipe.git.directory)
        else:
            provenance["context_digest"] = recipe.context_digest
        # One transaction: whoever sees the run succeeded sees the image's and the definition's
        # "built" records too (a client following the run reads the history next).
        async with self.db.write() as conn:
            ended = await runs.finish_in(
                conn,
                m["id"],
                SUCCEEDED,
                reason=summary(pushes),
                push_results=json.dumps(pushes),
                digest=result.digest,
                pushed=[p.__dict__ for p in result.pushed],
                git_commit=result.git_commit,
                dockerfile=result.dockerfile,
                builder=result.builder,
            )
            if not ended:
                return
            image = (
                await conn.execute(select(images.c.id).where(images.c.name == spec["repository"]))
            ).first()
            image_id = (
                image[0]
                if image is not None
                else await create_image(
                    conn, spec["workspace_id"], spec["repository"], m["started_by"], INTERNAL, time.time()
                )
            )
            # The version's row first (note_built_from locks it), then the image's search document
            # (the event refreshes it): the order the version's inspection takes them in, so the two
            # never wait on each other (PostgreSQL found the other order deadlocked).
            base = from_reference(result.dockerfile or "", recipe.target)
            if self.lineage is not None and base is not None:
                await self.lineage.note_built_from(conn, image_id, m["version"], result.digest, base)
            await record_image_event(conn, image_id, m["started_by"], "built", m["version"], **provenance)
            await record_event(
                conn, m["definition_id"], m["started_by"], "built", run_id=m["id"], digest=result.digest,
                version=m["version"], content_hash=m["content_hash"],
                push_targets=[{k: r.get(k) for k in ("reference", "ok", "digest", "reason")} for r in pushes],
            )  # fmt: skip

    async def _history(self, m: Any, actor: str, kind: str, **detail: Any) -> None:
        async with self.db.write() as conn:
            await record_event(conn, m["definition_id"], actor, kind, **detail)
