"""Upstream registries for the external-image verification tests, all real servers on loopback.

- :func:`start_upstream_registry`: Debian's ``docker-registry`` (CNCF Distribution 2.8),
  open, or behind Basic auth from a bcrypt htpasswd file (``htpasswd -B``, apache2-utils).
- :func:`start_nginx`: nginx with the server blocks a test gives it (rate limiting with
  ``limit_req``, a proxy to a closed port, hand-written "hostile" answers), each on its own port.
- :func:`build_upstream_images`: an OCI layout with a 2-platform index (amd64 + arm64/v8,
  plus a buildx-style attestation entry, ``unknown/unknown``) and each platform's image alone,
  every size known, to push with skopeo.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.clients import require_tool, run_command
from tests.support.images import Descriptor, canonical_json, sha256_digest
from tests.support.servers import RunningRegistry, free_port, wait_healthy

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
IN_TOTO = "application/vnd.in-toto+json"
REF_NAME = "org.opencontainers.image.ref.name"


# --------------------------------------------------------------------------- registries


def start_upstream_registry(
    base: Path,
    users: dict[str, str] | None = None,
    *,
    tls: tuple[Path, Path] | None = None,
    data_dir: Path | None = None,
) -> RunningRegistry:
    """``docker-registry`` on a free loopback port; with ``users``, Basic auth (bcrypt htpasswd);
    with ``tls`` (certificate, key), HTTPS only; ``data_dir`` shares another one's storage."""
    binary = shutil.which("docker-registry")
    if binary is None:
        raise RuntimeError(
            "docker-registry is missing (Debian package docker-registry): run scripts/setup.sh test"
        )
    base.mkdir(parents=True, exist_ok=True)
    port = free_port()
    data_dir = data_dir or base / "data"
    data_dir.mkdir(exist_ok=True)
    auth = ""
    if users:
        htpasswd = require_tool("htpasswd", "apache2-utils")
        lines = [
            run_command([htpasswd, "-Bbn", name, secret]).stdout.strip() for name, secret in users.items()
        ]
        (base / "htpasswd").write_text("\n".join(lines) + "\n")
        auth = f"auth:\n  htpasswd:\n    realm: dockyard-upstream-test\n    path: {base / 'htpasswd'}\n"
    config = base / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {data_dir}\n"
        f"{auth}"
        f"http:\n  addr: 127.0.0.1:{port}\n  secret: dockyard-upstream-test\n"
        + (f"  tls:\n    certificate: {tls[0]}\n    key: {tls[1]}\n" if tls else "")
    )
    log_path = base / "server.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    server = RunningRegistry("reference", f"127.0.0.1:{port}", data_dir, log_path, process)
    try:
        if tls:
            wait_listening(port, process, log_path)
        else:
            wait_healthy(f"{server.url}/v2/", process, log_path)  # 401 counts as up
    except BaseException:
        server.stop()
        raise
    return server


