"""Every service object of a Dockyard process, built in one phase by :func:`build_services`.

This module owns the construction and the wiring of the services (which listeners hear the
registry's events, which handler runs which job kind, who admits a push). It is the only
place that builds them: the ASGI app (:mod:`dockyard.app.asgi`), its lifespan
(:mod:`dockyard.app.lifespan`), ``dockyard worker`` and ``dockyard gc`` receive a
:class:`Services` and build none of their own, so that two parts of one process never hold
two copies of a stateful service (caches, locks, an import's liveness lock).

Building starts nothing and opens no connection: :mod:`dockyard.app.lifespan` starts what
runs in the background, and :meth:`Services.close` releases what the services hold.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from dockyard.auth.accounts import Accounts
from dockyard.auth.authorizer import TokenAuthorizer
from dockyard.auth.base import Authorizer
from dockyard.auth.basic import AdminAuthorizer
from dockyard.auth.grant_cache import FACT_TABLES, GrantCache, machine_generations
from dockyard.auth.jwt_tokens import TokenService
from dockyard.auth.keys import KeyRing
from dockyard.auth.passwords import Passwords
from dockyard.auth.throttle import LoginThrottle, ThrottlePolicy
from dockyard.auth.token_server import TokenServer
from dockyard.auth.tokens import Tokens
from dockyard.builds import runs
from dockyard.builds.buildah import BuildahBuilder
from dockyard.builds.cleanup import workspace_build_files
from dockyard.builds.definitions import BuildDefinitions, definition_holdings
from dockyard.builds.logins import FixedLogins, InternalLogins, UserTokenLogins
from dockyard.builds.rebuilds import Rebuilds
from dockyard.builds.service import JOB_KIND, BuildLimits, BuildService
from dockyard.catalog.admission import PushPolicy
from dockyard.catalog.content import RegistryContent
from dockyard.catalog.deletion import Deletions, workspace_holdings
from dockyard.catalog.immutability import TagImmutability
from dockyard.catalog.imports import JOB_KIND as IMPORT_JOB
from dockyard.catalog.imports import Imports
from dockyard.catalog.inspections import INSPECTION_GATE_ENV, Inspections
from dockyard.catalog.lineage import Lineage
from dockyard.catalog.lineage_backfill import JOB_KIND as BACKFILL_JOB
from dockyard.catalog.lineage_backfill import LineageBackfill
from dockyard.catalog.lineage_views import LineageReader
from dockyard.catalog.measure import MeasureLimits
from dockyard.catalog.package_scan import ScanLimits
from dockyard.catalog.packages import PackageIndex
from dockyard.catalog.service import Catalog
from dockyard.catalog.sharing import record_visibility
from dockyard.catalog.sync import CatalogSync
from dockyard.catalog.tools import Tools
from dockyard.catalog.usage import Usage
from dockyard.catalog.verify import Verification
from dockyard.cluster.cache import Generations, PostgresGenerations, SharedMemoryGenerations
from dockyard.cluster.gates import file_gate
from dockyard.cluster.locks import FileUploadLocks, PostgresUploadLocks, UploadLocks
from dockyard.cluster.siblings import run_dir_for
from dockyard.db.engine import Database
from dockyard.jobs.queue import JobQueue
from dockyard.jobs.worker import Handler
from dockyard.marks.sbom import Sboms
from dockyard.marks.service import TrustedKeys, TrustMarks, WorkspaceMarks
from dockyard.marks.signing import Signatures
from dockyard.marks.views import MarkViews
from dockyard.ops.registry_audit import AuditListener
from dockyard.outbound import OutboundPolicy
from dockyard.regions.wiring import RegionFeature, build_regions, region_driver
from dockyard.registry.blobs import BlobService
from dockyard.registry.events import EventBus
from dockyard.registry.gc import GarbageCollector
from dockyard.registry.manifests import ManifestService
from dockyard.registry.outbox import OUTBOX_GATE_ENV, EventOutbox
from dockyard.registry.pulls import PullRecorder
from dockyard.registry.quota_admin import Quotas
from dockyard.registry.quotas import Ledger
from dockyard.registry.uploads import UploadService
from dockyard.retention import runner as retention_runner
from dockyard.retention.service import RetentionRules
from dockyard.settings import Settings
from dockyard.storage.base import StorageDriver
from dockyard.tenancy.repositories import Repositories
from dockyard.tenancy.requests import AccessRequests
from dockyard.tenancy.services import Identity
from dockyard.tenancy.workspaces import Workspaces
from dockyard.transfer.exports.service import Exports
from dockyard.transfer.imports.finishing import FINISH_GATE_ENV
from dockyard.transfer.imports.purge import ArchivePurge
from dockyard.transfer.imports.service import ArchiveUploads
from dockyard.transfer.imports.sessions import FINISH_JOB
from dockyard.transfer.imports.versions import ArchiveVersions
from dockyard.upstream.cache import CacheSettings, ManifestCache, Upstreams
from dockyard.upstream.cache_admin import CacheAdmin
from dockyard.upstream.cache_blobs import BlobCache, PullThroughCache
from dockyard.upstream.cache_evict import CacheEviction
from dockyard.upstream.credentials import CredentialStore
from dockyard.upstream.profiles import EcrTokens, Profiles
from dockyard.upstream.reach import Reach
from dockyard.upstream.registries import Registries
from dockyard.upstream.verifier import UpstreamResolver
from dockyard.webhooks.delivery import Deliverer, DeliveryPolicy
from dockyard.webhooks.outbox import RegistryRecorder, record_access_request
from dockyard.webhooks.service import Webhooks


@dataclass(kw_only=True)
class Services:
    """The services of one process, each built once (see the module docstring)."""

    settings: Settings
    db: Database
    storage: StorageDriver
    regions: RegionFeature  # where versions' blobs live, copies between regions (jobs)
    events: EventBus
    generations: Generations
    locks: UploadLocks
    ledger: Ledger  # each workspace's stored bytes and quota
    quotas: Quotas  # who sees and sets them
    blobs: BlobService
    uploads: UploadService
    manifests: ManifestService
    gc: GarbageCollector
    identity: Identity
    authorizer: Authorizer  # who may do what on /v2
    catalog: Catalog
    deletions: Deletions
    immutability: TagImmutability  # tags a push may not move
    usage: Usage  # storage counted for the catalog's usage reports
    catalog_sync: CatalogSync
    tools: Tools  # the catalog's tool images, for the GA4GH TRS endpoint
    inspections: Inspections
    packages: PackageIndex  # the software inside each version
    credentials: CredentialStore
    registries: Registries  # registry profiles: how each workspace reaches other registries
    verification: Verification
    jobs: JobQueue
    archives: ArchiveUploads
    archive_versions: ArchiveVersions
    archive_purge: ArchivePurge
    exports: Exports
    retention: RetentionRules  # retention rules and the history of their runs
    retention_runner: retention_runner.RetentionRunner  # dry runs, real runs (jobs), the schedule
    pulls: PullRecorder  # when manifests were last pulled, written in batches
    webhooks: Webhooks
    imports: Imports  # imports by URL: external versions copied into storage (jobs)
    cache: PullThroughCache  # cache workspaces filled from their upstreams on pull
    cache_admin: CacheAdmin  # which workspaces are caches (admins set it)
    marks: TrustMarks  # trust marks: workspace marks, trusted keys, signature checks, SBOMs
    job_handlers: dict[str, Handler] = field(default_factory=dict)  # job kind -> handler
    builds: BuildService | None = None
    lineage: LineageReader | None = None  # bases and children of versions, for a viewer
    rebuilds: Rebuilds | None = None  # rebuilding what was built here on an updated base
    lineage_backfill: LineageBackfill | None = None

    async def close(self) -> None:
        """Release what the services hold (after the last request and background job): running
        archive imports stop (a chunked upload resumes from its checkpoint) and let go of this
        process's liveness lock, then the cross-process caches and the database connections."""
        await self.archives.close()
        await self.cache.close()
        await self.generations.stop()
        await self.db.dispose()


