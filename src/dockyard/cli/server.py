"""The commands that run ON the server and use its settings and data folder: ``serve``,
``worker``, ``gc``, ``db upgrade`` and ``keys rotate``. They build the application in-process
(imported lazily, so ``dockyard --help`` and the client commands stay light); every other
command is a client of ``/api/v1`` over HTTP (an import contract keeps it so)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console

from dockyard import __version__
from dockyard.cli.errors import CliError
from dockyard.cli.numbers import seconds
from dockyard.settings import Settings

SERVER_PANEL = "On the server (uses its settings and data)"
db_app = typer.Typer(help="The metadata database.", no_args_is_help=True)
keys_app = typer.Typer(help="Token-signing keys (run on the server, like gc).", no_args_is_help=True)
console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])
_COMMANDS: list[tuple[dict[str, Any], Callable[..., Any]]] = []


def _command(**options: Any) -> Callable[[F], F]:
    """Keep a top-level command until :func:`register` adds it to the application."""

    def keep(function: F) -> F:
        _COMMANDS.append((options, function))
        return function

    return keep


def register(app: typer.Typer) -> None:
    for options, function in _COMMANDS:
        app.command(**options)(function)
    app.add_typer(db_app, name="db", rich_help_panel=SERVER_PANEL)
    app.add_typer(keys_app, name="keys", rich_help_panel=SERVER_PANEL)


_SETTINGS_HELP = "\n\n".join(
    f"DOCKYARD_{name.upper()}: {field.description}" for name, field in Settings.model_fields.items()
)


def _settings(**overrides: Any) -> Settings:
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"]) or "settings"
            console.print(f"[red]error:[/red] {where}: {error['msg']}")
        raise typer.Exit(2) from None


async def _migrate(settings: Settings) -> str | None:
    from dockyard.db.engine import Database
    from dockyard.db.migrate import current_revision, upgrade

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.effective_database_url)
    try:
        await upgrade(db)
        if db.reserve is not None and not db.ensure_reserve():
            console.print("[yellow]warning:[/yellow] the database's volume has no room for its reserve")
        return await current_revision(db)
    finally:
        await db.dispose()


def _migrate_in_child(settings: Settings) -> str:
    """Migrate in a child process, so that the server's supervisor process never loads
    SQLAlchemy and Alembic (it only watches the workers; ~40 MB less resident memory)."""
    env = {**os.environ, **settings.to_env()}
    done = subprocess.run(
        [sys.executable, "-m", "dockyard", "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        console.print(f"[red]error:[/red] database migration failed:\n{done.stderr.strip()}")
        raise typer.Exit(1)
    return done.stdout.strip().rsplit(" ", 1)[-1]


@_command(
    rich_help_panel=SERVER_PANEL,
    help="Start the server (registry at /v2, health at /healthz, metrics at /metrics).\n\n"
    "Settings come from options, DOCKYARD_* variables and the TOML file named by DOCKYARD_CONFIG:\n\n"
    + _SETTINGS_HELP,
)
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on [127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Port to listen on [5000].")] = None,
    workers: Annotated[
        int | None, typer.Option(min=0, max=64, help="Server processes; 0 = one per core (max 4).")
    ] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Data folder [./dockyard-data].")] = None,
    database_url: Annotated[
        str | None, typer.Option(help="Database URL (default: SQLite in the data folder).")
    ] = None,
) -> None:
    # The supervisor stays this process: it imports what it needs to watch the workers, not the
    # app (the services' modules alone are ~50 MB of resident memory it would keep for nothing).
    from dockyard.app.serving import run
    from dockyard.ops import logs
    from dockyard.storage.filesystem import FilesystemDriver

    settings = _settings(host=host, port=port, workers=workers, data_dir=data_dir, database_url=database_url)
    logs.configure(settings.log_level)
    revision = _migrate_in_child(settings)
    if settings.storage_driver == "filesystem":
        FilesystemDriver(settings.effective_storage_root).purge_temporaries()
    else:
        from dockyard.app.services import configured_storage
        from dockyard.storage.s3 import S3Driver

        storage = configured_storage(settings)
        if isinstance(storage, S3Driver):
            asyncio.run(storage.ensure_bucket())  # once, before the workers start
    mode = {
        "dev": "DEVELOPMENT MODE: anonymous push and pull from loopback",
        "basic": "basic auth with the settings' admin",
        "token": "token auth",
    }[settings.auth_mode]
    console.print(
        f"Dockyard {__version__} on http://{settings.host}:{settings.port} "
        f"({settings.effective_workers} workers, schema {revision}, {mode})"
    )
    run(settings)


@_command(
    rich_help_panel=SERVER_PANEL,
    help="Collect garbage now: unreferenced blobs and untagged manifests older than the grace period, "
    "idle upload and archive sessions, and what crashed archive imports left behind.",
)
def gc(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would be deleted; delete nothing.")
    ] = False,
    grace_seconds: Annotated[
        float | None, typer.Option(parser=seconds, help="Override the grace period (seconds).")
    ] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Data folder.")] = None,
    database_url: Annotated[str | None, typer.Option(help="Database URL.")] = None,
) -> None:
    from dockyard.app.lifespan import GC_LEASE
    from dockyard.app.services import Services, build_services
    from dockyard.cluster import leases

    settings = _settings(data_dir=data_dir, database_url=database_url, gc_grace_seconds=grace_seconds)

    from dockyard.volumes import InsufficientStorage

    async def sweep(services: Services) -> dict[str, Any]:
        report = await services.gc.run(dry_run=dry_run)
        purge_before = time.time() - settings.upload_purge_seconds
        archives = await services.archive_purge.run(purge_before, dry_run=dry_run)
        return {
            **report.summary(),
            **archives.summary(),
            "blobs": report.blobs,
            "manifests": report.manifests,
            "evicted": report.evicted,
            "archive_sessions": archives.sessions,
            "archive_imports": archives.reclaimed,
        }

    async def collect() -> dict[str, Any]:
        await _migrate(settings)
        services = build_services(settings)
        try:
            if dry_run:  # deletes nothing: it may run beside a collection
                return await sweep(services)
            # The servers' periodic collection holds the same lease: never two collections at once.
            holder = f"dockyard gc, pid {os.getpid()} on {os.uname().nodename}"[:64]  # the column's size
            async with leases.renewing(services.db, GC_LEASE, holder, 60.0, frees_space=True) as held:
                if not held:
                    busy = await leases.held_by(services.db, GC_LEASE)
                    who = f" ({busy[0]}, its lease runs until {time.ctime(busy[1])})" if busy else ""
                    raise CliError(
                        f"a garbage collection is running in another process{who}; "
                        "nothing was deleted, try again once it has finished"
                    )
                found = await sweep(services)
            with contextlib.suppress(InsufficientStorage):  # still full: the lease runs out
                await leases.release(services.db, GC_LEASE, holder)
            return found
        finally:
            await services.close()

    try:
        report = asyncio.run(collect())
    except InsufficientStorage as exc:  # no reserve left to give up: the operator must free space
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    except leases.LeaseLost as exc:
        console.print(f"[red]error:[/red] the collection stopped part-way: {exc}")
        raise typer.Exit(1) from None
    typer.echo(json.dumps(report, indent=2))


@_command(
    rich_help_panel=SERVER_PANEL,
    help="Run background jobs (builds, ...) without serving HTTP, until SIGINT or SIGTERM; "
    "running jobs then get a few seconds to finish, the others go back to the queue. Run "
    "servers with DOCKYARD_WORKER_ENABLED=false to leave every job to such workers.",
)
def worker(
    concurrency: Annotated[int | None, typer.Option(min=1, max=256, help="Jobs run at a time [1].")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Data folder.")] = None,
    database_url: Annotated[str | None, typer.Option(help="Database URL.")] = None,
) -> None:
    import signal
    import uuid

    from dockyard.app.lifespan import run_jobs
    from dockyard.app.services import build_services
    from dockyard.ops import logs

    settings = _settings(data_dir=data_dir, database_url=database_url, worker_concurrency=concurrency)
    logs.configure(settings.log_level)

    async def work() -> None:
        revision = await _migrate(settings)
        services = build_services(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        kinds = ", ".join(sorted(services.job_handlers)) or "none yet"
        console.print(
            f"Dockyard {__version__} worker (schema {revision}, {settings.worker_concurrency} at a time, "
            f"job kinds: {kinds})"
        )
        try:
            await services.generations.start()
            await run_jobs(services, stop, f"worker-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        finally:
            await services.close()
        console.print("worker stopped")

    asyncio.run(work())


@db_app.command("upgrade", help="Apply database migrations (serve does this on start).")
def db_upgrade(
    data_dir: Annotated[Path | None, typer.Option(help="Data folder.")] = None,
    database_url: Annotated[str | None, typer.Option(help="Database URL.")] = None,
) -> None:
    settings = _settings(data_dir=data_dir, database_url=database_url)
    typer.echo(f"schema at revision {asyncio.run(_migrate(settings))}")


@keys_app.command(
    "rotate",
    help="Make a new token-signing key in the data folder; tokens signed by the old one keep "
    "verifying for a token lifetime plus 5 minutes, so nobody is logged out.",
)
def keys_rotate(data_dir: Annotated[Path | None, typer.Option(help="Data folder.")] = None) -> None:
    from dockyard.auth.keys import KeyRing

    settings = _settings(data_dir=data_dir)
    ring = KeyRing(
        settings.data_dir.resolve() / "keys",
        settings.token_key_file,
        tuple(settings.token_previous_key_files),
    )
    try:
        kid = ring.rotate(settings.token_ttl_seconds + 300)
    except (ValueError, OSError) as exc:
        raise CliError(str(exc)) from None
    typer.echo(f"new signing key {kid}")
