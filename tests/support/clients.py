"""Run the real container clients, each isolated under a temp dir, against a loopback registry.

Every helper takes the registry as ``host`` ("127.0.0.1:PORT", plain HTTP) inside image
references, and keeps all of its state (storage, credentials, sockets, logs) in the folder
it is given: nothing under /var/lib, ~/.docker or ~/.config is read or written.

- skopeo, podman, buildah: ``--root/--runroot`` under the folder, ``--storage-driver vfs``,
  ``REGISTRY_AUTH_FILE``, the project's containers.conf / registries.conf / policy.json from
  this folder, ``--tls-verify=false``.
- docker: a private ``dockerd`` (vfs, no bridge, no iptables) on a unix socket in the folder,
  and the docker CLI with ``DOCKER_HOST``/``DOCKER_CONFIG`` pointing at it.
- containerd: a private ``containerd`` with its own config (root, state and socket in the
  folder, CRI disabled), driven with ``ctr --plain-http``.
- oras: the Python ``oras`` client with ``insecure=True``.

A missing tool raises :class:`ToolMissingError` naming the Debian package; tests never skip.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.images import OCI_MANIFEST, Descriptor, sha256_digest

SUPPORT_DIR = Path(__file__).resolve().parent
CONTAINERS_CONF = SUPPORT_DIR / "containers.conf"
REGISTRIES_CONF = SUPPORT_DIR / "registries.conf"
POLICY_JSON = SUPPORT_DIR / "policy.json"
SETUP_HINT = "run scripts/setup.sh test"
COMMAND_TIMEOUT = 180.0
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
MANIFEST_ACCEPT = ", ".join(
    [
        OCI_MANIFEST,
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)

# Variables that would make a client read or write state outside its folder.
_LEAKY_ENV = (
    "DOCKER_HOST",
    "DOCKER_CONFIG",
    "DOCKER_CONTEXT",
    "DOCKER_TLS_VERIFY",
    "DOCKER_CERT_PATH",
    "REGISTRY_AUTH_FILE",
    "CONTAINERS_CONF",
    "CONTAINERS_REGISTRIES_CONF",
    "CONTAINERS_STORAGE_CONF",
    "CONTAINERD_ADDRESS",
    "CONTAINERD_NAMESPACE",
    "CONTAINERD_SNAPSHOTTER",
    "BUILDAH_ISOLATION",
    "BUILDAH_FORMAT",
    "STORAGE_DRIVER",
    "STORAGE_OPTS",
)


class ToolMissingError(RuntimeError):
    """A client binary (or Python package) the tests need is not installed."""


class ClientError(RuntimeError):
    """A client command exited non-zero; the message carries its output."""

    def __init__(self, result: Result) -> None:
        self.result = result
        super().__init__(
            f"{' '.join(result.argv)} exited with {result.returncode}\n"
            f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
        )


@dataclass(frozen=True)
class Result:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def require_tool(name: str, package: str) -> str:
    """The absolute path of ``name``, or a clear error telling how to install it."""
    found = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/sbin") / name) if os.access(p, os.X_OK)), None
    )
    if found is None:
        raise ToolMissingError(f"{name} is missing (Debian package {package}): {SETUP_HINT}")
    return found


def client_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _LEAKY_ENV}
    env.update(extra or {})
    return env


def run_command(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    timeout: float = COMMAND_TIMEOUT,
    input_bytes: bytes | None = None,
    cwd: Path | None = None,
) -> Result:
    """Run a command to completion with captured output; raise :class:`ClientError` on failure."""
    try:
        completed = subprocess.run(
            list(argv),
            env=dict(env) if env is not None else None,
            input=input_bytes,
            capture_output=True,
            timeout=timeout,
            cwd=cwd,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ClientError(
            Result(list(argv), -1, _text(exc.stdout), _text(exc.stderr) + f"\n(timed out after {timeout}s)")
        ) from exc
    result = Result(list(argv), completed.returncode, _text(completed.stdout), _text(completed.stderr))
    if check and not result.ok:
        raise ClientError(result)
    return result


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode(errors="replace")


def _short_dir(prefix: str) -> Path:
    """A short folder in /tmp for unix sockets (their paths are limited to 107 bytes)."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def _write_auth_file(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text('{"auths": {}}\n')
    return path


