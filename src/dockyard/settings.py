"""Typed settings, read from ``DOCKYARD_*`` environment variables and an optional TOML file.

Precedence (highest first): explicit keyword arguments (the CLI), environment variables,
the TOML file named by ``DOCKYARD_CONFIG``, then the defaults below. Backend names pick
implementations in :mod:`dockyard.app`; an unknown name is an error, never a silent fallback.
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from dockyard.outbound import checked_entries, setting_entries

MAX_SIZE = 2**53 - 1  # sizes: 8 PiB, exact in every JSON reader
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgtp]?i?b?)?\s*$", re.IGNORECASE)
_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5}


def parse_size(value: object, *, none_ok: bool = False) -> int | None:
    """A size in bytes from an integer or a string such as ``500``, ``1.5GiB``, ``2 TB``, ``300M``
    (``KiB``/``MiB``/... are powers of 1024, ``kB``/``MB``/... and a bare ``k``/``M`` powers of
    1000, as docker prints them); from 0 to :data:`MAX_SIZE`. ValueError otherwise (also for
    NaN, infinities, negatives and booleans); ``None``/empty is None when ``none_ok``."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if none_ok:
            return None
        raise ValueError("a size is required")
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{str(value)[:40]!r} is not a size")
    if isinstance(value, (int, float)):
        number = float(value)
        if not math.isfinite(number) or number != int(number) or not 0 <= value <= MAX_SIZE:
            raise ValueError(f"{value!r} is not a whole number of bytes from 0 to {MAX_SIZE}")
        return int(value)
    match = _SIZE.fullmatch(value)
    if match is None:
        raise ValueError(f"{value[:40]!r} is not a size (examples: 1073741824, 500MiB, 1.5GiB, 2TB)")
    unit = (match[2] or "").lower().removesuffix("b")
    prefix = unit.removesuffix("i")
    if prefix not in _POWERS or (unit.endswith("i") and not prefix):
        raise ValueError(f"{value[:40]!r} is not a size (examples: 1073741824, 500MiB, 1.5GiB, 2TB)")
    size = float(match[1]) * (1024 if unit.endswith("i") else 1000) ** _POWERS[prefix]
    if not math.isfinite(size) or size > MAX_SIZE:
        raise ValueError(f"{value[:40]!r} is more than {MAX_SIZE} bytes")
    return int(size)


def _optional_size(value: object) -> int | None:
    return parse_size(value, none_ok=True)


REGION_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")