def configured_storage(settings: Settings) -> StorageDriver:
    """The storage driver the settings choose (``DOCKYARD_STORAGE_DRIVER`` and its options):
    the default region's."""
    return region_driver(settings.default_storage, redirect=settings.s3_redirect)


def build_services(settings: Settings, storage: StorageDriver | None = None) -> Services:
    """Every service for ``settings`` (``storage``: a driver to use instead of the configured
    one, for tests), wired together; nothing is started yet."""
    db = Database(settings.effective_database_url)
    storage = storage or configured_storage(settings)
    outbox_gate = os.environ.get(OUTBOX_GATE_ENV)  # a test seam: see cluster.gates
    outbox = EventOutbox(db, file_gate(Path(outbox_gate)) if outbox_gate else None)
    events = EventBus(outbox)
    generations = build_generations(settings, db)
    ledger = Ledger(db, settings.effective_default_quota)
    blobs = BlobService(db, storage, generations, ledger)
    locks = build_upload_locks(settings, db)
    uploads = UploadService(db, storage, blobs, locks)
    manifests = ManifestService(db, events, settings.max_manifest_bytes, generations)
    gc = GarbageCollector(
        db, storage, uploads, generations, settings.gc_grace_seconds, settings.upload_purge_seconds
    )
    identity = build_identity(settings, db, generations)
    catalog = Catalog(db)
    usage = Usage(catalog)
    content = RegistryContent(manifests, blobs)
    jobs = JobQueue(db)
    regions = build_regions(settings, db, storage, catalog, blobs, gc, jobs)
    jobs.keep_while_needed(runs.jobs_still_needed)  # a build run that has not ended needs its job
    gate = os.environ.get(INSPECTION_GATE_ENV)  # a test seam: see cluster.gates
    lineage = Lineage(db)
    packages = PackageIndex(db, catalog, content, content.stored_layer, ScanLimits())
    inspections = Inspections(
        db,
        catalog,
        content,
        content.stream,
        jobs,
        MeasureLimits(settings.inspect_layer_max_bytes, settings.inspect_layer_max_seconds),
        before_inspect=file_gate(Path(gate)) if gate else None,
        lineage=lineage,
        packages=packages,
    )
    sync = CatalogSync(db, inspections)
    # Applied from the registry's outbox in one transaction per event (never lost once the
    # push is answered): the catalog first, then the audit log, then the signature check (after
    # the event's commit, whichever process applies it: the version exists to check).
    outbox.handle_with(sync.apply)
    outbox.handle_with(AuditListener())
    signatures = Signatures(db, manifests, blobs)
    outbox.handle_with(signatures.handle)
    policy = PushPolicy(db, content)
    manifests.admit_with(policy, policy.keep_immutable)
    key_file = settings.credentials_key_file or settings.data_dir.resolve() / "keys" / "credentials.key"
    credentials = CredentialStore(db, key_file)
    outbound = OutboundPolicy(settings.outbound_allow)
    profiles = Profiles(
        db,
        credentials.cipher(),
        insecure=settings.upstream_insecure,
        ecr=EcrTokens(settings.ecr_endpoint_url),
    )
    verification = Verification(catalog, UpstreamResolver(profiles, outbound), credentials)
    reach = Reach(profiles)
    imports = Imports(db, jobs, reach, outbound, blobs, manifests, storage)
    cache_settings = CacheSettings(db)
    gc.evict_with(CacheEviction(db, ledger, manifests))  # caches over their size limit, LRU first
    upstreams = Upstreams(reach, outbound)
    cache = PullThroughCache(
        ManifestCache(db, manifests, cache_settings, upstreams),
        BlobCache(blobs, cache_settings, upstreams, locks),
    )
    content.fill_with(cache)  # a cached image's config, fetched when its inspection needs it
    finish_gate = os.environ.get(FINISH_GATE_ENV)  # a test seam: see cluster.gates
    archives = ArchiveUploads(
        db,
        storage,
        locks,
        ledger,
        settings.archive_max_bytes,
        jobs,
        settings.job_lease_seconds,
        run_dir=run_dir_for(settings.data_dir),
        journal=settings.archive_journal,
        finish_gate=file_gate(Path(finish_gate)) if finish_gate else None,
    )
    builds = build_builds(settings, db, storage, jobs, identity, credentials, outbound, profiles)
    builds.lineage = lineage  # a build's FROM, preferred as its version's base
    rebuilds = Rebuilds(db, catalog, builds)
    lineage.on_base_updated(rebuilds.base_updated)  # definitions that rebuild by themselves
    backfill = LineageBackfill(db, lineage, content, jobs)
    webhooks = build_webhooks(settings, db, outbound, credentials)
    events.record_with(RegistryRecorder())  # in the push's transaction: never lost once answered
    identity.requests.record_with(record_access_request)

    async def wake_deliveries(_event: object) -> None:  # after the commit: deliver at once
        webhooks.deliverer.wake.set()

    events.subscribe(wake_deliveries)

    async def forget_repositories(held: list[str]) -> None:  # a forced workspace deletion
        for line in held:
            kind, _, name = line.partition(" ")
            if kind in ("image", "repository"):
                await generations.changed(name)

    identity.workspaces.holdings_from(workspace_holdings, forget_repositories)
    identity.workspaces.holdings_from(definition_holdings)
    identity.workspaces.cleanup_from(workspace_build_files(storage))
    retention = RetentionRules(db)
    runner = retention_runner.RetentionRunner(db, retention, manifests, jobs)
    runner.hook(wake_deliveries)  # its event is in the outbox: deliver at once
    identity.repositories.on_visibility(record_visibility)  # the image's history shows it too
    return Services(
        settings=settings,
        db=db,
        storage=storage,
        regions=regions,
        events=events,
        generations=generations,
        locks=locks,
        ledger=ledger,
        quotas=Quotas(db, ledger),
        blobs=blobs,
        uploads=uploads,
        manifests=manifests,
        gc=gc,
        identity=identity,
        authorizer=build_authorizer(settings, identity),
        catalog=catalog,
        deletions=Deletions(db, catalog, generations),
        immutability=TagImmutability(db),
        usage=usage,
        catalog_sync=sync,
        tools=Tools(db),
        inspections=inspections,
        packages=packages,
        credentials=credentials,
        registries=Registries(credentials, profiles, outbound),
        verification=verification,
        jobs=jobs,
        archives=archives,
        archive_versions=ArchiveVersions(archives, db, blobs, manifests, catalog),
        # The purge asks whether a session's holder lives with this process's own Holders:
        # one liveness identity per process, whoever asks.
        archive_purge=ArchivePurge(db, storage, locks, archives.holders),
        exports=Exports(db, catalog, manifests, blobs, storage),
        retention=retention,
        retention_runner=runner,
        pulls=PullRecorder(db),
        webhooks=webhooks,
        imports=imports,
        cache=cache,
        cache_admin=CacheAdmin(db, ledger, cache_settings),
        marks=TrustMarks(
            WorkspaceMarks(db), TrustedKeys(db, signatures), Sboms(catalog, manifests, blobs), MarkViews(db)
        ),
        job_handlers={
            JOB_KIND: builds.handle,
            retention_runner.JOB_KIND: runner.handle,
            IMPORT_JOB: imports.handle,
            **regions.job_handlers(),
            BACKFILL_JOB: backfill.handle,
            FINISH_JOB: archives.finishing.handle,
        },
        builds=builds,
        lineage=LineageReader(db, catalog),
        rebuilds=rebuilds,
        lineage_backfill=backfill,
    )