# --------------------------------------------------------------------------- skopeo


class Skopeo:
    """``skopeo`` with its own auth file, temp dir, policy and registries.conf."""

    def __init__(self, workdir: Path) -> None:
        self.binary = require_tool("skopeo", "skopeo")
        self.workdir = workdir
        (workdir / "tmp").mkdir(parents=True, exist_ok=True)
        self.env = client_env(
            {
                "REGISTRY_AUTH_FILE": str(_write_auth_file(workdir / "auth.json")),
                "CONTAINERS_REGISTRIES_CONF": str(REGISTRIES_CONF),
                "TMPDIR": str(workdir / "tmp"),
            }
        )

    def __call__(self, *args: str, check: bool = True) -> Result:
        return run_command([self.binary, "--policy", str(POLICY_JSON), *args], env=self.env, check=check)

    def copy(
        self,
        source: str,
        dest: str,
        *,
        all_images: bool = False,
        extra: Sequence[str] = (),
        check: bool = True,
    ) -> Result:
        args = ["copy", "--retry-times", "0"]
        if all_images:
            args.append("--all")
        if source.startswith("docker://"):
            args.append("--src-tls-verify=false")
        if dest.startswith("docker://"):
            args.append("--dest-tls-verify=false")
        return self(*args, *extra, source, dest, check=check)

    def inspect_raw(self, ref: str) -> bytes:
        # The raw manifest is printed exactly as the registry served it (no trailing newline).
        result = run_command(
            [self.binary, "--policy", str(POLICY_JSON), "inspect", "--raw", *self._tls(ref), ref],
            env=self.env,
        )
        return result.stdout.encode()

    def inspect(self, ref: str) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self("inspect", *self._tls(ref), ref).stdout)
        return parsed

    def list_tags(self, ref: str) -> list[str]:
        tags: list[str] = json.loads(self("list-tags", *self._tls(ref), ref).stdout)["Tags"]
        return tags

    def delete(self, ref: str) -> Result:
        return self("delete", *self._tls(ref), ref)

    @staticmethod
    def _tls(ref: str) -> list[str]:
        return ["--tls-verify=false"] if ref.startswith("docker://") else []


# --------------------------------------------------------------------------- podman / buildah


class _ContainersStorageTool:
    """Shared set-up for podman and buildah: private storage, config and credentials."""

    tool = ""
    package = ""

    def __init__(self, workdir: Path) -> None:
        self.binary = require_tool(self.tool, self.package)
        require_tool("runc", "runc")
        self.workdir = workdir
        self.root = workdir / "root"
        # podman refuses a runroot longer than 50 characters: keep it short, in /tmp.
        self.runroot = _short_dir(f"dy-{self.tool}-")
        self.tmpdir = workdir / "tmp"
        for folder in (self.root, self.tmpdir):
            folder.mkdir(parents=True, exist_ok=True)
        storage_conf = workdir / "storage.conf"
        storage_conf.write_text(
            f'[storage]\ndriver = "vfs"\nrunroot = "{self.runroot}"\ngraphroot = "{self.root}"\n'
        )
        self.env = client_env(
            {
                "CONTAINERS_CONF": str(CONTAINERS_CONF),
                "CONTAINERS_REGISTRIES_CONF": str(REGISTRIES_CONF),
                "CONTAINERS_STORAGE_CONF": str(storage_conf),
                "REGISTRY_AUTH_FILE": str(_write_auth_file(workdir / "auth.json")),
                "TMPDIR": str(self.tmpdir),
            }
        )

    def global_args(self) -> list[str]:
        return ["--root", str(self.root), "--runroot", str(self.runroot), "--storage-driver", "vfs"]

    def close(self) -> None:
        """Remove the run root (the storage itself stays under ``workdir`` for pytest to clean)."""
        shutil.rmtree(self.runroot, ignore_errors=True)

    def __call__(self, *args: str, check: bool = True, timeout: float = COMMAND_TIMEOUT) -> Result:
        return run_command(
            [self.binary, *self.global_args(), *args], env=self.env, check=check, timeout=timeout
        )


