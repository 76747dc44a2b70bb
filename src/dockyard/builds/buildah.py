"""The buildah builder: ``buildah bud`` with RUN steps confined by runc (namespaces of
their own, a minimal /dev, the network the definition asks for; see :mod:`.sandbox`), then
``buildah push`` to each destination.

Every build gets a folder of its own under the worker's build folder, holding the
context, the configuration buildah reads (containers.conf, registries.conf, policy.json,
storage.conf, the auth file, mode 0600) and the image storage (vfs driver), plus a short
run root in /tmp. The folder is removed when the build ends, whatever the outcome: no
image or credential outlives its build, and a base image pulled with one user's rights is
never reused by another's build (the price: base images are pulled for every build).

Credentials reach buildah only through the auth file, never on a command line. Plain-HTTP
registries (this Dockyard on loopback, those listed in settings) are marked ``insecure``
in registries.conf rather than turning TLS verification off for every registry.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import logging
import os
import shutil
import tempfile
import uuid
from pathlib import Path

from dockyard.builds import reaper
from dockyard.builds.builder import (
    BuildFailed,
    BuildResult,
    BuildSpec,
    Cancelled,
    LogSink,
    Pushed,
    RegistryLogin,
    TargetPushed,
)
from dockyard.builds.contexts import unpack
from dockyard.builds.gitsource import checkout
from dockyard.builds.process import Deadline, run_captured, run_logged
from dockyard.builds.sandbox import isolation_args, run_network
from dockyard.builds.spec import EGRESS, GIT
from dockyard.outbound import OutboundPolicy

CONTAINERS_CONF = """\
# Written by Dockyard for one build. RUN steps run with runc: crun cannot run containers
# on hosts with hybrid cgroups; runc with cgroupfs can. Lower ulimits than the host's hard limit.
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""
logger = logging.getLogger("dockyard.builds")
POLICY_JSON = '{"default": [{"type": "insecureAcceptAnything"}]}\n'


class _StepTracker:
    """Passes lines on and remembers the last ``STEP n/m: ...`` and error line, for the reason."""

    def __init__(self, sink: LogSink) -> None:
        self.sink = sink
        self.step: str | None = None
        self.error: str | None = None

    async def write(self, line: str) -> None:
        if line.startswith("STEP "):
            self.step = line[5:].strip()
        elif "level=error msg=" in line:
            self.error = line.split("level=error msg=", 1)[1].strip().strip('"')
        elif line.lower().startswith("error"):
            self.error = line.strip()
        await self.sink.write(line)


class _ErrorLines:
    """Passes lines on and keeps the last few that tell of an error (a failed push's reason)."""

    def __init__(self, sink: LogSink) -> None:
        self.sink = sink
        self.lines: list[str] = []

    async def write(self, line: str) -> None:
        lowered = line.lower()
        if "error" in lowered or "level=warn" in lowered:
            self.lines = [*self.lines[-3:], line.strip()]
        await self.sink.write(line)

    def text(self) -> str:
        return "\n".join(self.lines)