class RegionStorage(BaseModel):
    """Where one region keeps its blobs: a folder, or an S3 bucket (the ``s3_*`` settings' names
    without their prefix)."""

    model_config = ConfigDict(extra="forbid")

    driver: Literal["filesystem", "s3"] = "filesystem"
    root: Path | None = None
    endpoint: str = ""
    bucket: str = ""
    access_key: str = ""
    secret_key: SecretStr = SecretStr("")
    region: str = "us-east-1"
    path_style: bool = True
    prefix: str = ""

    @model_validator(mode="after")
    def _check(self) -> RegionStorage:
        if self.driver == "filesystem" and self.root is None:
            raise ValueError("a filesystem region needs its root folder")
        if self.driver == "s3" and not (self.bucket and self.access_key):
            raise ValueError("an s3 region needs bucket, access_key and secret_key")
        if self.prefix and not self.prefix.endswith("/"):
            raise ValueError(f"a region's prefix must end with '/', not {self.prefix!r}")
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DOCKYARD_", extra="forbid")

    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(5000, ge=0, le=65535, description="TCP port to listen on.")
    workers: int = Field(0, ge=0, description="Server processes; 0 picks one per CPU core (at most 4).")
    data_dir: Path = Field(
        Path("dockyard-data"), description="Folder for the SQLite database, blobs and keys."
    )
    database_url: str = Field(
        "",
        description="SQLAlchemy async URL (postgresql+asyncpg://user@host/db); empty: SQLite in data_dir.",
    )
    storage_driver: Literal["filesystem", "s3"] = Field(
        "filesystem", description="Blob storage backend: filesystem (storage_root) or s3 (the s3_* settings)."
    )
    storage_root: Path | None = Field(None, description="Filesystem driver root; default data_dir/storage.")
    s3_endpoint: str = Field("", description="S3 endpoint URL (http://host:port); empty: AWS for s3_region.")
    s3_bucket: str = Field("", description="S3 bucket holding the blobs (created when missing).")
    s3_access_key: str = Field("", description="S3 access key id.")
    s3_secret_key: SecretStr = Field(SecretStr(""), description="S3 secret access key.")
    s3_region: str = Field("us-east-1", description="S3 region (signing).")
    s3_path_style: bool = Field(True, description="Path-style bucket addressing (false: virtual-hosted).")
    s3_prefix: str = Field("", description="Key prefix inside the bucket, ending in '/' (e.g. dockyard/).")
    s3_redirect: bool = Field(
        False, description="Blob GETs redirect to a presigned S3 URL instead of streaming through Dockyard."
    )
    default_region: str = Field(
        "default", description="Name of the region the storage_* settings describe: new pushes land there."
    )
    regions: dict[str, RegionStorage] = Field(
        default_factory=dict,
        description="Further regions, name -> storage (JSON or a TOML table): "
        '{"us": {"driver": "s3", "endpoint": "...", "bucket": "...", "access_key": "...", '
        '"secret_key": "..."}, "eu": {"driver": "filesystem", "root": "/srv/eu"}}.',
    )
    region: str = Field(
        "", description="The region this replica runs in (serves blobs from); empty: the default."
    )
    auth_mode: Literal["token", "dev", "basic"] = Field(
        "token",
        description=(
            "token: users, workspaces and Docker token authentication (the default); "
            "dev: anonymous pull and push for loopback clients only (development mode); "
            "basic: every registry request needs the admin user's credentials."
        ),
    )
    admin_username: str = Field(
        "", description="The first admin, created on first start (token mode: default 'admin')."
    )
    admin_password: SecretStr = Field(
        SecretStr(""),
        description="Password of the first admin; empty in token mode: generated, logged once and "
        "written to data_dir/admin-password.",
    )
    public_url: str = Field(
        "",
        description="External base URL (https://registry.example.org) for the token realm; "
        "empty: taken from each request's Host header.",
    )
    token_service: str = Field("dockyard", description="The service name in tokens (their audience).")
    token_issuer: str = Field("dockyard", description="The issuer name in tokens.")
    token_ttl_seconds: int = Field(300, ge=60, le=86400, description="Registry token lifetime.")
    token_key_file: Path | None = Field(
        None, description="EC P-256 private key (PEM) that signs tokens; default: generated in data_dir/keys."
    )
    token_previous_key_files: list[Path] = Field(
        default_factory=list, description="Older keys whose tokens still verify (during a rotation)."
    )
    refresh_token_days: float = Field(90.0, gt=0, description="Lifetime of 'docker login' identity tokens.")
    credentials_key_file: Path | None = Field(
        None,
        description="Fernet key encrypting the registry credentials workspaces keep; default: "
        "generated in data_dir/keys (replicas must share it).",
    )
    upstream_insecure: list[str] = Field(
        default_factory=list,
        description="Registries (host[:port]) spoken to over plain HTTP when verifying external images; "
        "loopback addresses always are.",
    )
    ecr_endpoint_url: str | None = Field(
        None,
        description="The ECR API endpoint ECR registry profiles exchange their access keys at; default: "
        "AWS's own for the profile's region (tests point it at a local emulator).",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Reverse proxies (IP addresses or CIDR blocks, as a JSON list) whose "
        "X-Forwarded-For header names the client: its rightmost address that is not itself a "
        "trusted proxy. From any other peer the header is ignored. Empty: never read it.",
    )
    outbound_allow: Annotated[
        list[str], NoDecode, BeforeValidator(setting_entries), AfterValidator(checked_entries)
    ] = Field(
        default_factory=list,
        description="Loopback, private or link-local destinations the server may connect to on a "
        "user's behalf (verifying external images, git clones, pushes to external registries, webhook "
        "receivers): "
        "networks or addresses (10.20.0.0/16, 127.0.0.1), address:port ([::1]:5000) or host[:port] "
        "(registry.lab:5000); a JSON list or comma-separated. Empty: public addresses only.",
    )
    login_max_failures: int = Field(
        10, ge=1, description="Failed logins per user and address before a lockout."
    )
    login_max_failures_per_ip: int = Field(
        100, ge=1, description="Failed logins per address before a lockout."
    )
    login_window_seconds: float = Field(900.0, gt=0, description="Window in which failed logins are counted.")
    login_lockout_seconds: float = Field(900.0, gt=0, description="How long a lockout lasts.")
    max_manifest_bytes: int = Field(4 * 1024 * 1024, gt=0, description="Largest manifest accepted.")
    gc_interval_seconds: float = Field(3600.0, ge=0, description="Online GC period; 0 disables it.")
    retention_check_seconds: float = Field(
        300.0,
        ge=0,
        le=86400,
        description="How often due retention rules are queued; 0 disables the schedule.",
    )
    pull_flush_seconds: float = Field(
        60.0, gt=0, le=86400, description="How often pull times (for retention) are written, in one batch."
    )
    gc_grace_seconds: float = Field(
        3600.0, ge=0, description="Unreferenced blobs and untagged manifests younger than this are kept."
    )
    upload_purge_seconds: float = Field(
        7 * 24 * 3600.0, gt=0, description="Upload sessions idle for longer than this are removed by GC."
    )
    archive_max_bytes: int = Field(
        32 * 1024**3, gt=0, description="Largest image archive (tar) accepted for upload, in bytes."
    )
    archive_journal: bool = Field(
        False,
        description="Keep each chunked archive upload's bytes past its last checkpoint in the blob "
        "storage as each chunk ends, so that any replica takes the next chunk where the last one "
        "ended (replicas behind a load balancer without sticky sessions). Costs a second write of "
        "those bytes; off, the worker processes of one server pass chunks to the one holding the "
        "import, and a chunk taken by another replica is sent again from the last checkpoint.",
    )
    default_workspace_quota: Annotated[int | None, BeforeValidator(_optional_size)] = Field(
        None,
        ge=0,
        le=MAX_SIZE,
        description="Bytes every workspace without a quota of its own may store (pushes, archives, "
        "builds: each blob counted once per workspace), in bytes or a size such as 500GiB or 2TB; "
        "unset: no limit. Admins set a workspace's own quota with 'dockyard workspace quota set'.",
    )
    workspace_quota_bytes: int = Field(
        0,
        ge=0,
        le=MAX_SIZE,
        description="The former name of default_workspace_quota (used when that is unset); 0: none.",
    )
    worker_enabled: bool = Field(
        True,
        description="Run background jobs (builds, ...) inside 'dockyard serve'; turn off when separate "
        "'dockyard worker' processes run them.",
    )
    webhook_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=300,
        allow_inf_nan=False,
        description="How long a webhook receiver may hold one delivery attempt (connecting, sending, "
        "answering); a slower one is cut off and the attempt counts as failed.",
    )
    webhook_max_attempts: int = Field(
        10, ge=1, le=100, description="Attempts of a webhook delivery before it is marked failed."
    )
    webhook_retry_base_seconds: float = Field(
        5.0,
        gt=0,
        le=3600,
        allow_inf_nan=False,
        description="Wait before a webhook delivery's first retry; each further one waits about twice as "
        "long (with jitter), up to an hour.",
    )
    webhook_log_days: float = Field(
        30.0,
        ge=0,
        le=36500,
        allow_inf_nan=False,
        description="Delivered and failed webhook deliveries stay in the delivery log this many days; "
        "0: forever.",
    )
    webhook_poll_seconds: float = Field(
        1.0,
        gt=0,
        le=300,
        allow_inf_nan=False,
        description="How often each server process looks for webhook deliveries that are due.",
    )
    worker_concurrency: int = Field(
        1, ge=1, description="Jobs each worker (and each server process) runs at a time."
    )
    job_recover_seconds: float = Field(
        10.0,
        gt=0,
        description="How often running jobs' leases are checked: a job whose worker stopped is retried, "
        "or failed once its attempts are used up.",
    )
    job_retention_days: float = Field(
        30.0,
        ge=0,
        description="Finished background jobs (succeeded, failed, cancelled) are deleted this many days "
        "after they ended; build history is kept regardless. 0: keep them forever.",
    )
    job_lease_seconds: float = Field(
        30.0,
        gt=0,
        le=3600,
        allow_inf_nan=False,
        description="How long a worker holds a running job without renewing it (it renews every third "
        "of that); a job whose worker died is retried once this has passed.",
    )
    inspect_concurrency: int = Field(
        2,
        ge=1,
        le=64,
        description="Pushed images each server process (and worker) inspects at a time. Inspections are "
        "jobs of their own, run wherever Dockyard runs, whatever worker_enabled says.",
    )
    inspect_layer_max_bytes: int = Field(
        32 * 1024**3,
        gt=0,
        description="Uncompressed bytes counted per layer when measuring an image; a layer that expands "
        "past this has no uncompressed size (the version says why).",
    )
    inspect_layer_max_seconds: float = Field(
        120.0,
        gt=0,
        le=86400,
        allow_inf_nan=False,
        description="Time spent decompressing one layer when measuring an image; past it the layer is "
        "not measured (the version says why).",
    )
    build_dir: Path | None = Field(
        None, description="Scratch folder where workers build images; default data_dir/builds."
    )
    build_registry: str = Field(
        "",
        description="host[:port] of this Dockyard's registry as builders reach it (builds pull base "
        "images from and push to it); default: the host of public_url, else host:port.",
    )
    build_time_limit_seconds: float = Field(
        3600.0, gt=0, description="Longest a build may run (clone, build and push) before it is stopped."
    )
    build_log_max_bytes: int = Field(
        16 * 1024 * 1024, gt=0, description="Largest build log kept; past it lines are dropped."
    )
    build_context_max_bytes: int = Field(
        2 * 1024**3, gt=0, description="Largest build context (tar of files) accepted for upload."
    )
    build_git_protocols: list[str] = Field(
        default_factory=lambda: ["https", "http", "git", "ssh"],
        description="Protocols builds may clone git repositories over; add 'file' to allow "
        "repositories on the server's own disk.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level.")
    access_log: bool = Field(True, description="Write one structured (JSON) log line per request.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config = os.environ.get("DOCKYARD_CONFIG")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if config:
            if not Path(config).is_file():
                raise ValueError(f"DOCKYARD_CONFIG names {config!r}, which is not a file")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config))
        return tuple(sources)

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.storage_driver == "s3" and not (self.s3_bucket and self.s3_access_key):
            raise ValueError("storage_driver 's3' needs s3_bucket, s3_access_key and s3_secret_key")
        if self.s3_prefix and not self.s3_prefix.endswith("/"):
            raise ValueError(f"s3_prefix must end with '/', not {self.s3_prefix!r}")
        for name in [self.default_region, *self.regions]:
            if not REGION_NAME.match(name):
                raise ValueError(f"region name {name[:40]!r} must be 1-32 of a-z, 0-9 and '-'")
        if self.default_region in self.regions:
            raise ValueError(f"region {self.default_region!r} is the default region (the storage_* settings)")
        if self.region and self.region != self.default_region and self.region not in self.regions:
            raise ValueError(f"DOCKYARD_REGION {self.region[:40]!r} is not a configured region")
        if self.auth_mode == "basic" and not (self.admin_username and self.admin_password.get_secret_value()):
            raise ValueError("auth_mode 'basic' needs admin_username and admin_password")
        if self.auth_mode == "dev" and not _is_loopback(self.host):
            raise ValueError(
                f"auth_mode 'dev' allows anonymous push and only listens on loopback, not {self.host!r}; "
                "set DOCKYARD_AUTH_MODE=basic with an admin user to listen elsewhere"
            )
        return self

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                ipaddress.ip_network(value.strip(), strict=False)
            except ValueError:
                raise ValueError(f"{value!r} is not an IP address or CIDR block (e.g. 10.0.0.0/8)") from None
        return values

    @property
    def effective_default_quota(self) -> int | None:
        if self.default_workspace_quota is not None:
            return self.default_workspace_quota
        return self.workspace_quota_bytes or None

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{(self.data_dir / 'dockyard.db').resolve()}"

    @property
    def effective_storage_root(self) -> Path:
        return (self.storage_root or self.data_dir / "storage").resolve()

    @property
    def default_storage(self) -> RegionStorage:
        """The default region's storage: the ``storage_*`` and ``s3_*`` settings."""
        return RegionStorage(
            driver=self.storage_driver,
            root=self.effective_storage_root,
            endpoint=self.s3_endpoint,
            bucket=self.s3_bucket,
            access_key=self.s3_access_key,
            secret_key=self.s3_secret_key,
            region=self.s3_region,
            path_style=self.s3_path_style,
            prefix=self.s3_prefix,
        )

    @property
    def effective_region(self) -> str:
        return self.region or self.default_region

    @property
    def effective_workers(self) -> int:
        return self.workers or max(1, min(os.cpu_count() or 1, 4))

    def to_env(self) -> dict[str, str]:
        """These settings as ``DOCKYARD_*`` variables, for server worker processes."""
        env: dict[str, str] = {}
        for name, value in self.model_dump().items():
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            if isinstance(value, bool):
                value = "true" if value else "false"
            if isinstance(value, list):
                value = json.dumps([str(item) for item in value])
            if name == "regions":
                value = json.dumps({k: _revealed(v) for k, v in self.regions.items()})
            env[f"DOCKYARD_{name.upper()}"] = str(value)
        return env


def _revealed(region: RegionStorage) -> dict[str, object]:
    plain = region.model_dump(mode="json")
    plain["secret_key"] = region.secret_key.get_secret_value()
    return plain


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
