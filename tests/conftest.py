"""Fixtures shared by every test folder.

``registry`` is a real server on loopback. By default each test that uses it runs twice,
against ``dockyard serve`` on SQLite and on PostgreSQL. ``DOCKYARD_TEST_DB=sqlite`` (or
``postgres``) narrows that; ``DOCKYARD_TEST_TARGET=reference`` runs the same black-box tests
against Debian's docker-registry instead, to check the tests themselves.
``DOCKYARD_TEST_STORAGE=s3`` keeps the servers' blobs in Ceph radosgw (``scripts/ceph.sh``)
instead of a folder.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.identity import start_token_dockyard
from tests.support.servers import RunningRegistry, postgres_database, start_dockyard, start_reference


def _targets() -> list[str]:
    if os.environ.get("DOCKYARD_TEST_TARGET") == "reference":
        return ["reference"]
    return databases()


def databases() -> list[str]:
    """The databases that tests run against (``DOCKYARD_TEST_DB``, default both)."""
    wanted = os.environ.get("DOCKYARD_TEST_DB", "sqlite,postgres")
    return [t.strip() for t in wanted.split(",") if t.strip()]


@pytest.fixture(params=databases())
def db_kind(request: pytest.FixtureRequest) -> str:
    """The metadata database a test's private Dockyard uses: "sqlite" or "postgres"."""
    kind: str = request.param
    return kind


@pytest.fixture(scope="session", params=_targets())
def registry(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningRegistry]:
    kind: str = request.param
    base = tmp_path_factory.mktemp(f"registry-{kind}")
    with contextlib.ExitStack() as stack:
        if kind == "reference":
            server = start_reference(base)
        elif kind == "postgres":
            server = start_dockyard(kind, base, stack.enter_context(postgres_database()))
        elif kind == "sqlite":
            server = start_dockyard(kind, base)
        else:
            raise ValueError(f"unknown DOCKYARD_TEST_DB entry {kind!r}: use sqlite and/or postgres")
        stack.callback(server.stop)
        yield server


@pytest.fixture(scope="session", params=databases())
def token_registry(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningRegistry]:
    """A Dockyard in token mode (users, workspaces, Docker token auth) with a known admin
    (``tests.support.identity.ADMIN``), on SQLite and on PostgreSQL."""
    kind: str = request.param
    base = tmp_path_factory.mktemp(f"token-registry-{kind}")
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(postgres_database()) if kind == "postgres" else ""
        server = start_token_dockyard(kind, base, url)
        stack.callback(server.stop)
        yield server


@pytest.fixture
def data_path(tmp_path: Path) -> Path:
    return tmp_path