def build_webhooks(
    settings: Settings, db: Database, outbound: OutboundPolicy, credentials: CredentialStore
) -> Webhooks:
    """Webhooks delivered through the outbound policy, their secrets kept with the credentials' key."""
    policy = DeliveryPolicy(
        timeout=settings.webhook_timeout_seconds,
        max_attempts=settings.webhook_max_attempts,
        backoff_base=settings.webhook_retry_base_seconds,
        poll=settings.webhook_poll_seconds,
        keep_days=settings.webhook_log_days,
    )
    source = settings.public_url.rstrip("/") or f"http://{registry_host(settings)}"
    deliverer = Deliverer(db, outbound, credentials.cipher, source, policy)
    return Webhooks(db, outbound, credentials.cipher, deliverer)


def build_generations(settings: Settings, db: Database) -> Generations:
    """How processes learn of each other's writes: shared memory on one machine (SQLite),
    NOTIFY between the replicas of a PostgreSQL deployment."""
    if db.is_sqlite:
        return SharedMemoryGenerations(settings.data_dir.resolve() / "generations")
    return PostgresGenerations(db.raw_dsn)


def build_upload_locks(settings: Settings, db: Database) -> UploadLocks:
    """Locks that die with their holder: flock on one machine (SQLite), advisory locks on PostgreSQL."""
    if db.is_sqlite:
        return FileUploadLocks(settings.data_dir.resolve() / "locks" / "uploads")
    return PostgresUploadLocks(db.raw_dsn)


