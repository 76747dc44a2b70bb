"""Hostile values in every /api/v1 parameter and body field are refused with a 422 problem
that names the field, on SQLite and PostgreSQL; none reaches a query (where it was a 500).

The operations come from the server's published OpenAPI document, so a route added later is
checked too. Each is called as an admin (signing in is never what refuses it) with, one at a
time: an id of 2**31 and of 2**63 in each integer parameter (PostgreSQL's integer has 32 bits,
SQLite's 64); a NUL in each string parameter and string body field (PostgreSQL cannot store
one); NaN, infinity and 1e308 in each number body field; 2**63 in each integer body field.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api, oci_as, unique
from tests.support.oci import oci_manifest
from tests.support.servers import RunningRegistry

Json = dict[str, Any]
NUL = "a\x00b"
METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Case:
    """One request with one hostile value, and the error location the answer must name."""

    method: str
    path: str
    query: dict[str, Any]
    body: Any  # None: no body
    location: str

    def __str__(self) -> str:
        return f"{self.method} {self.path} ({self.location})"


class Spec:
    def __init__(self, document: Json) -> None:
        self.document = document

    def resolve(self, schema: Json) -> Json:
        """The schema itself: a $ref followed, and a nullable anyOf reduced to its other branch."""
        while True:
            if "$ref" in schema:
                schema = self.document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
            elif "anyOf" in schema:
                branches = [b for b in schema["anyOf"] if b.get("type") != "null"]
                schema = branches[0]
            else:
                return schema

    def sample(self, schema: Json) -> Any:
        """A harmless value of the schema's type (for the fields that are not under test)."""
        schema = self.resolve(schema)
        if "enum" in schema:
            return schema["enum"][0]
        kind = str(schema.get("type"))
        if kind == "object":
            fields = schema.get("properties", {})
            return {name: self.sample(fields[name]) for name in schema.get("required", [])}
        return {"integer": 1, "number": 1.0, "boolean": False, "array": []}.get(kind, "x")

    def hostile(self, schema: Json) -> Iterator[tuple[Any, str]]:
        """(value, where below the field the error is reported) for each hostile value."""
        schema = self.resolve(schema)
        kind = schema.get("type")
        if "enum" in schema:
            return
        if kind == "string" and schema.get("format") != "binary":
            yield NUL, ""
        elif kind == "integer":
            # Past the bound it declares (ids: 2**31), and past what either database stores.
            if "maximum" in schema:
                yield schema["maximum"] + 1, ""
            yield 2**63, ""
        elif kind == "number":
            yield math.nan, ""
            yield math.inf, ""
            yield 1e308, ""
        elif kind == "array":
            for value, below in self.hostile(schema.get("items", {})):
                yield [value], ".0" + below
        elif kind == "object" and isinstance(schema.get("additionalProperties"), dict):
            for value, below in self.hostile(schema["additionalProperties"]):
                yield {"k": value}, ".k" + below
        elif kind == "object":
            base = self.sample(schema)
            for name, sub in schema.get("properties", {}).items():
                for value, below in self.hostile(sub):
                    yield {**base, name: value}, f".{name}{below}"


def _cases(document: Json) -> Iterator[Case]:
    spec = Spec(document)
    for template, operations in document["paths"].items():
        for method, operation in operations.items():
            if method in METHODS:
                yield from _operation_cases(spec, method.upper(), template, operation)


def _operation_cases(spec: Spec, method: str, template: str, operation: Json) -> Iterator[Case]:
    parameters = operation.get("parameters", [])
    in_path = {p["name"]: spec.sample(p["schema"]) for p in parameters if p["in"] == "path"}
    query = {p["name"]: spec.sample(p["schema"]) for p in parameters if p["in"] == "query" and p["required"]}
    schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    body = None if schema is None else spec.sample(schema)

    def path(values: Json) -> str:
        return re.sub(r"\{(\w+)\}", lambda m: quote(str(values[m[1]]), safe=""), template)

    for parameter in parameters:
        name, where = parameter["name"], parameter["in"]
        for value, below in spec.hostile(parameter["schema"]):
            location = f"{where}.{name}{below}"
            if where == "path":
                yield Case(method, path({**in_path, name: value}), query, body, location)
            elif where == "query":
                yield Case(method, path(in_path), {**query, name: value}, body, location)
    if schema is not None:
        for value, below in spec.hostile(schema):
            yield Case(method, path(in_path), query, value, "body" + below)


@pytest.fixture
def admin(token_registry: RunningRegistry) -> Iterator[httpx.Client]:
    base = f"{token_registry.url}/api/v1"
    with httpx.Client(base_url=base, timeout=60, auth=(ADMIN, ADMIN_PASSWORD)) as http:
        yield http


