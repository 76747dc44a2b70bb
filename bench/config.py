"""Sizes and durations of one benchmark run (default and ``--quick``)."""

from __future__ import annotations

from dataclasses import dataclass, replace

MiB = 1024 * 1024
GiB = 1024 * MiB

WORKLOADS = (
    "blob-get",
    "blob-put",
    "manifest",
    "image",
    "archive-import",
    "archive-export",
    "pull-cache",
    "token-issuance",
    "s3",
)
OPT_IN = ("s3",)  # run only when asked (--only s3, or --s3): they start Ceph radosgw


@dataclass(frozen=True)
class BenchConfig:
    rounds: int = 3
    blob_size: int = GiB  # blob GET and PUT
    chunk_size: int = 64 * MiB  # chunked PUT
    get_clients: int = 8
    get_repeats: int = 2  # sequential GETs per 1-client sample (smooths scheduling noise)
    manifest_seconds: int = 10
    manifest_connections: int = 64
    image_layers: int = 20
    layer_size: int = 16 * MiB  # 20 x 16 MiB = 320 MiB of incompressible data
    limit_bytes: int = GiB  # sha256, loopback and disk probes
    archive_size: int = GiB  # OCI archive of gzip layers (archive import and export)
    archive_layer_size: int = 64 * MiB
    archive_chunk_size: int = 64 * MiB  # PATCH size, as the CLI's default --chunk-size
    docker_archive_size: int = 256 * MiB  # docker-save archive: the server gzips every byte (slow)
    available_timeout: float = 300.0  # catalog inspection of an imported version
    tool_ceiling_seconds: int = 3  # wrk/hey against a trivial server
    http_timeout: float = 300.0
    skopeo_timeout: float = 600.0
    quick: bool = False

    @classmethod
    def quick_config(cls) -> BenchConfig:
        return cls(
            rounds=1,
            blob_size=8 * MiB,
            chunk_size=2 * MiB,
            get_repeats=1,
            manifest_seconds=1,
            image_layers=3,
            layer_size=1 * MiB,
            limit_bytes=64 * MiB,
            archive_size=32 * MiB,
            archive_layer_size=4 * MiB,
            archive_chunk_size=8 * MiB,
            docker_archive_size=8 * MiB,
            available_timeout=60.0,
            tool_ceiling_seconds=1,
            http_timeout=60.0,
            skopeo_timeout=60.0,
            quick=True,
        )

    def with_rounds(self, rounds: int | None) -> BenchConfig:
        return self if rounds is None else replace(self, rounds=rounds)
