"""Workloads 6 and 7: image archives in and out of Dockyard (``/api/v1/archives``, downloads).

The reference registry has no archive feature, so these rows are Dockyard's absolute
throughput beside the machine limits (sha256, disk write with O_DIRECT, gzip, the curl
download ceiling). For context, both registries also take the same layers as plain blobs
over /v2: pushed with the blob PUT path (``sendfile`` from the archive file) and pulled with
curl.

``/api/v1`` needs users, so the archive rows use a Dockyard of their own in token mode
(started at the first archive workload, its admin from ``bench.servers``); the Dockyard in
the comparison slot (dev mode) takes the /v2 rows, as in the other workloads.

archive-import, each round (fresh layers every round, in a fresh workspace, so no import
finds its layers stored already):

- OCI archive of ``archive_size`` bytes of gzip layers: upload (64 MiB PATCHes; the server
  imports each chunk as it arrives: tar parsed, blobs hashed and written to staging, the
  archive itself never written), finish (``PUT ?wait=true``: the import resolves the images,
  manifests and configs, and checks them), create the version; MB/s of the archive over the
  three and over the upload alone, and the finish's seconds (client-side times);
- the same archive again into a new version: the dedup path (its blobs are stored, so the
  import compares instead of writing);
- a docker-save archive (uncompressed layers, ``docker_archive_size``): the server gzips them.

archive-export, each round: the last imported version downloaded with curl into /dev/null,
docker and OCI format; the curl ceiling against a trivial sendfile server of the same size.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field

from bench import loadtools
from bench.api_client import API, ApiClient, ImportTiming, archive_path
from bench.archive_data import Archive, build_docker_archive, build_oci_archive
from bench.limits import MACHINE, disk_write_direct, gzip_speed, trivial_server
from bench.registry_client import RegistryClient
from bench.servers import DOCKYARD, Server, start_dockyard
from bench.workloads.base import Context

IMAGE = "archive"  # the image name in each round's workspace
API_SERVER = "dockyard-api"
LOOPBACK = "127.0.0.1"  # DOCKYARD_OUTBOUND_ALLOW
V2_REPO = "bench/archive-layers"
MB = 1e6


@dataclass(frozen=True)
class Imported:
    image: str  # <workspace>/archive in the catalog
    version: str
    archive: Archive


@dataclass
class ArchiveLab:
    """What the two archive workloads share: the token-mode server, the current archive,
    the last imported version and which archive's layers each registry holds over /v2."""

    server: Server | None = None
    archive: Archive | None = None
    archive_key: object = None
    imported: Imported | None = None
    pushed: dict[str, Archive] = field(default_factory=dict)

    def api_server(self, ctx: Context) -> Server:
        if self.server is None:
            # The pull-through cache rows use it too, with an upstream on loopback.
            server = start_dockyard(
                ctx.tmp / API_SERVER, API_SERVER, token_mode=True, outbound_allow=LOOPBACK
            )
            ctx.stack.callback(server.stop)
            ctx.note(f"{API_SERVER}: token-mode Dockyard for /api/v1 (pid {server.pid}, {server.url})")
            self.server = server
        return self.server

    def client(self, ctx: Context) -> ApiClient:
        server = self.api_server(ctx)
        if server.credentials is None:
            raise RuntimeError(f"{server.name} does not run in token mode")
        return ApiClient(server.port, server.credentials, ctx.cfg.http_timeout)

    def oci_archive(self, ctx: Context, key: object) -> Archive:
        """The OCI archive for ``key`` (a round): built once, shared by both registries' turns.
        The previous one is removed unless a version still needs it for the export rows."""
        if self.archive is not None and self.archive_key == key:
            return self.archive
        old = self.archive
        cfg = ctx.cfg
        path = ctx.tmp / f"archive-{uuid.uuid4().hex[:8]}.tar"
        self.archive = build_oci_archive(path, ctx.source, cfg.archive_size, cfg.archive_layer_size)
        self.archive_key = key
        if old is not None and (self.imported is None or self.imported.archive is not old):
            old.path.unlink(missing_ok=True)
        return self.archive

    def set_imported(self, imported: Imported) -> None:
        """The version the export rows download; the archive file of the previous one goes."""
        previous, self.imported = self.imported, imported
        if previous is not None and previous.archive not in (imported.archive, self.archive):
            previous.archive.path.unlink(missing_ok=True)

    def import_untimed(self, ctx: Context, archive: Archive) -> Imported:
        """Import ``archive`` into a fresh workspace and wait until the version is available."""
        with self.client(ctx) as client:
            workspace = _workspace("export")
            client.create_workspace(workspace)
            _import(ctx, client, workspace, archive, IMAGE, "export")
        imported = Imported(f"{workspace}/{IMAGE}", "export", archive)
        self.set_imported(imported)
        return imported

    def push_layers(self, ctx: Context, server: Server, archive: Archive) -> float:
        """The archive's layers, config and manifest pushed over /v2 as plain blobs, one after
        the other on one connection (bytes/s, wall clock from the first POST to the manifest)."""
        fd = os.open(archive.path, os.O_RDONLY)
        try:
            with RegistryClient(server.port, ctx.cfg.http_timeout) as client:
                start = time.perf_counter()
                for layer in archive.layers:
                    client.upload_monolithic(V2_REPO, fd, layer.size, layer.digest, layer.offset)
                client.push_bytes(V2_REPO, archive.config)
                client.put_manifest(V2_REPO, archive.tag, archive.manifest)
                seconds = time.perf_counter() - start
        finally:
            os.close(fd)
        self.pushed[server.name] = archive
        return archive.blob_bytes / seconds