def private_ca_certificates(base: Path) -> tuple[Path, Path, str]:
    """A private CA and a server certificate for 127.0.0.1 it signed: (cert, key, CA PEM)."""
    openssl = require_tool("openssl", "openssl")
    base.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = base / "ca.key", base / "ca.pem"
    run_command(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=dockyard test CA",
            "-keyout",
            str(ca_key),
            "-out",
            str(ca_cert),
        ]
    )
    key, csr, cert = base / "server.key", base / "server.csr", base / "server.pem"
    run_command(
        [
            openssl,
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(csr),
        ]
    )
    (base / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run_command(
        [
            openssl,
            "x509",
            "-req",
            "-in",
            str(csr),
            "-CA",
            str(ca_cert),
            "-CAkey",
            str(ca_key),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            str(base / "san.ext"),
            "-out",
            str(cert),
        ]
    )
    return cert, key, ca_cert.read_text()


# --------------------------------------------------------------------------- nginx


@dataclass
class Nginx:
    """An nginx master (and its worker) with one loopback port per named server block."""

    process: subprocess.Popen[bytes]
    base: Path
    ports: dict[str, int]

    def host(self, name: str) -> str:
        return f"127.0.0.1:{self.ports[name]}"

    def log(self) -> str:
        path = self.base / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # SIGTERM: fast shutdown, the master stops its workers
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_nginx(base: Path, servers: dict[str, str], http_extra: str = "", timeout: float = 15.0) -> Nginx:
    """Run nginx in the foreground with everything (pid, logs, temp files) under ``base``.

    ``servers`` maps a name to the body of a ``server { }`` block (locations and so on);
    the ``listen`` line is added. ``http_extra`` goes into the ``http { }`` block, e.g.
    ``limit_req_zone`` lines.
    """
    binary = require_tool("nginx", "nginx")
    base.mkdir(parents=True, exist_ok=True)
    ports = {name: free_port() for name in servers}
    blocks = "\n".join(
        f"  server {{\n    listen 127.0.0.1:{ports[name]};\n{body}\n  }}" for name, body in servers.items()
    )
    temp = {kind: base / "temp" / kind for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")}
    (base / "temp").mkdir(exist_ok=True)
    # As root, workers would switch to "nobody", which cannot enter pytest's 0700 temp folders.
    user = "user root;\n" if _is_root() else ""
    (base / "nginx.conf").write_text(
        f"{user}worker_processes 1;\n"
        f"pid {base / 'nginx.pid'};\n"
        f"error_log {base / 'error.log'} warn;\n"
        "events { worker_connections 256; }\n"
        "http {\n"
        f"  access_log {base / 'access.log'};\n"
        + "".join(f"  {kind}_temp_path {path};\n" for kind, path in temp.items())
        + f"{http_extra}\n{blocks}\n}}\n"
    )
    log_path = base / "nginx.out"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [binary, "-p", str(base), "-c", str(base / "nginx.conf"), "-g", "daemon off;"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    nginx = Nginx(process, base, ports)
    try:
        deadline = time.monotonic() + timeout
        pending = set(ports.values())
        while pending:
            if process.poll() is not None:
                raise RuntimeError(
                    f"nginx exited with {process.returncode}:\n{log_path.read_text()}\n{nginx.log()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not listen on {sorted(pending)} in {timeout}s:\n{nginx.log()}")
            pending = {port for port in pending if not _listening(port)}
            time.sleep(0.05)
    except BaseException:
        nginx.stop()
        raise
    return nginx


def wait_listening(
    port: int, process: subprocess.Popen[bytes], log_path: Path, timeout: float = 60.0
) -> None:
    """Until something accepts connections on loopback ``port`` (the server did not exit)."""
    deadline = time.monotonic() + timeout
    while not _listening(port):
        if process.poll() is not None:
            raise RuntimeError(
                f"server exited with {process.returncode}:\n{log_path.read_text(errors='replace')}"
            )
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"nothing listened on {port} in {timeout}s:\n{log_path.read_text(errors='replace')}"
            )
        time.sleep(0.05)


def _is_root() -> bool:
    return os.geteuid() == 0


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


def closed_port() -> int:
    """A loopback port nothing listens on (bound once, then released)."""
    return free_port()


# --------------------------------------------------------------------------- images


@dataclass(frozen=True)
class UpstreamImage:
    manifest: Descriptor
    config: Descriptor
    layers: tuple[Descriptor, ...]
    platform: str  # "linux/amd64", "linux/arm64/v8"

    @property
    def compressed_size(self) -> int:
        return self.config.size + sum(layer.size for layer in self.layers)


@dataclass(frozen=True)
class UpstreamImages:
    """The layout ``build_upstream_images`` wrote; ``ref(tag)`` names a tag in it for skopeo."""

    layout: Path
    amd64: UpstreamImage
    arm64: UpstreamImage
    attestation: Descriptor
    index: Descriptor
    blobs: dict[str, bytes] = field(default_factory=dict, repr=False)

    def ref(self, tag: str) -> str:
        return f"oci:{self.layout}:{tag}"


class _Layout:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        self.blobs: dict[str, bytes] = {}

    def put(self, media_type: str, data: bytes) -> Descriptor:
        digest = sha256_digest(data)
        (self.root / "blobs" / "sha256" / digest.split(":", 1)[1]).write_bytes(data)
        self.blobs[digest] = data
        return Descriptor(media_type, digest, len(data))

    def manifest(self, config: Descriptor, layers: list[Descriptor], **extra: Any) -> Descriptor:
        body = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config.to_dict(),
            "layers": [layer.to_dict() for layer in layers],
            **extra,
        }
        return self.put(OCI_MANIFEST, canonical_json(body))

    def image(self, architecture: str, variant: str | None, layer_texts: list[str]) -> UpstreamImage:
        layers = [
            self.put(OCI_LAYER_GZIP, gzip.compress(text.encode() * 50, compresslevel=6, mtime=0))
            for text in layer_texts
        ]
        config_body: dict[str, Any] = {
            "architecture": architecture,
            "os": "linux",
            "created": "1970-01-01T00:00:00Z",
            "config": {"Cmd": ["/bin/true"]},
            # Not real diff_ids (layers are not tars): registries never look inside.
            "rootfs": {"type": "layers", "diff_ids": [sha256_digest(text.encode()) for text in layer_texts]},
        }
        if variant:
            config_body["variant"] = variant
        config = self.put(OCI_CONFIG, canonical_json(config_body))
        manifest = self.manifest(config, layers)
        platform = "/".join(["linux", architecture] + ([variant] if variant else []))
        return UpstreamImage(manifest, config, tuple(layers), platform)


def build_upstream_images(dest: Path) -> UpstreamImages:
    """Tags in the layout: ``multi`` (the index), ``amd64`` and ``arm64`` (each image alone)."""
    layout = _Layout(dest / "upstream-oci")
    amd64 = layout.image("amd64", None, ["amd64 base layer\n", "amd64 application layer\n"])
    arm64 = layout.image("arm64", "v8", ["arm64 only layer\n"])
    # What docker buildx adds to an index: a provenance manifest for the amd64 image.
    attestation_config = layout.put(OCI_CONFIG, canonical_json({"architecture": "unknown", "os": "unknown"}))
    statement = layout.put(IN_TOTO, canonical_json({"_type": "https://in-toto.io/Statement/v0.1"}))
    attestation = layout.manifest(attestation_config, [statement])
    entries = [
        {**amd64.manifest.to_dict(), "platform": {"architecture": "amd64", "os": "linux"}},
        {**arm64.manifest.to_dict(), "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
        {
            **attestation.to_dict(),
            "platform": {"architecture": "unknown", "os": "unknown"},
            "annotations": {
                "vnd.docker.reference.digest": amd64.manifest.digest,
                "vnd.docker.reference.type": "attestation-manifest",
            },
        },
    ]
    index = layout.put(
        OCI_INDEX, canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    )
    tags = {"multi": index, "amd64": amd64.manifest, "arm64": arm64.manifest}
    layout_index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{**d.to_dict(), "annotations": {REF_NAME: tag}} for tag, d in tags.items()],
    }
    (layout.root / "index.json").write_bytes(canonical_json(layout_index))
    return UpstreamImages(layout.root, amd64, arm64, attestation, index, dict(layout.blobs))