class Podman(_ContainersStorageTool):
    tool = "podman"
    package = "podman"

    def global_args(self) -> list[str]:
        return [*super().global_args(), "--tmpdir", str(self.tmpdir / "libpod"), "--events-backend", "file"]

    def pull(self, ref: str) -> str:
        """Pull ``ref`` (a registry reference, or ``oci:DIR:TAG``); return the image ID."""
        args = ["pull", "--quiet", "--signature-policy", str(POLICY_JSON)]
        if not ref.startswith(("oci:", "docker-archive:", "oci-archive:", "dir:")):
            args.append("--tls-verify=false")
        return self(*args, ref).stdout.strip().splitlines()[-1]

    def push(self, image: str, dest: str | None = None) -> None:
        self(
            "push", "--quiet", "--tls-verify=false", "--signature-policy", str(POLICY_JSON),
            image, *([dest] if dest else []),
        )  # fmt: skip

    def tag(self, image: str, *names: str) -> None:
        self("tag", image, *names)

    def rmi(self, *images: str) -> None:
        self("rmi", "--force", *images)

    def image_ids(self) -> list[str]:
        return self("images", "--quiet", "--no-trunc").stdout.split()

    def image_id(self, image: str) -> str:
        return self("image", "inspect", "--format", "{{.Id}}", image).stdout.strip()

    def run(self, image: str, *command: str) -> str:
        """``podman run --rm`` with no network and no implicit pull; return its stdout."""
        return self("run", "--rm", "--network", "none", "--pull", "never", image, *command).stdout


class Buildah(_ContainersStorageTool):
    tool = "buildah"
    package = "buildah"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.env["BUILDAH_ISOLATION"] = "chroot"

    def pull(self, ref: str) -> str:
        """Pull ``ref`` (a registry reference, or ``oci:DIR:TAG``); return the image ID."""
        args = ["pull", "--quiet", "--signature-policy", str(POLICY_JSON)]
        if not ref.startswith(("oci:", "docker-archive:", "oci-archive:", "dir:")):
            args.append("--tls-verify=false")
        return self(*args, ref).stdout.strip().splitlines()[-1]

    def bud(self, context: Path, tag: str, *extra: str) -> str:
        """``buildah bud`` with chroot isolation (RUN steps work without a runtime); return the ID."""
        result = self(
            "bud", "--isolation", "chroot", "--tls-verify=false", "--signature-policy", str(POLICY_JSON),
            "--format", "oci", "--layers=false", "--quiet", "--tag", tag, *extra, str(context),
        )  # fmt: skip
        return result.stdout.strip().splitlines()[-1]

    def push(self, image: str, dest: str | None = None) -> None:
        self(
            "push", "--quiet", "--tls-verify=false", "--signature-policy", str(POLICY_JSON),
            image, *([dest] if dest else []),
        )  # fmt: skip


# --------------------------------------------------------------------------- daemons


class _Daemon:
    """A background server process with its log in a file; always stopped by :meth:`stop`."""

    name = ""

    def __init__(self, process: subprocess.Popen[bytes], log_path: Path, socket_dir: Path) -> None:
        self.process = process
        self.log_path = log_path
        self.socket_dir = socket_dir

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _wait_ready(self, probe: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log()}")
            if probe():
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer in {timeout}s:\n{self.log()}")

    def _children_to_reap(self) -> list[int]:
        return []

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for pid in self._children_to_reap():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.socket_dir, ignore_errors=True)