class BuildahBuilder:
    def __init__(
        self,
        work_dir: Path,
        *,
        git_protocols: list[str],
        outbound: OutboundPolicy,
        binary: str = "buildah",
        check_every: float = 1.0,
    ) -> None:
        self.work_dir = work_dir
        self.git_protocols = git_protocols
        self.outbound = outbound
        self.binary = binary
        self.check_every = check_every
        self._version: str | None = None

    async def version(self) -> str:
        if self._version is None:
            code, output = await run_captured([self.binary, "--version"], env=_base_env())
            if code != 0:
                raise BuildFailed(f"buildah is not usable here: {output[:300]}")
            # "buildah version 1.28.2 (image-spec ...)"
            words = output.split()
            self._version = f"buildah {words[2]}" if len(words) > 2 else output
        return self._version

    async def build(self, spec: BuildSpec, log: LogSink, cancelled: Cancelled) -> BuildResult:
        deadline = Deadline(spec.time_limit)
        for stale in await asyncio.to_thread(reaper.sweep, self.work_dir):
            logger.warning("removed %s, left by a worker that stopped mid-build", stale)
        folder = self.work_dir / f"run-{spec.run_id}-{uuid.uuid4().hex[:8]}"
        folder.mkdir(parents=True, mode=0o700)
        runroot = Path(tempfile.mkdtemp(prefix="dyb-", dir="/tmp"))  # short: some tools limit its length
        try:
            reaper.claim(folder, runroot)
            return await self._build(spec, log, cancelled, deadline, folder, runroot)
        finally:
            await asyncio.to_thread(shutil.rmtree, folder, True)
            await asyncio.to_thread(shutil.rmtree, runroot, True)

    async def _build(
        self,
        spec: BuildSpec,
        log: LogSink,
        cancelled: Cancelled,
        deadline: Deadline,
        folder: Path,
        runroot: Path,
    ) -> BuildResult:
        builder = await self.version()
        env = self._configure(spec, folder, runroot)
        recipe = spec.recipe
        commit = None
        if recipe.context == GIT:
            assert recipe.git is not None
            found = await checkout(
                recipe.git,
                folder / "source",
                protocols=self.git_protocols,
                outbound=self.outbound,
                log=log,
                deadline=deadline,
                cancelled=cancelled,
                check_every=self.check_every,
                started=functools.partial(reaper.record_group, folder),
            )
            commit, context, dockerfile, text = (
                found.commit,
                found.context,
                found.dockerfile,
                found.dockerfile_text,
            )
        else:
            context = folder / "context"
            context.mkdir()
            if spec.files is not None:
                await log.write("[dockyard] unpacking the uploaded files")
                await unpack(spec.files(), context)
            text = recipe.dockerfile or ""
            dockerfile = folder / "Dockerfile"  # outside the context: the edited one wins
            dockerfile.write_text(text)
        tag = spec.destinations[0]
        await log.write(f"[dockyard] building {tag} for {recipe.platform} with {builder}")
        await log.write(
            "[dockyard] RUN steps reach other hosts but not this server's loopback (network: egress)"
            if recipe.network == EGRESS
            else "[dockyard] RUN steps have no network (network: none; 'egress' lets them reach other hosts)"
        )
        tracker = _StepTracker(log)
        started = functools.partial(reaper.record_group, folder)
        async with run_network(recipe.network, folder, started) as network:
            status = await run_logged(
                self._bud_args(spec, folder, runroot, dockerfile, context, tag, network),
                sink=tracker,
                deadline=deadline,
                cancelled=cancelled,
                env=env,
                cwd=folder,
                check_every=self.check_every,
                started=started,
            )
        if status != 0:
            where = f"step {tracker.step}" if tracker.step else "the build"
            why = f": {tracker.error}" if tracker.error else ""
            raise BuildFailed(f"{where} failed{why}", git_commit=commit, dockerfile=text)
        push = functools.partial(self._push, folder, runroot, tag, deadline, cancelled, env)
        pushed: list[Pushed] = []
        for destination in spec.destinations:
            status, digest = await push(destination, log, f"digest-{len(pushed)}")
            if digest is None:
                raise BuildFailed(
                    f"the image was built but the push to {destination} failed (exit status {status})",
                    pushed=pushed,
                    git_commit=commit,
                    dockerfile=text,
                )
            pushed.append(Pushed(destination, digest))
        targets: list[TargetPushed] = []
        for index, target in enumerate(spec.targets):
            errors = _ErrorLines(log)
            certs = None
            if target.ca_bundle:  # containers/image trusts the *.crt files of --cert-dir
                certs = folder / f"certs-{index}"
                certs.mkdir(mode=0o700)
                (certs / "ca.crt").write_text(target.ca_bundle)
            _, digest = await push(target.reference, errors, f"target-{index}", certs)
            targets.append(TargetPushed(target.reference, digest, "" if digest else errors.text()))
        return BuildResult(pushed[0].digest, pushed, text, builder, commit, targets)

    async def _push(
        self,
        folder: Path,
        runroot: Path,
        tag: str,
        deadline: Deadline,
        cancelled: Cancelled,
        env: dict[str, str],
        destination: str,
        log: LogSink,
        digest_name: str,
        certs: Path | None = None,
    ) -> tuple[int, str | None]:
        """Push the built image to ``destination``: the exit status, and the digest if it went."""
        digest_file = folder / digest_name
        await log.write(f"[dockyard] pushing {destination}")
        push = [
            *self._global_args(folder, runroot), "push",
            "--signature-policy", str(folder / "policy.json"), "--authfile", str(folder / "auth.json"),
            "--digestfile", str(digest_file), "--retry", "1",
            *(["--cert-dir", str(certs)] if certs else []), tag, f"docker://{destination}",
        ]  # fmt: skip
        status = await run_logged(
            push,
            sink=log,
            deadline=deadline,
            cancelled=cancelled,
            env=env,
            cwd=folder,
            check_every=self.check_every,
            started=functools.partial(reaper.record_group, folder),
        )
        if status != 0 or not digest_file.exists():
            return status, None
        digest = digest_file.read_text().strip()
        await log.write(f"[dockyard] pushed {destination}@{digest}")
        return status, digest

    def _global_args(self, folder: Path, runroot: Path) -> list[str]:
        return [
            self.binary,
            "--root",
            str(folder / "storage"),
            "--runroot",
            str(runroot),
            "--storage-driver",
            "vfs",
        ]

    def _bud_args(
        self,
        spec: BuildSpec,
        folder: Path,
        runroot: Path,
        dockerfile: Path,
        context: Path,
        tag: str,
        network: str | None,
    ) -> list[str]:
        recipe = spec.recipe
        args = [
            *self._global_args(folder, runroot), "bud", *isolation_args(network),
            "--signature-policy", str(folder / "policy.json"), "--authfile", str(folder / "auth.json"),
            "--platform", recipe.platform, "--layers=false", "--format", "oci", "--pull",
            "--file", str(dockerfile), "--tag", tag,
        ]  # fmt: skip
        for name, value in sorted(recipe.build_args.items()):
            args += ["--build-arg", f"{name}={value}"]
        if recipe.target:
            args += ["--target", recipe.target]
        return [*args, str(context)]

    def _configure(self, spec: BuildSpec, folder: Path, runroot: Path) -> dict[str, str]:
        """Write buildah's configuration for this build; the environment that points at it."""
        (folder / "tmp").mkdir()
        (folder / "containers.conf").write_text(CONTAINERS_CONF)
        (folder / "policy.json").write_text(POLICY_JSON)
        (folder / "storage.conf").write_text(
            f'[storage]\ndriver = "vfs"\nrunroot = "{runroot}"\ngraphroot = "{folder / "storage"}"\n'
        )
        insecure = sorted(
            {login.registry for login in spec.logins if login.insecure}
            | {target.registry for target in spec.targets if target.insecure}
            | set(spec.insecure_registries)
        )
        registries = 'unqualified-search-registries = ["docker.io"]\nshort-name-mode = "permissive"\n'
        for host in insecure:
            registries += f'\n[[registry]]\nlocation = "{host}"\ninsecure = true\n'
        (folder / "registries.conf").write_text(registries)
        auth = folder / "auth.json"
        fd = os.open(auth, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump({"auths": {login.registry: _auth_entry(login) for login in spec.logins}}, out)
        return {
            **_base_env(),
            "HOME": str(folder),
            "TMPDIR": str(folder / "tmp"),
            "CONTAINERS_CONF": str(folder / "containers.conf"),
            "CONTAINERS_REGISTRIES_CONF": str(folder / "registries.conf"),
            "CONTAINERS_STORAGE_CONF": str(folder / "storage.conf"),
            "REGISTRY_AUTH_FILE": str(auth),
            "BUILDAH_ISOLATION": "oci",
        }


def _auth_entry(login: RegistryLogin) -> dict[str, str]:
    # containers/image reads "auth" as base64 user:password; with an identity token it
    # trades that token for registry tokens (OAuth2 refresh grant) and ignores the password.
    entry = {"auth": base64.b64encode(f"{login.username}:{login.secret or ''}".encode()).decode()}
    if login.identity_token:
        entry["identitytoken"] = login.identity_token
    return entry


def _base_env() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"), "LC_ALL": "C"}