def build_identity(settings: Settings, db: Database, generations: Generations | None = None) -> Identity:
    """Accounts (with the login throttle), workspaces, tokens, repositories, access requests,
    the token-signing keys and the JWTs they sign, the token server and its cache."""
    policy = ThrottlePolicy(
        settings.login_max_failures,
        settings.login_max_failures_per_ip,
        settings.login_window_seconds,
        settings.login_lockout_seconds,
    )
    accounts = Accounts(db, Passwords(), LoginThrottle(db, policy), settings.refresh_token_days * 86400)
    keys = KeyRing(
        settings.data_dir.resolve() / "keys",
        settings.token_key_file,
        tuple(settings.token_previous_key_files),
    )
    jwt = TokenService(keys, settings.token_issuer, settings.token_service, settings.token_ttl_seconds)
    return Identity(
        db=db,
        accounts=accounts,
        workspaces=Workspaces(db),
        tokens=Tokens(db),
        repositories=Repositories(db),
        requests=AccessRequests(db),
        keys=keys,
        jwt=jwt,
        token_server=TokenServer(db, build_grant_cache(settings, db, generations)),
    )


def build_grant_cache(settings: Settings, db: Database, generations: Generations | None) -> GrantCache:
    """The token server's cache, told of every committed change of a fact it decides on: the
    machine's workers through shared memory (strictly before the writer answers), other
    PostgreSQL replicas through ``NOTIFY``."""
    remote = None if db.is_sqlite or generations is None else generations
    cache = GrantCache(machine_generations(settings.data_dir), remote)
    db.after_commit_touching(FACT_TABLES, cache.changed)
    return cache