class DockerDaemon(_Daemon):
    """A private ``dockerd`` (vfs storage, no bridge, no iptables) on its own unix socket.

    127.0.0.0/8 is an insecure (plain-HTTP) registry range for dockerd by default; the flag
    is passed anyway so the tests do not rely on that default.
    """

    name = "dockerd"

    def __init__(
        self, process: subprocess.Popen[bytes], log_path: Path, socket_dir: Path, base: Path
    ) -> None:
        super().__init__(process, log_path, socket_dir)
        self.base = base
        self.socket = socket_dir / "docker.sock"
        self.cli_binary = docker_cli()
        config_dir = base / "cli-config"
        config_dir.mkdir(parents=True, exist_ok=True)
        self.env = client_env({"DOCKER_HOST": f"unix://{self.socket}", "DOCKER_CONFIG": str(config_dir)})

    @classmethod
    def start(cls, base: Path, timeout: float = 60.0) -> DockerDaemon:
        binary = require_tool("dockerd", "docker.io")
        require_tool("runc", "runc")
        require_tool("containerd", "containerd")
        base.mkdir(parents=True, exist_ok=True)
        socket_dir = _short_dir("dy-docker-")
        log_path = base / "dockerd.log"
        argv = [
            binary,
            "--iptables=false",
            "--ip6tables=false",
            "--bridge=none",
            "--storage-driver=vfs",
            "--insecure-registry=127.0.0.0/8",
            "--host",
            f"unix://{socket_dir / 'docker.sock'}",
            "--data-root",
            str(base / "data"),
            "--exec-root",
            str(socket_dir / "exec"),
            "--pidfile",
            str(base / "dockerd.pid"),
        ]
        with log_path.open("ab") as log:
            process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=client_env())
        daemon = cls(process, log_path, socket_dir, base)
        try:
            daemon._wait_ready(daemon._ping, timeout)
            insecure = daemon.cli("info", "--format", "{{json .RegistryConfig.InsecureRegistryCIDRs}}").stdout
            if "127.0.0.0/8" not in insecure:
                raise RuntimeError(f"dockerd does not treat 127.0.0.0/8 as plain-HTTP registries: {insecure}")
        except BaseException:
            daemon.stop()
            raise
        return daemon

    def _ping(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            with httpx.Client(transport=httpx.HTTPTransport(uds=str(self.socket)), timeout=2) as client:
                return client.get("http://docker/_ping").text == "OK"
        except httpx.TransportError:
            return False

    def _children_to_reap(self) -> list[int]:
        # dockerd supervises its own containerd; if dockerd had to be killed, that one is orphaned.
        pid_file = self.socket_dir / "exec" / "containerd" / "containerd.pid"
        with contextlib.suppress(OSError, ValueError):
            pid = int(pid_file.read_text().strip())
            if Path(f"/proc/{pid}").exists():
                return [pid]
        return []

    def cli(self, *args: str, check: bool = True, input_bytes: bytes | None = None) -> Result:
        return run_command([self.cli_binary, *args], env=self.env, check=check, input_bytes=input_bytes)


def docker_cli() -> str:
    """The docker CLI: ``DOCKYARD_TEST_DOCKER_CLI``, else Debian's (it matches the daemon), else PATH."""
    chosen = os.environ.get("DOCKYARD_TEST_DOCKER_CLI")
    if chosen:
        return chosen
    debian = Path("/usr/bin/docker")
    if os.access(debian, os.X_OK):
        return str(debian)
    return require_tool("docker", "docker.io")


class ContainerdDaemon(_Daemon):
    """A private ``containerd`` (CRI disabled) on its own socket, for ``ctr``."""

    name = "containerd"

    def __init__(
        self, process: subprocess.Popen[bytes], log_path: Path, socket_dir: Path, base: Path
    ) -> None:
        super().__init__(process, log_path, socket_dir)
        self.base = base
        self.address = socket_dir / "containerd.sock"
        self.ctr_binary = require_tool("ctr", "containerd")
        # native: a plain-copy snapshotter that works on any filesystem.
        self.env = client_env({"CONTAINERD_SNAPSHOTTER": "native"})

    @classmethod
    def start(cls, base: Path, timeout: float = 60.0) -> ContainerdDaemon:
        binary = require_tool("containerd", "containerd")
        require_tool("ctr", "containerd")
        require_tool("runc", "runc")
        base.mkdir(parents=True, exist_ok=True)
        socket_dir = _short_dir("dy-ctrd-")
        config = base / "config.toml"
        disabled = [
            "io.containerd.grpc.v1.cri",
            "io.containerd.snapshotter.v1.aufs",
            "io.containerd.snapshotter.v1.btrfs",
            "io.containerd.snapshotter.v1.devmapper",
            "io.containerd.snapshotter.v1.zfs",
            "io.containerd.tracing.processor.v1.otlp",
            "io.containerd.internal.v1.tracing",
        ]
        config.write_text(
            "version = 2\n"
            f'root = "{base / "root"}"\n'
            f'state = "{socket_dir / "state"}"\n'
            f"disabled_plugins = {json.dumps(disabled)}\n"
            "[grpc]\n"
            f'  address = "{socket_dir / "containerd.sock"}"\n'
            "[ttrpc]\n"
            f'  address = "{socket_dir / "containerd.sock.ttrpc"}"\n'
            "[debug]\n"
            '  address = ""\n'
            "[metrics]\n"
            '  address = ""\n'
            '[plugins."io.containerd.internal.v1.opt"]\n'
            f'  path = "{base / "opt"}"\n'
        )
        log_path = base / "containerd.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [binary, "--config", str(config)], stdout=log, stderr=subprocess.STDOUT, env=client_env()
            )
        daemon = cls(process, log_path, socket_dir, base)
        try:
            daemon._wait_ready(daemon._ping, timeout)
        except BaseException:
            daemon.stop()
            raise
        return daemon

    def _ping(self) -> bool:
        if not self.address.exists():
            return False
        return run_command(
            [self.ctr_binary, "--address", str(self.address), "version"], check=False, timeout=10
        ).ok

    def ctr(self, namespace: str, *args: str, check: bool = True) -> Result:
        return run_command(
            [self.ctr_binary, "--address", str(self.address), "--namespace", namespace, *args],
            env=self.env,
            check=check,
        )

    def new_namespace(self, prefix: str = "dockyard") -> str:
        """A namespace of its own, so content from an earlier test is not reused."""
        return f"{prefix}-{uuid.uuid4().hex[:10]}"


