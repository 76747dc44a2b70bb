"""Test support for token mode: a server with a known admin, an /api/v1 client that
sets up users, workspaces, teams, robots and grants, and an ``httpx.Auth`` that speaks the
Docker token protocol as clients do (on a 401 Bearer challenge, or a 403 one for a token too
narrow, fetch a token from the realm with Basic credentials, retry)."""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.oci import OciClient
from tests.support.servers import RunningRegistry, start_dockyard

ADMIN = "admin"
ADMIN_PASSWORD = "admin-secret-password"
PASSWORD = "user-secret-password"


def start_token_dockyard(
    kind: str, base: Path, database_url: str = "", extra_env: dict[str, str] | None = None
) -> RunningRegistry:
    """``dockyard serve`` in token mode (the default) with a known first admin."""
    env = {
        "DOCKYARD_AUTH_MODE": "token",
        "DOCKYARD_ADMIN_USERNAME": ADMIN,
        "DOCKYARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
        **(extra_env or {}),
    }
    return start_dockyard(kind, base, database_url, env)


def unique(label: str) -> str:
    """A fresh lowercase name (users, workspaces and teams share one namespace per server)."""
    clean = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:20] or "x"
    return f"{clean}-{uuid.uuid4().hex[:8]}"


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.partition(" ")
    return scheme, dict(re.findall(r'(\w+)="([^"]*)"', rest))


def jwt_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, unverified (tests read what the server granted)."""
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


class TokenAuth(httpx.Auth):
    """The Docker token flow with Basic credentials (or anonymously), like docker and podman."""

    def __init__(self, username: str | None = None, secret: str | None = None) -> None:
        self.credentials = None if username is None else (username, secret or "")
        self.token: str | None = None
        self.last_token_response: dict[str, Any] | None = None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self.token:
            request.headers["Authorization"] = f"Bearer {self.token}"
        response = yield request
        if response.status_code not in (401, 403):
            return
        scheme, params = parse_challenge(response.headers.get("www-authenticate", ""))
        if scheme != "Bearer" or (
            response.status_code == 403 and params.get("error") != "insufficient_scope"
        ):
            return  # a 403 with the challenge says "this token is too narrow; fetch another"
        query = {"service": params.get("service", "")}
        if "scope" in params:
            query["scope"] = params["scope"]
        token_request = httpx.Request("GET", params["realm"], params=query)
        if self.credentials is not None:
            token_request.headers["Authorization"] = httpx.BasicAuth(*self.credentials)._auth_header
        token_response = yield token_request
        token_response.read()
        if token_response.status_code != 200:
            return
        self.last_token_response = token_response.json()
        self.token = self.last_token_response["token"]
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


@contextmanager
def oci_as(registry: RunningRegistry, username: str | None, secret: str | None = None) -> Iterator[OciClient]:
    """A Distribution API client that authenticates as ``username`` (None: anonymous)."""
    with httpx.Client(base_url=registry.url, timeout=60, auth=TokenAuth(username, secret)) as http:
        yield OciClient(http)


@dataclass
class Api:
    """/api/v1 as one user; every helper asserts the call succeeded."""

    http: httpx.Client
    username: str

    @classmethod
    @contextmanager
    def connect(cls, registry: RunningRegistry, username: str, secret: str) -> Iterator[Api]:
        with httpx.Client(base_url=f"{registry.url}/api/v1", timeout=60, auth=(username, secret)) as http:
            yield cls(http, username)

    def call(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        assert response.status_code == expect, (
            f"{method} {path}: {response.status_code} {response.text[:500]}"
        )
        return None if response.status_code == 204 else response.json()

    def create_user(self, username: str, password: str = PASSWORD) -> dict[str, Any]:
        result: dict[str, Any] = self.call(
            "POST", "/users", 201, json={"username": username, "password": password}
        )
        return result

    def create_workspace(self, name: str, default_visibility: str = "private") -> dict[str, Any]:
        result: dict[str, Any] = self.call(
            "POST", "/workspaces", 201, json={"name": name, "default_visibility": default_visibility}
        )
        return result

    def set_member(self, workspace: str, username: str, role: str) -> None:
        self.call("PUT", f"/workspaces/{workspace}/members/{username}", json={"role": role})

    def create_team(self, workspace: str, team: str) -> None:
        self.call("POST", f"/workspaces/{workspace}/teams", 201, json={"name": team})

    def add_to_team(self, workspace: str, team: str, username: str) -> None:
        self.call("PUT", f"/workspaces/{workspace}/teams/{team}/members/{username}")

    def set_team_role(self, workspace: str, team: str, role: str | None) -> None:
        self.call("PUT", f"/workspaces/{workspace}/teams/{team}/role", json={"role": role})

    def set_team_repository_role(self, repository: str, team: str, role: str | None) -> None:
        self.call(
            "PUT",
            "/repository/permissions/teams",
            params={"name": repository},
            json={"team": team, "role": role},
        )

    def set_visibility(self, repository: str, visibility: str) -> None:
        self.call(
            "PUT", "/repository/visibility", params={"name": repository}, json={"visibility": visibility}
        )

    def grant(self, repository: str, username: str, action: str = "pull", days: float | None = None) -> None:
        self.call(
            "PUT",
            "/repository/permissions/users",
            params={"name": repository},
            json={"username": username, "action": action, "expires_in_days": days},
        )

    def create_robot(self, workspace: str, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call(
            "POST", f"/workspaces/{workspace}/robots", 201, json={"name": name}
        )
        return result

    def set_robot_permission(
        self, workspace: str, name: str, role: str | None, repository: str | None = None
    ) -> None:
        self.call(
            "PUT",
            f"/workspaces/{workspace}/robots/{name}/permissions",
            json={"repository": repository, "role": role},
        )

    def robot_token(self, workspace: str, name: str, scopes: list[str] | None = None) -> str:
        result = self.call(
            "POST",
            f"/workspaces/{workspace}/robots/{name}/tokens",
            201,
            json={"name": "ci", "scopes": scopes or ["pull", "push", "delete"]},
        )
        secret: str = result["secret"]
        return secret

    def personal_token(self, scopes: list[str] | None = None, name: str = "test") -> tuple[int, str]:
        body: dict[str, Any] = {"name": name}
        if scopes is not None:
            body["scopes"] = scopes
        result = self.call("POST", "/user/tokens", 201, json=body)
        return int(result["info"]["id"]), str(result["secret"])

    def revoke_token(self, token_id: int) -> None:
        self.call("DELETE", f"/user/tokens/{token_id}", 204)
