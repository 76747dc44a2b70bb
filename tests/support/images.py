"""Small, deterministic test images built locally (there is no internet to pull from).

``build_test_images`` writes an OCI image layout holding:

- ``busybox``: a runnable image for this machine's architecture whose single gzip layer is
  Debian's static busybox (``/bin/busybox`` from busybox-static) with a few applet symlinks
  (``bin/sh``, ``bin/cat``, ...) and a known text file, ``/etc/dockyard/hello.txt``;
- ``multi``: an OCI index over that image and a second-architecture variant (arm64, or
  amd64 on an arm64 machine) whose layer only holds a text file, for ``skopeo copy --all``.

It also writes ``layout.oci.tar`` (the same layout as one tar, for ``ctr images import``)
and ``busybox.docker.tar`` (the runnable image in ``docker save`` format, for ``docker load``).
Every byte is a function of the busybox binary: fixed timestamps, owners and modes, gzip
without a name or time, sorted JSON.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import platform
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BUSYBOX = Path("/bin/busybox")
APPLETS = ("sh", "cat", "echo", "ls", "mkdir", "test", "true", "env")
HELLO_PATH = "/etc/dockyard/hello.txt"
HELLO_TEXT = "hello from the dockyard test image\n"
ARCH_FILE = "/etc/dockyard/arch.txt"
IMAGE_TAG = "busybox"
INDEX_TAG = "multi"
DOCKER_ARCHIVE_TAG = "dockyard-test/busybox:latest"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"
EPOCH = "1970-01-01T00:00:00Z"


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def native_architecture() -> str:
    """This machine's architecture in OCI spelling (what busybox-static was built for)."""
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass(frozen=True)
class BuiltImage:
    manifest: Descriptor
    config: Descriptor
    layer: Descriptor
    diff_id: str  # sha256 of the uncompressed layer tar
    architecture: str


@dataclass(frozen=True)
class TestImages:
    """What ``build_test_images`` wrote, with the digests a registry must give back."""

    __test__ = False  # not a pytest test class

    layout: Path  # OCI image layout: refs "busybox" (image) and "multi" (index)
    oci_archive: Path  # the layout as a tar
    docker_archive: Path  # ``docker save`` tar of the runnable image, tagged DOCKER_ARCHIVE_TAG
    image: BuiltImage  # runnable, native architecture
    foreign: BuiltImage  # the other architecture's variant (not runnable)
    index: Descriptor

    @property
    def image_ref(self) -> str:
        return f"oci:{self.layout}:{IMAGE_TAG}"

    @property
    def index_ref(self) -> str:
        return f"oci:{self.layout}:{INDEX_TAG}"

    @property
    def digests(self) -> list[str]:
        """Every blob the index reaches: index, manifests, configs and layers."""
        found = [self.index.digest]
        for built in (self.image, self.foreign):
            found += [built.manifest.digest, built.config.digest, built.layer.digest]
        return found

    def blob(self, digest: str) -> bytes:
        algorithm, hex_digest = digest.split(":", 1)
        return (self.layout / "blobs" / algorithm / hex_digest).read_bytes()


def _tar(files: dict[str, bytes], symlinks: dict[str, str], directories: dict[str, int]) -> bytes:
    """A tar with fixed metadata: root-owned, mtime 0, entries sorted by path."""
    entries: list[tuple[str, tarfile.TarInfo, bytes | None]] = []
    for name, mode in directories.items():
        info = tarfile.TarInfo(name)
        info.type, info.mode = tarfile.DIRTYPE, mode
        entries.append((name, info, None))
    for name, target in symlinks.items():
        info = tarfile.TarInfo(name)
        info.type, info.linkname, info.mode = tarfile.SYMTYPE, target, 0o777
        entries.append((name, info, None))
    for name, content in files.items():
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(content), 0o755 if name == "bin/busybox" else 0o644
        entries.append((name, info, content))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for _, info, data in sorted(entries, key=lambda entry: entry[0]):
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