# --------------------------------------------------------------------------- oras and raw HTTP


def make_oras_client(host: str) -> Any:
    """``oras.client.OrasClient`` for a plain-HTTP registry."""
    try:
        import oras.client
    except ImportError as exc:
        raise ToolMissingError(f"the Python package oras is missing: {SETUP_HINT}") from exc
    return oras.client.OrasClient(hostname=host, insecure=True)


def oras_push_artifact(
    client: Any,
    target: str,
    path: Path,
    *,
    media_type: str,
    artifact_type: str,
    subject: Descriptor | None = None,
    annotations: Mapping[str, str] | None = None,
    attach: bool = False,
) -> dict[str, str]:
    """Push ``path`` as a one-layer OCI 1.1 artifact (``artifactType`` + empty config) via oras-py.

    Returns the headers of the manifest PUT response (``Docker-Content-Digest``, ``OCI-Subject``).

    oras-py's ``push`` has no ``artifactType``; its blob and manifest calls are used as the
    ``oras`` CLI would with ``--artifact-type``. With ``attach`` the manifest is pushed by its
    digest and no tag, as ``oras attach`` does (``target`` names the repository only).
    """
    import oras.oci

    container = client.get_container(target)
    layer = oras.oci.NewLayer(str(path), media_type=media_type)
    layer["annotations"] = {"org.opencontainers.image.title": path.name}
    _check_oras(client.upload_blob(str(path), container, layer), f"blob {path.name}")
    empty = path.parent / f".{path.name}.empty-config"
    empty.write_bytes(b"{}")
    config = {"mediaType": OCI_EMPTY, "digest": sha256_digest(b"{}"), "size": 2}
    _check_oras(client.upload_blob(str(empty), container, config), "empty config")
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": config,
        "layers": [layer],
    }
    if subject is not None:
        manifest["subject"] = subject.to_dict()
    if annotations:
        manifest["annotations"] = dict(annotations)
    if attach:
        body = json.dumps(manifest).encode()
        response = client.do_request(
            f"{client.prefix}://{container.manifest_url(sha256_digest(body))}",
            "PUT",
            headers={"Content-Type": OCI_MANIFEST},
            data=body,
        )
    else:
        response = client.upload_manifest(manifest, container)
    _check_oras(response, f"manifest {target}")
    return {str(key): str(value) for key, value in response.headers.items()}


