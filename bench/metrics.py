"""What is measured, in which unit, and the targets (reported, never asserted)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.servers import DOCKYARD, REFERENCE

MB = 1e6


@dataclass(frozen=True)
class Verdict:
    met: bool | None  # None: no target, or nothing to judge
    detail: str = ""


# (Dockyard median, reference median, machine limits by key) -> verdict
Check = Callable[[float, float, dict[str, float]], Verdict]


@dataclass(frozen=True)
class MetricSpec:
    key: str
    label: str
    unit: str  # "MB/s", "req/s", "ms", "s", "MB"
    higher_is_better: bool
    target: str = ""
    check: Check | None = None
    limit_key: str = ""  # machine limit shown beside it
    compared: bool = True  # False: Dockyard only (the reference has no such feature)


def _ratio(d: float, r: float) -> float:
    return d / r if r else float("nan")


def at_least_ratio(x: float, ceiling_key: str = "", share: float = 0.0) -> Check:
    def check(d: float, r: float, limits: dict[str, float]) -> Verdict:
        ok = _ratio(d, r) >= x
        detail = ""
        if ceiling_key and ceiling_key in limits:
            frac = d / limits[ceiling_key]
            detail = f"{frac:.0%} of loopback"
            ok = ok and frac >= share
        return Verdict(ok, detail)

    return check


def ratio_and_floor(x: float, floor: float) -> Check:
    return lambda d, r, _limits: Verdict(_ratio(d, r) >= x and d >= floor)


def at_most_ratio(x: float) -> Check:
    return lambda d, r, _limits: Verdict(_ratio(d, r) <= x)


def at_least_ratio_only(x: float) -> Check:
    return lambda d, r, _limits: Verdict(_ratio(d, r) >= x)


def at_most(value: float) -> Check:
    return lambda d, _r, _limits: Verdict(d <= value)


def at_least(floor: float, *bounds: tuple[str, str]) -> Check:
    """An absolute floor (no reference to compare with); the detail says how far the figure
    is from each machine limit in ``bounds`` (limit key, name to show)."""

    def check(d: float, _r: float, limits: dict[str, float]) -> Verdict:
        shares = [f"{d / limits[key]:.0%} of {name}" for key, name in bounds if limits.get(key)]
        return Verdict(d >= floor, ", ".join(shares))

    return check


def growth_at_most(base_key: str, mb: float) -> Check:
    def check(d: float, _r: float, limits: dict[str, float]) -> Verdict:
        base = limits.get(base_key)
        if base is None:
            return Verdict(None)
        grew = d - base
        return Verdict(grew <= mb * MB, f"{grew / MB:+.0f} MB vs idle")

    return check


def archive_catalog(archive_size: int, docker_size: int, chunk: int) -> list[MetricSpec]:
    """The archive workloads: Dockyard only, beside the machine limits, plus two /v2 rows
    (the same layers pushed and pulled as plain blobs) that both registries run.

    The import happens while the chunks arrive (each PATCH's body is parsed, hashed and its
    blobs written to staging with O_DIRECT): it is bounded by sha256 on one core, the disk's
    O_DIRECT write speed and the server's receive path, and the upload row measures it. The
    finish (PUT ?wait=true) only resolves the images, so it is shown in seconds."""
    oci, docker = _size(archive_size), _size(docker_size)
    floor_in = at_least(600 * MB, ("sha256", "sha256"), ("disk_write_direct", "O_DIRECT write"))
    floor_out = at_least(1000 * MB, ("export_ceiling", "loopback"))
    return [
        MetricSpec(
            "archive_import",
            f"archive import OCI {oci}: upload+finish+version",
            "MB/s",
            True,
            "≥600 MB/s",
            floor_in,
            "sha256",
            compared=False,
        ),
        MetricSpec(
            "archive_upload",
            f"  upload, imported as it arrives ({_size(chunk)} PATCHes)",
            "MB/s",
            True,
            limit_key="disk_write_direct",
            compared=False,
        ),
        MetricSpec(
            "archive_import_phase",  # the key from when this phase read a spooled archive back
            "  finish (PUT ?wait=true): resolve images",
            "s",
            False,
            compared=False,
        ),
        MetricSpec(
            "package_index",
            f"  package index of that version ({oci}: layers streamed, decompressed, read)",
            "MB/s",
            True,
            compared=False,
        ),
        MetricSpec(
            "archive_reimport",
            "archive re-import, same archive (dedup)",
            "MB/s",
            True,
            limit_key="sha256",
            compared=False,
        ),
        MetricSpec(
            "archive_import_docker",
            f"archive import docker-save {docker} (gzip -6)",
            "MB/s",
            True,
            limit_key="gzip6",
            compared=False,
        ),
        MetricSpec(
            "archive_layers_push",
            "same layers pushed via /v2 (blob PUTs)",
            "MB/s",
            True,
            limit_key="disk_write",
        ),
        MetricSpec(
            "archive_export",
            f"archive download docker {oci} (curl)",
            "MB/s",
            True,
            "≥1,000 MB/s",
            floor_out,
            "export_ceiling",
            compared=False,
        ),
        MetricSpec(
            "archive_export_oci",
            f"archive download OCI {oci} (curl)",
            "MB/s",
            True,
            "≥1,000 MB/s",
            floor_out,
            "export_ceiling",
            compared=False,
        ),
        MetricSpec(
            "archive_layers_pull",
            "same layers pulled via /v2 (curl)",
            "MB/s",
            True,
            limit_key="export_ceiling",
        ),
    ]


def cache_catalog(layers: int) -> list[MetricSpec]:
    """The pull-through cache rows (``bench/workloads/pull_cache.py``): each registry's cache
    against pulling without it; the ratios are per round (paired), then the median."""
    return [
        MetricSpec(
            "cache_upstream_s", f"pull straight from the upstream, {layers} layers (skopeo)", "s", False
        ),
        MetricSpec("cache_cold_s", "pull through the cache, cold (fresh cache)", "s", False),
        MetricSpec(
            "cache_cold_ratio",
            "  cold through cache ÷ straight from upstream",
            "x",
            False,
            "≤1.15x",
            at_most(1.15),
        ),
        MetricSpec("cache_direct_s", "pull of the same image pushed to the registry", "s", False),
        MetricSpec("cache_warm_s", "pull through the cache, warm", "s", False),
        MetricSpec(
            "cache_warm_ratio", "  warm through cache ÷ direct pull", "x", False, "≤1.05x", at_most(1.05)
        ),
    ]


def token_catalog(conns: int) -> list[MetricSpec]:
    """Token issuance (Dockyard only): ``GET /auth/token`` with Basic credentials, ``conns``
    concurrent clients. Robot and personal access tokens are random secrets checked with one
    SHA-256 and an indexed lookup: the target is for them; a password is checked with argon2
    once and then remembered (see the README's security section)."""

    def rps(kind: str, label: str, target: str = "") -> MetricSpec:
        check = at_least(1000.0) if target else None
        label = f"token issuance, {label} ({conns} clients, hey)"
        return MetricSpec(f"tokens_{kind}_rps", label, "req/s", True, target, check, compared=False)

    return [
        rps("robot", "robot token", "≥1,000/s"),
        rps("pat", "personal access token", "≥1,000/s"),
        rps("password", "password"),
        MetricSpec("tokens_password_p99", "  password p99", "ms", False, compared=False),
    ]


def ratio_beside(x: float, at_least: bool, ceiling_key: str = "", name: str = "") -> Check:
    """At least (or at most) ``x`` times the reference; the detail gives the share of the
    machine limit ``ceiling_key`` (reported, not judged)."""

    def check(d: float, r: float, limits: dict[str, float]) -> Verdict:
        ratio = _ratio(d, r)
        ok = ratio >= x if at_least else ratio <= x
        detail = f"{d / limits[ceiling_key]:.0%} of {name}" if limits.get(ceiling_key) else ""
        return Verdict(ok, detail)

    return check


def share_of(ceiling_key: str, name: str) -> Check:
    """No target: the detail gives the share of the machine limit ``ceiling_key`` (a row with
    nothing to compare but a ceiling)."""

    def check(d: float, _r: float, limits: dict[str, float]) -> Verdict:
        return Verdict(None, f"{d / limits[ceiling_key]:.0%} of {name}" if limits.get(ceiling_key) else "")

    return check


def s3_catalog(blob_size: int, layers: int, layer_size: int) -> list[MetricSpec]:
    """The S3 rows (``bench/workloads/s3.py``): both registries on the same Ceph radosgw,
    beside the bucket's own PUT and GET (the raw ceilings); the region copy (Dockyard only,
    ``bench/workloads/s3_region.py``) beside the raw PUT."""
    blob, layer = _size(blob_size), _size(layer_size)
    return [
        MetricSpec(
            "s3_blob_get_1",
            f"S3: blob GET {blob}, 1 client (curl)",
            "MB/s",
            True,
            "≥1.2x ref",
            ratio_beside(1.2, True, "s3_raw_get", "raw GET"),
            "s3_raw_get",
        ),
        MetricSpec(
            "s3_blob_put_mono",
            f"S3: blob PUT {blob}, monolithic",
            "MB/s",
            True,
            "≥2x ref",
            ratio_beside(2.0, True, "s3_raw_put", "raw PUT"),
            "s3_raw_put",
        ),
        MetricSpec("s3_image_push_s", f"S3: image push, {layers} x {layer} (skopeo)", "s", False),
        MetricSpec("s3_image_pull_s", f"S3: image pull, {layers} x {layer} (skopeo)", "s", False),
        MetricSpec("s3_image_total_s", "S3: image push + pull", "s", False, "≤0.7x ref", at_most_ratio(0.7)),
        MetricSpec(
            "s3_region_copy",
            f"S3: region copy {blob}, folder → bucket (Dockyard)",
            "MB/s",
            True,
            check=share_of("s3_raw_put", "raw PUT"),
            limit_key="s3_raw_put",
            compared=False,
        ),
    ]


def _size(n: int) -> str:
    return f"{n / 2**30:g} GiB" if n >= 2**30 else f"{n / 2**20:g} MiB"


def catalog(
    get_clients: int,
    conns: int,
    layers: int,
    archive_size: int = 2**30,
    docker_size: int = 2**28,
    archive_chunk: int = 2**26,
    blob_size: int = 2**30,
    layer_size: int = 2**24,
) -> list[MetricSpec]:
    specs = _registry_catalog(get_clients, conns, layers)
    memory = next(i for i, spec in enumerate(specs) if spec.key == "rss_idle")  # memory rows last
    archives = archive_catalog(archive_size, docker_size, archive_chunk)
    s3 = s3_catalog(blob_size, layers, layer_size)
    return [*specs[:memory], *archives, *token_catalog(conns), *s3, *specs[memory:]]


def _registry_catalog(n: int, conns: int, layers: int) -> list[MetricSpec]:
    return [
        MetricSpec(
            "blob_get_1",
            "blob GET, 1 client",
            "MB/s",
            True,
            "≥1.2x ref, ≥85% loopback",
            at_least_ratio(1.2, "get_ceiling_1", 0.85),
            "get_ceiling_1",
        ),
        MetricSpec(
            "blob_get_n",
            f"blob GET, {n} clients",
            "MB/s",
            True,
            "≥1.3x ref, ≥85% loopback",
            at_least_ratio(1.3, "get_ceiling_n", 0.85),
            "get_ceiling_n",
        ),
        MetricSpec(
            "blob_put_mono",
            "blob PUT, monolithic",
            "MB/s",
            True,
            "≥3x ref, ≥800 MB/s",
            ratio_and_floor(3.0, 800 * MB),
            "disk_write",
        ),
        MetricSpec(
            "blob_put_chunked",
            "blob PUT, chunked",
            "MB/s",
            True,
            "≥3x ref, ≥800 MB/s",
            ratio_and_floor(3.0, 800 * MB),
            "disk_write",
        ),
        MetricSpec(
            "manifest_head_rps",
            f"manifest HEAD req/s ({conns} conns, hey)",
            "req/s",
            True,
            "≥15x ref",
            at_least_ratio_only(15.0),
            "head_ceiling",
        ),
        MetricSpec("manifest_head_p50", "manifest HEAD p50", "ms", False),
        MetricSpec("manifest_head_p99", "manifest HEAD p99", "ms", False, "≤15 ms", at_most(15.0)),
        MetricSpec(
            "manifest_get_rps",
            f"manifest GET req/s ({conns} conns, wrk)",
            "req/s",
            True,
            "≥15x ref",
            at_least_ratio_only(15.0),
            "get_manifest_ceiling",
        ),
        MetricSpec("manifest_get_p50", "manifest GET p50", "ms", False),
        MetricSpec("manifest_get_p99", "manifest GET p99", "ms", False, "≤15 ms", at_most(15.0)),
        MetricSpec("image_push_s", f"image push, {layers} layers (skopeo)", "s", False),
        MetricSpec("image_pull_s", f"image pull, {layers} layers (skopeo)", "s", False),
        MetricSpec("image_total_s", "image push + pull", "s", False, "≤0.6x ref", at_most_ratio(0.6)),
        *cache_catalog(layers),
        MetricSpec("rss_idle", "RSS idle, whole tree", "MB", False, "≤150 MB", at_most(150 * MB)),
        MetricSpec(
            "rss_peak_get",
            "RSS peak during blob GET",
            "MB",
            False,
            "≤ idle + 64 MB",
            growth_at_most("rss_idle_dockyard", 64),
        ),
        MetricSpec(
            "rss_idle_end",
            "RSS idle after all workloads",
            "MB",
            False,
            "≤ idle + 32 MB",
            growth_at_most("rss_idle_dockyard", 32),
        ),
    ]


@dataclass
class Results:
    """Samples by metric and registry, plus errors met on the way."""

    samples: dict[str, dict[str, list[float]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )
    extras: list[dict[str, object]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def add(self, key: str, registry: str, value: float, **extra: object) -> None:
        self.samples[key][registry].append(value)
        if extra:
            self.extras.append({"metric": key, "registry": registry, "value": value, **extra})

    def median(self, key: str, registry: str) -> float | None:
        values = self.samples.get(key, {}).get(registry, [])
        return statistics.median(values) if values else None


@dataclass(frozen=True)
class Row:
    spec: MetricSpec
    dockyard: float | None
    reference: float | None
    ratio: float | None
    verdict: Verdict
    limit: float | None


def rows(specs: list[MetricSpec], results: Results, limits: dict[str, float]) -> list[Row]:
    context = dict(limits)
    idle = results.median("rss_idle", DOCKYARD)
    if idle is not None:
        context["rss_idle_dockyard"] = idle
    out: list[Row] = []
    for spec in specs:
        d = results.median(spec.key, DOCKYARD)
        r = results.median(spec.key, REFERENCE)
        if d is None and r is None:
            continue
        ratio = d / r if d is not None and r else None
        verdict = Verdict(None)
        if spec.check is not None and d is not None and (r is not None or not spec.compared):
            verdict = spec.check(d, float("nan") if r is None else r, context)
        out.append(Row(spec, d, r, ratio, verdict, limits.get(spec.limit_key)))
    return out
