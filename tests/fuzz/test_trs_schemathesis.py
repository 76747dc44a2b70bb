"""Schemathesis from the published GA4GH TRS v2.0.1 OpenAPI document (tests/support/trs,
vendored) against ``/ga4gh/trs/v2``, anonymously and as a member, on SQLite and PostgreSQL:
every operation the document declares, with its boundary, invalid and random values.

Whatever it sends, the server never answers 5xx; every answer the document describes (a
status it lists) has the body, the content type and the paging headers it says. The document
lists no 400 or 401 answers, though its ``Error`` model is for them, so statuses it does not
list are not failures here (the functional tests check those bodies are ``Error``\\s).

Random tool ids rarely name a tool: a third of the cases are pointed at the public tool and a
third at the private one (and its version ``v1``), so that the 200 answers are validated too.
The anonymous run must never be shown the private tool, in a body or a paging header (an
error may repeat the name it was asked for: the same for a tool that does not exist).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from schemathesis import Case, HookContext
from schemathesis.core.transport import Response

from tests.support import fuzzing
from tests.support.catalog import gzip_layer, image_config, new_user
from tests.support.fuzzing import run
from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api, oci_as
from tests.support.oci import oci_manifest
from tests.support.servers import RunningRegistry
from tests.support.trs import OPENAPI, PREFIX

EXAMPLES = int(os.environ.get("DOCKYARD_FUZZ_EXAMPLES", "5"))
HOSTILE_STRINGS = ["\x00", "a\x00b", "x" * 5000, "%00", "../../etc/passwd", "9" * 400, "-1"]


@dataclass(frozen=True)
class Tools:
    server: RunningRegistry
    owner: str
    public: str
    private: str


@pytest.fixture(scope="module")
def tools(token_registry: RunningRegistry) -> Tools:
    """A user whose workspace holds a public and a private tool, each with version ``v1``."""
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as admin:
        owner = new_user(admin, "trs-fuzz")
    public, private = f"{owner}/shown", f"{owner}/secret"
    with oci_as(token_registry, owner, PASSWORD) as oci:
        for name in (public, private):
            oci.push(name, oci_manifest(image_config(label=name), [gzip_layer(name, 1)]), "v1")
    with Api.connect(token_registry, owner, PASSWORD) as api:
        api.set_visibility(public, "public")
    return Tools(token_registry, owner, public, private)


def _document() -> dict[str, Any]:
    """The TRS document without ``/service-info`` (a reference to another document, fetched
    from GitHub: nothing here leaves the machine; tests/functional/builds/test_trs.py checks it)."""
    paths = {path: item for path, item in OPENAPI["paths"].items() if path != "/service-info"}
    return {**OPENAPI, "paths": paths}


def _config(tools: Tools, member: bool) -> schemathesis.Config:
    headers = {}
    if member:
        with Api.connect(tools.server, tools.owner, PASSWORD) as api:
            _, token = api.personal_token(["pull"], name="trs-fuzz")
        headers["Authorization"] = f"Bearer {token}"
    return fuzzing.config(
        f"{tools.server.url}{PREFIX}",
        headers,
        EXAMPLES,
        {"string": HOSTILE_STRINGS},
        [
            "not_a_server_error",
            "response_schema_conformance",
            "content_type_conformance",
            "response_headers_conformance",
        ],
    )


def _at_known_tools(tools: Tools, member: bool) -> Callable[[HookContext, Case[Any]], Case[Any]]:
    turns = itertools.count()

    def map_case(context: HookContext, case: Case[Any]) -> Case[Any]:
        parameters = case.path_parameters or {}
        if "id" in parameters:
            pick = next(turns) % 3
            if pick:
                parameters["id"] = tools.public if pick == 1 else tools.private
                if "version_id" in parameters:
                    parameters["version_id"] = "v1"
                if case.headers and not member:  # a drawn Authorization (the BEARER scheme) is refused
                    case.headers.pop("Authorization", None)
        return case

    return map_case


@pytest.mark.parametrize("caller", ["anonymous", "member"])
def test_trs_answers_as_its_openapi_document_says(tools: Tools, caller: str) -> None:
    schema = schemathesis.openapi.from_dict(_document(), config=_config(tools, caller == "member"))
    schema.hook("map_case")(_at_known_tools(tools, caller == "member"))
    statuses: set[tuple[str, int]] = set()
    leaks: list[str] = []

    def seen(label: str, response: Response) -> None:
        statuses.add((label, response.status_code))
        shown = f"{response.headers} {response.content!r}"
        # Only in what is shown: an error may repeat the name asked for (as for no such tool).
        if caller == "anonymous" and response.status_code == 200 and tools.private in shown:
            leaks.append(f"{label}: the private tool shown anonymously: {shown[:300]}")

    outcome = run(schema, seen)
    assert not outcome.errors, "schemathesis could not run:\n" + "\n".join(outcome.errors)
    assert len(outcome.operations) == 10  # the document's paths but /service-info
    never = sorted(outcome.operations - outcome.exercised)
    assert not never, f"never called: {never}"
    failures = outcome.failures + leaks
    assert not failures, f"{len(failures)} failures:\n\n" + "\n\n".join(failures[:20])
    # The known tools were reached: their documents, not only errors, were validated.
    assert ("GET /tools/{id}", 200) in statuses
    assert ("GET /tools/{id}/versions/{version_id}", 200) in statuses