def oras_subject(descriptor: Descriptor) -> Any:
    """``oras.oci.Subject`` for a manifest descriptor (read from the registry, not recomputed)."""
    import oras.oci

    return oras.oci.Subject(mediaType=descriptor.media_type, digest=descriptor.digest, size=descriptor.size)


def _check_oras(response: Any, what: str) -> None:
    status = int(response.status_code)
    if status not in (200, 201, 202):
        raise ClientError(Result(["oras", "upload", what], status, "", str(getattr(response, "text", ""))))


def manifest_descriptor(registry_url: str, repository: str, reference: str) -> Descriptor:
    """GET a manifest and describe it from the bytes served (checked against the digest header)."""
    response = httpx.get(
        f"{registry_url}/v2/{repository}/manifests/{reference}",
        headers={"Accept": MANIFEST_ACCEPT},
        timeout=30,
    )
    response.raise_for_status()
    digest = sha256_digest(response.content)
    served = response.headers.get("Docker-Content-Digest")
    if served is not None and served != digest:
        raise AssertionError(
            f"{repository}:{reference}: Docker-Content-Digest {served} != sha256 of body {digest}"
        )
    media_type = response.headers["Content-Type"].split(";", 1)[0].strip()
    return Descriptor(media_type, digest, len(response.content))


# --------------------------------------------------------------------------- logins (token mode)


def docker_as(
    daemon: DockerDaemon,
    config_dir: Path,
    *args: str,
    cli: str | None = None,
    check: bool = True,
    input_bytes: bytes | None = None,
) -> Result:
    """The docker CLI (``cli``, default the daemon's) on ``daemon`` with its own ``DOCKER_CONFIG``.

    Credentials live in the CLI's config.json and are sent to the daemon with each push or
    pull, so one shared daemon can act as several users, one config folder each.
    """
    config_dir.mkdir(parents=True, exist_ok=True)
    env = {**daemon.env, "DOCKER_CONFIG": str(config_dir)}
    return run_command([cli or daemon.cli_binary, *args], env=env, check=check, input_bytes=input_bytes)


def docker_login(
    daemon: DockerDaemon,
    config_dir: Path,
    host: str,
    username: str,
    secret: str,
    *,
    cli: str | None = None,
    check: bool = True,
) -> Result:
    """``docker login --password-stdin`` into ``config_dir``/config.json."""
    return docker_as(
        daemon,
        config_dir,
        "login", "--username", username, "--password-stdin", host,
        cli=cli, check=check, input_bytes=secret.encode(),
    )  # fmt: skip


def containers_login(
    tool: Skopeo | Podman | Buildah, host: str, username: str, secret: str, *, check: bool = True
) -> Result:
    """``login --password-stdin`` for skopeo, podman or buildah, into the tool's ``REGISTRY_AUTH_FILE``."""
    prefix = [tool.binary] if isinstance(tool, Skopeo) else [tool.binary, *tool.global_args()]
    return run_command(
        [*prefix, "login", "--tls-verify=false", "--username", username, "--password-stdin", host],
        env=tool.env,
        check=check,
        input_bytes=secret.encode(),
    )


def containers_logout(tool: Skopeo | Podman | Buildah, host: str, *, check: bool = True) -> Result:
    prefix = [tool.binary] if isinstance(tool, Skopeo) else [tool.binary, *tool.global_args()]
    return run_command([*prefix, "logout", host], env=tool.env, check=check)


def make_oras_client_as(host: str, username: str, secret: str, auth_backend: str = "basic") -> Any:
    """``oras.client.OrasClient`` for a plain-HTTP registry, signed in as ``username``.

    With ``auth_backend="basic"`` every request that gets a 401 is retried with Basic
    credentials on /v2; with ``"token"`` oras-py fetches a Bearer token from the realm.
    The credentials are set on the client only (oras-py's ``login`` would call a docker
    daemon and write ~/.docker).
    """
    try:
        import oras.client
    except ImportError as exc:
        raise ToolMissingError(f"the Python package oras is missing: {SETUP_HINT}") from exc
    client = oras.client.OrasClient(hostname=host, insecure=True, auth_backend=auth_backend)
    client.auth.set_basic_auth(username, secret)
    return client