def test_every_parameter_and_body_field_refuses_hostile_values(admin: httpx.Client) -> None:
    cases = list(_cases(admin.get("/openapi.json").json()))
    assert len(cases) > 200  # every route: ids, names, bodies
    wrong: list[str] = []
    for case in cases:
        # NaN and infinity as JSON's common extensions (json.dumps writes them; the server reads them).
        content = None if case.body is None else json.dumps(case.body)
        headers = {} if content is None else {"Content-Type": "application/json"}
        response = admin.request(case.method, case.path, params=case.query, content=content, headers=headers)
        if response.status_code != 422 or response.headers["content-type"] != "application/problem+json":
            wrong.append(f"{case}: {response.status_code} {response.text[:200]}")
            continue
        locations = [error["location"] for error in response.json().get("errors", [])]
        if not any(found == case.location or found.startswith(case.location + ".") for found in locations):
            wrong.append(f"{case}: refused for {locations or response.text[:200]}, not for the hostile value")
    assert not wrong, (
        f"{len(wrong)} of {len(cases)} hostile requests were not refused as they should:\n" + "\n".join(wrong)
    )


def test_a_line_break_in_a_path_is_answered_by_the_api_not_the_web_ui(admin: httpx.Client) -> None:
    for path in ("/images/lab%0Atool", "/workspaces/a%0Ab/members", "/no-such%0Aroute"):
        response = admin.get(path)
        assert response.status_code in (404, 422), (path, response.status_code, response.text[:200])
        assert response.headers["content-type"] == "application/problem+json", (path, response.text[:200])


# --------------------------------------------------------------------------- durations

# expires_in_days as raw JSON: each would make a grant or token permanent, or one the
# registry never honours (it leaves out grants that end within a minute), or was a 500.
DURATIONS = ["1e308", "1e400", "NaN", '"NaN"', "Infinity", '"-Infinity"', "0.0001", "0", "-1"]


@dataclass(frozen=True)
class Shared:
    admin: Api
    repository: str
    grantee: str


@pytest.fixture
def shared(token_registry: RunningRegistry) -> Iterator[Shared]:
    """A private repository and a user who is not a member of its workspace."""
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as admin:
        workspace, grantee = unique("durations"), unique("grantee")
        admin.create_workspace(workspace)
        admin.create_user(grantee)
        repository = f"{workspace}/tool"
        with oci_as(token_registry, ADMIN, ADMIN_PASSWORD) as oci:
            oci.push(repository, oci_manifest(), "v1")
        yield Shared(admin, repository, grantee)


def _refused(response: httpx.Response, field: str = "body.expires_in_days") -> None:
    assert response.status_code == 422, response.text[:300]
    assert response.headers["content-type"] == "application/problem+json"
    assert field in [error["location"] for error in response.json()["errors"]], response.text[:300]


def _raw(document: str) -> dict[str, Any]:
    return {"content": document, "headers": {"Content-Type": "application/json"}}


@pytest.mark.parametrize("days", DURATIONS)
def test_a_grant_cannot_be_made_permanent_or_too_short(shared: Shared, days: str) -> None:
    admin = shared.admin.http
    body = f'{{"username": "{shared.grantee}", "action": "pull", "expires_in_days": {days}}}'
    params = {"name": shared.repository}
    _refused(admin.put("/repository/permissions/users", params=params, **_raw(body)))
    users = admin.get("/repository/permissions", params=params).json()["users"]
    assert [grant["username"] for grant in users] == []
    # A short but honoured grant is fine: two minutes and more.
    body = f'{{"username": "{shared.grantee}", "action": "pull", "expires_in_days": 0.002}}'
    granted = admin.put("/repository/permissions/users", params=params, **_raw(body))
    assert granted.status_code == 200, granted.text
    assert 0 < granted.json()["expires_at"] - time.time() <= 0.002 * 86400


@pytest.mark.parametrize("days", DURATIONS)
def test_an_approval_cannot_be_made_permanent_or_too_short(
    token_registry: RunningRegistry, shared: Shared, days: str
) -> None:
    with Api.connect(token_registry, shared.grantee, PASSWORD) as grantee:
        asked = grantee.call("POST", "/access-requests", 201, json={"repository": shared.repository})
    approve = f"/access-requests/{asked['id']}/approve"
    _refused(shared.admin.http.post(approve, **_raw(f'{{"expires_in_days": {days}}}')))
    assert shared.admin.call("GET", f"/access-requests/{asked['id']}")["status"] == "pending"
    approved = shared.admin.call("POST", approve, json={"expires_in_days": 0.002})
    assert 0 < approved["grant"]["expires_at"] - time.time() <= 0.002 * 86400


@pytest.mark.parametrize("days", DURATIONS)
def test_a_token_cannot_be_made_permanent_or_too_short(shared: Shared, days: str) -> None:
    admin = shared.admin.http
    before = len(admin.get("/user/tokens").json())
    _refused(admin.post("/user/tokens", **_raw(f'{{"name": "ci", "expires_in_days": {days}}}')))
    assert len(admin.get("/user/tokens").json()) == before
