"""Schemathesis against ``/api/v1/openapi.json``: every operation, as an admin and as a plain
user, on SQLite and on PostgreSQL; whatever it sends, the server never answers 5xx.

This is schemathesis's own stateless run (what ``st run`` does): the coverage phase's
boundary and invalid values for every parameter and body field, then random positive and
negative cases, derandomized so that a run is repeatable. A few random cases per operation
find little by chance, so strings and numbers are drawn from hostile values (NUL, control
characters, long strings, numbers past what the databases store) a quarter of the time.
``DOCKYARD_FUZZ_EXAMPLES`` sets the random cases per operation (a deeper run locally; CI keeps
the default, within its time budget).

The server is a Dockyard of its own: the fuzzer creates and changes users, workspaces and
grants that other tests must not see. It must reach no other host: its outbound HTTP goes
through a proxy address where nothing listens, and it runs no background jobs (builds clone
git repositories). The fuzzer learns names from responses, so it would soon change the
password of the account it signs in with, or demote it; cases that name the fuzzing accounts
in their path are pointed at another user instead.
"""

from __future__ import annotations

import base64
import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from schemathesis import Case, HookContext

from tests.conftest import databases
from tests.support import fuzzing
from tests.support.fuzzing import run
from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api, start_token_dockyard, unique
from tests.support.servers import RunningRegistry, postgres_database

EXAMPLES = int(os.environ.get("DOCKYARD_FUZZ_EXAMPLES", "5"))
HOSTILE_STRINGS = ["\x00", "a\x00b", "\x01\x7f", "x" * 5000, "\u00b2", "../../etc/passwd", "%00"]
HOSTILE_INTEGERS = [2**31, 2**53, 2**63, -(2**63) - 1, 10**30]
HOSTILE_NUMBERS = [1e308, -1e308, 1e-9, 2.0**63]
NOWHERE = "http://127.0.0.1:9"  # the discard port: nothing listens, so nothing leaves the machine
STAND_IN = "someone-else"

# Build contexts are tars; schemathesis sends them as it sends any binary body.
schemathesis.serializer.alias("application/x-tar", "application/octet-stream")


@dataclass(frozen=True)
class Accounts:
    admin: str
    user: str

    def protected(self) -> frozenset[str]:
        return frozenset({ADMIN, self.admin, self.user})


@dataclass(frozen=True)
class Fuzzed:
    server: RunningRegistry
    accounts: Accounts


@pytest.fixture(scope="module", params=databases())
def fuzzed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    """A Dockyard that reaches no other host, with a fresh admin and a plain user (both made
    before any fuzzing, so that neither run can get at the other's account first)."""
    kind: str = request.param
    env = {
        "DOCKYARD_WORKER_ENABLED": "false",
        "DOCKYARD_ACCESS_LOG": "false",
        "HTTP_PROXY": NOWHERE,
        "HTTPS_PROXY": NOWHERE,
        "ALL_PROXY": NOWHERE,
        "NO_PROXY": "",
    }
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(postgres_database()) if kind == "postgres" else ""
        server = start_token_dockyard(kind, tmp_path_factory.mktemp(f"fuzz-{kind}"), url, env)
        stack.callback(server.stop)
        accounts = Accounts(unique("fuzz-admin"), unique("fuzz-user"))
        with Api.connect(server, ADMIN, ADMIN_PASSWORD) as admin:
            for name, is_admin in ((accounts.admin, True), (accounts.user, False)):
                body = {"username": name, "password": PASSWORD, "is_admin": is_admin}
                admin.call("POST", "/users", 201, json=body)
                with Api.connect(server, name, PASSWORD) as api:
                    api.create_workspace(unique("fuzz"))
        yield Fuzzed(server, accounts)


def _config(fuzzed: Fuzzed, username: str) -> schemathesis.Config:
    credentials = base64.b64encode(f"{username}:{PASSWORD}".encode()).decode()
    return fuzzing.config(
        f"{fuzzed.server.url}/api/v1",
        {"Authorization": f"Basic {credentials}"},
        EXAMPLES,
        {"string": HOSTILE_STRINGS, "integer": HOSTILE_INTEGERS, "number": HOSTILE_NUMBERS},
        ["not_a_server_error"],
    )


def _spare_accounts(protected: frozenset[str]) -> Callable[[HookContext, Case[Any]], Case[Any]]:
    def map_case(context: HookContext, case: Case[Any]) -> Case[Any]:
        parameters = case.path_parameters or {}
        for key, value in parameters.items():
            if isinstance(value, str) and value.lower() in protected:
                parameters[key] = STAND_IN
        return case

    return map_case


@pytest.mark.parametrize("role", ["admin", "user"])
def test_api_never_answers_a_server_error(fuzzed: Fuzzed, role: str) -> None:
    username = fuzzed.accounts.admin if role == "admin" else fuzzed.accounts.user
    schema = schemathesis.openapi.from_url(
        f"{fuzzed.server.url}/api/v1/openapi.json", config=_config(fuzzed, username)
    )
    schema.hook("map_case")(_spare_accounts(fuzzed.accounts.protected()))
    outcome = run(schema)
    assert not outcome.errors, "schemathesis could not run:\n" + "\n".join(outcome.errors)
    assert len(outcome.operations) > 80  # every route of the API
    never = sorted(outcome.operations - outcome.exercised)
    assert not never, f"never called: {never}"
    failures = outcome.failures
    assert not failures, f"{len(failures)} server errors:\n\n" + "\n\n".join(failures[:40])