class _LayoutWriter:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')

    def put(self, media_type: str, data: bytes) -> Descriptor:
        digest = sha256_digest(data)
        path = self.root / "blobs" / "sha256" / digest.split(":", 1)[1]
        if not path.exists():
            path.write_bytes(data)
        return Descriptor(media_type, digest, len(data))

    def image(self, architecture: str, layer_tar: bytes, config: dict[str, Any]) -> BuiltImage:
        diff_id = sha256_digest(layer_tar)
        layer = self.put(OCI_LAYER_GZIP, gzip.compress(layer_tar, compresslevel=6, mtime=0))
        config_blob = {
            "architecture": architecture,
            "os": "linux",
            "created": EPOCH,
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": EPOCH, "created_by": "tests/support/images.py"}],
        }
        if architecture == "arm64":
            config_blob["variant"] = "v8"
        config_desc = self.put(OCI_CONFIG, canonical_json(config_blob))
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config_desc.to_dict(),
            "layers": [layer.to_dict()],
        }
        manifest_desc = self.put(OCI_MANIFEST, canonical_json(manifest))
        return BuiltImage(manifest_desc, config_desc, layer, diff_id, architecture)


def _platform(image: BuiltImage) -> dict[str, str]:
    found = {"architecture": image.architecture, "os": "linux"}
    if image.architecture == "arm64":
        found["variant"] = "v8"
    return found


def build_test_images(dest: Path) -> TestImages:
    """Write the OCI layout and docker archive under ``dest`` (which may already exist)."""
    if not BUSYBOX.is_file():
        raise RuntimeError(f"{BUSYBOX} is missing: run scripts/setup.sh test (Debian package busybox-static)")
    native = native_architecture()
    other = "amd64" if native == "arm64" else "arm64"
    writer = _LayoutWriter(dest / "oci")

    runnable_tar = _tar(
        files={"bin/busybox": BUSYBOX.read_bytes(), HELLO_PATH.lstrip("/"): HELLO_TEXT.encode()},
        symlinks={f"bin/{applet}": "busybox" for applet in APPLETS},
        directories={"bin": 0o755, "etc": 0o755, "etc/dockyard": 0o755, "tmp": 0o1777},
    )
    image = writer.image(
        native,
        runnable_tar,
        {"Env": ["PATH=/bin"], "Cmd": ["/bin/cat", HELLO_PATH], "WorkingDir": "/"},
    )
    foreign_tar = _tar(
        files={ARCH_FILE.lstrip("/"): f"{other} variant of the dockyard test image\n".encode()},
        symlinks={},
        directories={"etc": 0o755, "etc/dockyard": 0o755},
    )
    foreign = writer.image(other, foreign_tar, {"Cmd": ["/bin/true"]})

    index_body = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {**built.manifest.to_dict(), "platform": _platform(built)}
            for built in sorted((image, foreign), key=lambda built: built.architecture)
        ],
    }
    index = writer.put(OCI_INDEX, canonical_json(index_body))
    layout_index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {**image.manifest.to_dict(), "annotations": {REF_NAME: IMAGE_TAG}},
            {**index.to_dict(), "annotations": {REF_NAME: INDEX_TAG}},
        ],
    }
    (writer.root / "index.json").write_bytes(canonical_json(layout_index))

    oci_archive = dest / "layout.oci.tar"
    oci_archive.write_bytes(_tar_folder(writer.root))
    docker_archive = dest / "busybox.docker.tar"
    _write_docker_archive(docker_archive, writer, image, runnable_tar)
    return TestImages(writer.root, oci_archive, docker_archive, image, foreign, index)


def _tar_folder(root: Path) -> bytes:
    files = {str(path.relative_to(root)): path.read_bytes() for path in root.rglob("*") if path.is_file()}
    directories = {str(path.relative_to(root)): 0o755 for path in root.rglob("*") if path.is_dir()}
    return _tar(files, {}, directories)


def _write_docker_archive(path: Path, writer: _LayoutWriter, image: BuiltImage, layer_tar: bytes) -> None:
    """``docker save`` format: config JSON, uncompressed layer tar, manifest.json."""
    config_name = image.config.digest.split(":", 1)[1] + ".json"
    layer_name = image.diff_id.split(":", 1)[1] + "/layer.tar"
    manifest = [{"Config": config_name, "RepoTags": [DOCKER_ARCHIVE_TAG], "Layers": [layer_name]}]
    members = {
        config_name: (writer.root / "blobs" / "sha256" / config_name.removesuffix(".json")).read_bytes(),
        layer_name: layer_tar,
        "manifest.json": canonical_json(manifest),
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        directory = tarfile.TarInfo(layer_name.split("/", 1)[0])
        directory.type, directory.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(directory)
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(buffer.getvalue())