def _workspace(label: str) -> str:
    return f"bench-{label}-{uuid.uuid4().hex[:8]}"


def _import(
    ctx: Context, client: ApiClient, workspace: str, archive: Archive, image: str, version: str
) -> ImportTiming:
    fd = os.open(archive.path, os.O_RDONLY)
    try:
        os.sync()  # earlier writes must not be flushed on this import's time
        timing = client.import_archive(workspace, archive, fd, ctx.cfg.archive_chunk_size, image, version)
    finally:
        os.close(fd)
    # The catalog inspects the new version in the background (it reads every layer once):
    # wait for it, untimed, so that it does not run during the next measurement.
    client.wait_available(f"{workspace}/{image}", version, ctx.cfg.available_timeout)
    # Then it indexes the packages of its filesystem (it reads every layer again): waited for too.
    client.wait_packages(f"{workspace}/{image}", version, ctx.cfg.available_timeout)
    return timing


def _details(timing: ImportTiming, archive: Archive) -> dict[str, object]:
    status = timing.status
    return {
        "archive_bytes": archive.size,
        "format": archive.fmt,
        "upload_s": timing.upload,  # the import happens here, chunk by chunk
        "finish_s": timing.finish,
        "version_s": timing.version,
        "bytes_written": status.get("bytes_written"),
        "bytes_deduplicated": status.get("bytes_deduplicated"),
    }