def build_authorizer(settings: Settings, identity: Identity) -> Authorizer:
    """Bearer tokens from the token endpoint (token mode), else the settings' admin (basic)
    or anonymous access from loopback (dev)."""
    if settings.auth_mode == "token":
        return TokenAuthorizer(identity.accounts, identity.jwt, settings.public_url or None)
    return AdminAuthorizer(
        settings.auth_mode, settings.admin_username, settings.admin_password.get_secret_value()
    )


def build_builds(
    settings: Settings,
    db: Database,
    storage: StorageDriver,
    jobs: JobQueue,
    identity: Identity,
    credentials: CredentialStore,
    outbound: OutboundPolicy,
    profiles: Profiles,
) -> BuildService:
    """Builds with buildah; they reach this Dockyard's registry as ``build_registry`` and
    sign in as the user who started them (token mode) or as the admin (basic mode)."""
    registry = settings.build_registry or registry_host(settings)
    insecure = not settings.public_url.startswith("https://")
    logins: InternalLogins
    if settings.auth_mode == "token":
        logins = UserTokenLogins(identity.accounts, registry, insecure)
    elif settings.auth_mode == "basic":
        password = settings.admin_password.get_secret_value()
        logins = FixedLogins(registry, insecure, settings.admin_username, password)
    else:
        logins = FixedLogins(registry, insecure)
    work_dir = (settings.build_dir or settings.data_dir / "builds").resolve()
    limits = BuildLimits(settings.build_time_limit_seconds, settings.build_log_max_bytes)
    return BuildService(
        db,
        storage,
        jobs,
        BuildahBuilder(work_dir, git_protocols=settings.build_git_protocols, outbound=outbound),
        BuildDefinitions(
            db, storage, settings.build_git_protocols, settings.build_context_max_bytes, outbound=outbound
        ),
        logins,
        credentials,
        limits,
        settings.upstream_insecure,
        profiles=profiles,
    )


def registry_host(settings: Settings) -> str:
    """host[:port] of this server's registry: from ``public_url``, else the listening address."""
    if settings.public_url:
        return urlsplit(settings.public_url).netloc
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"[{host}]:{settings.port}" if ":" in host else f"{host}:{settings.port}"