class ArchiveImport:
    name = "archive-import"
    phase = "archive_import"

    def __init__(self, lab: ArchiveLab) -> None:
        self.lab = lab

    def prepare(self, ctx: Context, server: Server) -> None:
        if server.name == DOCKYARD and MACHINE not in ctx.results.samples.get("gzip6", {}):
            cfg = ctx.cfg
            gzip = gzip_speed(ctx.source, cfg.limit_bytes // 4)
            ctx.results.add("gzip6", MACHINE, gzip)
            write = disk_write_direct(ctx.tmp, ctx.source, cfg.limit_bytes)
            how = "O_DIRECT"
            if write.direct:
                ctx.results.add("disk_write_direct", MACHINE, write.rate)
            else:
                how = "buffered + fdatasync: O_DIRECT refused"
                ctx.results.add(
                    "disk_write_direct",
                    MACHINE,
                    write.rate,
                    label="disk write, buffered + fdatasync (O_DIRECT refused)",
                    note="this filesystem refuses O_DIRECT: buffered writes, fdatasync every "
                    "64 MiB and fsync, as the import then writes its blobs",
                )
            ctx.note(
                f"limits    gzip -6 one core {gzip / MB:,.0f} MB/s, "
                f"disk write ({how}) {write.rate / MB:,.0f} MB/s"
            )
        if server.kind == "dockyard":
            self.lab.api_server(ctx)  # started now, untimed (the admin's password hash takes a moment)

    def run(self, ctx: Context, server: Server, round_no: int) -> None:
        archive = self.lab.oci_archive(ctx, ("import", round_no))
        if server.kind == "dockyard":  # not with --dockyard-as-reference: the slot holds no Dockyard
            self._archives(ctx, archive, round_no)
        os.sync()
        push = self.lab.push_layers(ctx, server, archive)
        ctx.results.add("archive_layers_push", server.name, push, bytes=archive.blob_bytes)
        ctx.say(f"same layers pushed via /v2 {push / MB:,.0f} MB/s ({archive.blob_bytes / MB:,.0f} MB)")

    def _archives(self, ctx: Context, archive: Archive, round_no: int) -> None:
        cfg, results = ctx.cfg, ctx.results
        version = f"r{round_no + 1}"
        with self.lab.client(ctx) as client:
            workspace = _workspace(f"r{round_no + 1}")
            client.create_workspace(workspace)

            timing = _import(ctx, client, workspace, archive, IMAGE, version)
            size = archive.size
            results.add("archive_import", DOCKYARD, size / timing.total, **_details(timing, archive))
            results.add("archive_upload", DOCKYARD, size / timing.upload)
            results.add("archive_import_phase", DOCKYARD, timing.finish)  # seconds: it moves no bytes
            self.lab.set_imported(Imported(f"{workspace}/{IMAGE}", version, archive))
            scan, seconds = client.wait_packages(f"{workspace}/{IMAGE}", version, cfg.available_timeout)
            read = int(scan["bytes_read"])
            results.add(
                "package_index", DOCKYARD, read / seconds, bytes=read, seconds=seconds, state=scan["state"]
            )
            ctx.say(
                f"package index of that version: {read / MB:,.0f} MB of layers read in {seconds:.2f} s "
                f"({read / seconds / MB:,.0f} MB/s, scan {scan['state']})"
            )
            ctx.say(
                f"archive import {size / MB:,.0f} MB OCI: {size / timing.total / MB:,.0f} MB/s "
                f"(upload {timing.upload:.2f} s, finish {timing.finish:.2f} s, "
                f"version {timing.version:.2f} s)"
            )

            again = _import(ctx, client, workspace, archive, IMAGE, f"{version}-again")
            deduplicated = int(again.status.get("bytes_deduplicated") or 0)
            layer_bytes = sum(m.size for m in archive.layers)
            if deduplicated < layer_bytes:
                raise RuntimeError(f"re-import deduplicated {deduplicated} of {layer_bytes} layer bytes")
            results.add("archive_reimport", DOCKYARD, size / again.total, **_details(again, archive))
            ctx.say(
                f"archive re-import (dedup) {size / again.total / MB:,.0f} MB/s "
                f"(upload {again.upload:.2f} s, finish {again.finish:.2f} s, version {again.version:.2f} s)"
            )

            path = ctx.tmp / f"docker-{round_no}.tar"
            try:
                docker = build_docker_archive(
                    path, ctx.source, cfg.docker_archive_size, cfg.archive_layer_size
                )
                timing = _import(ctx, client, workspace, docker, f"{IMAGE}-docker", version)
            finally:
                path.unlink(missing_ok=True)
            rate = docker.size / timing.total
            results.add("archive_import_docker", DOCKYARD, rate, **_details(timing, docker))
            ctx.say(
                f"archive import {docker.size / MB:,.0f} MB docker-save: {rate / MB:,.0f} MB/s "
                f"(upload {timing.upload:.2f} s, finish {timing.finish:.2f} s, "
                f"version {timing.version:.2f} s)"
            )


class ArchiveExport:
    name = "archive-export"
    phase = "archive_export"

    def __init__(self, lab: ArchiveLab) -> None:
        self.lab = lab
        self.ceiling_rounds: set[int] = set()
        self.ceiling_url = ""
        self.token = ""
        self.sizes: dict[str, int] = {}

    def _archive(self, ctx: Context) -> Archive:
        """The archive whose layers the /v2 rows pull: the last imported one, else a new one."""
        if self.lab.imported is not None:
            return self.lab.imported.archive
        return self.lab.oci_archive(ctx, "export")

    def prepare(self, ctx: Context, server: Server) -> None:
        archive = self._archive(ctx)
        if server.kind == "dockyard":
            imported = self.lab.imported or self.lab.import_untimed(ctx, archive)
            with self.lab.client(ctx) as client:
                self.token = self.token or client.create_token("bench-export")
                for fmt in ("docker", "oci"):
                    self.sizes[fmt] = client.archive_size(imported.image, imported.version, fmt)
            for fmt in ("docker", "oci"):  # warm-up: the blobs were written past the page cache
                self._download(ctx, fmt)
        if self.lab.pushed.get(server.name) is not archive:
            self.lab.push_layers(ctx, server, archive)
        self._pull_layers(ctx, server, archive)  # warm-up

    def _url(self, fmt: str) -> str:
        server, imported = self.lab.server, self.lab.imported
        if server is None or imported is None:
            raise RuntimeError("no imported version to download")
        return f"{server.url}{API}{archive_path(imported.image, imported.version, fmt)}"

    def _download(self, ctx: Context, fmt: str) -> float:
        headers = {"Authorization": f"Bearer {self.token}"}
        return loadtools.curl_get(self._url(fmt), self.sizes[fmt], 1, 1, ctx.cfg.http_timeout, headers)

    @staticmethod
    def _pull_layers(ctx: Context, server: Server, archive: Archive) -> float:
        urls = [f"{server.url}/v2/{V2_REPO}/blobs/{m.digest}" for m in archive.layers]
        return loadtools.curl_many(urls, [m.size for m in archive.layers], 1, ctx.cfg.http_timeout)

    def _ceiling(self, ctx: Context, archive: Archive) -> None:
        if not self.ceiling_url:
            port = ctx.stack.enter_context(trivial_server("sendfile", str(archive.path)))
            self.ceiling_url = f"http://127.0.0.1:{port}/blob"
            loadtools.curl_get(self.ceiling_url, archive.size, 1, 1, ctx.cfg.http_timeout)
        rate = loadtools.curl_get(self.ceiling_url, archive.size, 1, 1, ctx.cfg.http_timeout)
        ctx.results.add("export_ceiling", MACHINE, rate)
        ctx.note(
            f"ceiling   archive download 1 client {rate / MB:,.0f} MB/s (curl vs trivial sendfile server)"
        )

    def run(self, ctx: Context, server: Server, round_no: int) -> None:
        archive = self._archive(ctx)
        if round_no not in self.ceiling_rounds:  # once per round, between the registries' turns
            self.ceiling_rounds.add(round_no)
            self._ceiling(ctx, archive)
        if server.kind == "dockyard":
            docker = self._download(ctx, "docker")
            oci = self._download(ctx, "oci")
            ctx.results.add("archive_export", DOCKYARD, docker, bytes=self.sizes["docker"])
            ctx.results.add("archive_export_oci", DOCKYARD, oci, bytes=self.sizes["oci"])
            ctx.say(f"archive download docker {docker / MB:,.0f} MB/s, OCI {oci / MB:,.0f} MB/s")
        pull = self._pull_layers(ctx, server, archive)
        ctx.results.add("archive_layers_pull", server.name, pull)
        ctx.say(f"same layers pulled via /v2 {pull / MB:,.0f} MB/s")
