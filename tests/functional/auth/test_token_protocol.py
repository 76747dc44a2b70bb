"""The Docker token protocol as clients see it: challenges, the token endpoint (GET and
POST, refresh tokens), what a token grants, and every way a token can be bad."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from dockyard.auth.keys import KeyRing
from tests.support.identity import (
    ADMIN,
    ADMIN_PASSWORD,
    PASSWORD,
    Api,
    TokenAuth,
    jwt_claims,
    oci_as,
    parse_challenge,
    unique,
)
from tests.support.oci import oci_manifest
from tests.support.servers import RunningRegistry, worker_sockets


@dataclass(frozen=True)
class World:
    owner: str
    outsider: str
    workspace: str
    private: str
    public: str


@pytest.fixture(scope="module")
def world(token_registry: RunningRegistry) -> World:
    owner, outsider, ws = unique("owner"), unique("outsider"), unique("proto")
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as admin:
        admin.create_user(owner)
        admin.create_user(outsider)
    private, public = f"{ws}/private", f"{ws}/public"
    with Api.connect(token_registry, owner, PASSWORD) as api:
        api.create_workspace(ws)
        with oci_as(token_registry, owner, PASSWORD) as oci:
            oci.push(private, oci_manifest(), "v1")
            oci.push(public, oci_manifest(), "v1")
        api.set_visibility(public, "public")
    return World(owner, outsider, ws, private, public)


@pytest.fixture
def http(token_registry: RunningRegistry) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=token_registry.url, timeout=30) as client:
        yield client


def token(
    http: httpx.Client, *scopes: str, auth: tuple[str, str] | None = None, **params: str
) -> dict[str, Any]:
    query: list[tuple[str, str | int | float | bool | None]] = [
        ("service", "dockyard"),
        *(("scope", s) for s in scopes),
        *params.items(),
    ]
    response = http.get("/auth/token", params=query, auth=auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def access_of(body: dict[str, Any]) -> dict[str, list[str]]:
    return {entry["name"]: entry["actions"] for entry in jwt_claims(body["token"])["access"]}


def manifest_get(http: httpx.Client, repo: str, bearer: str) -> httpx.Response:
    return http.get(f"/v2/{repo}/manifests/v1", headers={"Authorization": f"Bearer {bearer}"})


def test_base_challenge_names_the_realm_and_service(
    http: httpx.Client, token_registry: RunningRegistry
) -> None:
    response = http.get("/v2/")
    assert response.status_code == 401
    assert response.headers["docker-distribution-api-version"] == "registry/2.0"
    scheme, params = parse_challenge(response.headers["www-authenticate"])
    assert scheme == "Bearer"
    assert params == {"realm": f"{token_registry.url}/auth/token", "service": "dockyard"}


def test_route_challenge_carries_the_scope(http: httpx.Client, world: World) -> None:
    pull = http.get(f"/v2/{world.private}/manifests/v1")
    assert pull.status_code == 401
    assert pull.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert parse_challenge(pull.headers["www-authenticate"])[1]["scope"] == f"repository:{world.private}:pull"
    push = http.post(f"/v2/{world.private}/blobs/uploads/")
    assert (
        parse_challenge(push.headers["www-authenticate"])[1]["scope"]
        == f"repository:{world.private}:pull,push"
    )
    delete = http.delete(f"/v2/{world.private}/manifests/v1")
    assert (
        parse_challenge(delete.headers["www-authenticate"])[1]["scope"]
        == f"repository:{world.private}:delete"
    )
    catalog = http.get("/v2/_catalog")
    assert parse_challenge(catalog.headers["www-authenticate"])[1]["scope"] == "registry:catalog:*"


def test_anonymous_token_grants_public_pull_only(http: httpx.Client, world: World) -> None:
    body = token(http, f"repository:{world.public}:pull,push", f"repository:{world.private}:pull")
    assert jwt_claims(body["token"])["sub"] == ""
    assert access_of(body) == {world.public: ["pull"], world.private: []}
    assert manifest_get(http, world.public, body["token"]).status_code == 200
    denied = manifest_get(http, world.private, body["token"])
    assert denied.status_code == 401
    assert parse_challenge(denied.headers["www-authenticate"])[1]["error"] == "insufficient_scope"


def test_token_response_fields(http: httpx.Client, world: World) -> None:
    body = token(http, f"repository:{world.private}:pull", auth=(world.owner, PASSWORD))
    assert body["token"] == body["access_token"]
    assert body["expires_in"] >= 60
    assert time.strptime(body["issued_at"], "%Y-%m-%dT%H:%M:%SZ")
    assert "refresh_token" not in body
    claims = jwt_claims(body["token"])
    assert claims["sub"] == world.owner
    assert claims["aud"] == "dockyard"
    assert claims["exp"] - claims["iat"] == body["expires_in"]
    header = json.loads(base64.urlsafe_b64decode(body["token"].split(".")[0] + "=="))
    assert header["alg"] == "ES256"
    assert len(header["kid"].split(":")) == 12


def test_repeated_and_space_separated_scopes(http: httpx.Client, world: World) -> None:
    joined = f"repository:{world.private}:pull repository:{world.public}:pull"
    body = token(http, joined, "repository:nowhere-at-all/x:pull", auth=(world.owner, PASSWORD))
    assert access_of(body) == {world.private: ["pull"], world.public: ["pull"], "nowhere-at-all/x": []}


def test_star_means_every_action_the_caller_has(http: httpx.Client, world: World) -> None:
    assert access_of(token(http, f"repository:{world.private}:*", auth=(world.owner, PASSWORD))) == {
        world.private: ["delete", "pull", "push"]
    }


def test_scope_name_with_a_port_is_parsed(http: httpx.Client) -> None:
    body = token(http, "repository:localhost:5000/lab/tool:pull", auth=(ADMIN, ADMIN_PASSWORD))
    assert access_of(body) == {"localhost:5000/lab/tool": []}, "not a valid repository name: nothing granted"


def test_private_and_missing_repositories_get_identical_grants(http: httpx.Client, world: World) -> None:
    for auth in (None, (world.outsider, PASSWORD)):
        body = token(
            http,
            f"repository:{world.private}:pull,push",
            f"repository:{world.workspace}/none:pull,push",
            auth=auth,
        )
        assert access_of(body) == {world.private: [], f"{world.workspace}/none": []}


def test_wrong_password_is_401(http: httpx.Client, world: World) -> None:
    response = http.get("/auth/token", params={"service": "dockyard"}, auth=(world.owner, "not-the-password"))
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


def test_other_service_is_refused(http: httpx.Client) -> None:
    response = http.get("/auth/token", params={"service": "someone-else"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_post_password_grant(http: httpx.Client, world: World) -> None:
    form = {
        "grant_type": "password",
        "username": world.owner,
        "password": PASSWORD,
        "service": "dockyard",
        "client_id": "containerd-client",
        "scope": f"repository:{world.private}:pull,push repository:{world.workspace}/other:pull",
    }
    response = http.post("/auth/token", data=form)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scope"] == f"repository:{world.private}:pull,push repository:{world.workspace}/other:pull"
    assert "refresh_token" not in body
    assert manifest_get(http, world.private, body["access_token"]).status_code == 200
    wrong = http.post("/auth/token", data={**form, "password": "nope-nope-nope"})
    assert wrong.status_code == 401


def test_unknown_grant_type(http: httpx.Client) -> None:
    response = http.post("/auth/token", data={"grant_type": "client_credentials", "service": "dockyard"})
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_refresh_tokens_for_offline_logins(
    http: httpx.Client, world: World, token_registry: RunningRegistry
) -> None:
    user = unique("refresher")
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as admin:
        admin.create_user(user)
    login = token(http, auth=(user, PASSWORD), offline_token="true", client_id="docker", account=user)
    refresh = login["refresh_token"]
    assert refresh.startswith("dyr_")
    form = {
        "grant_type": "refresh_token",
        "refresh_token": refresh,
        "service": "dockyard",
        "client_id": "docker",
        "scope": f"repository:{user}/tool:pull,push",
    }
    refreshed = http.post("/auth/token", data=form)
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["refresh_token"] == refresh
    assert refreshed.json()["scope"] == f"repository:{user}/tool:pull,push"
    # A password change ends every remembered login.
    with Api.connect(token_registry, user, PASSWORD) as api:
        api.call(
            "PATCH", f"/users/{user}", json={"password": "a-brand-new-password", "current_password": PASSWORD}
        )
    again = http.post("/auth/token", data=form)
    assert again.status_code == 401
    assert again.json()["error"] == "invalid_grant"
    garbage = http.post("/auth/token", data={**form, "refresh_token": "dyr_not-a-token"})
    assert garbage.status_code == 401


def test_insufficient_scope_is_401_with_the_full_scope(http: httpx.Client, world: World) -> None:
    # The outsider may not push here: a new token would not help.
    pull_only = token(http, f"repository:{world.public}:pull", auth=(world.outsider, PASSWORD))["token"]
    response = http.post(
        f"/v2/{world.public}/blobs/uploads/", headers={"Authorization": f"Bearer {pull_only}"}
    )
    assert response.status_code == 401
    params = parse_challenge(response.headers["www-authenticate"])[1]
    assert params["scope"] == f"repository:{world.public}:pull,push"
    assert params["error"] == "insufficient_scope"
    assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert response.json()["errors"][0]["detail"] == [
        {"Type": "repository", "Name": world.public, "Action": "pull,push"}
    ]


def test_a_token_narrower_than_its_holders_rights_is_403_with_the_challenge(
    http: httpx.Client, world: World, token_registry: RunningRegistry
) -> None:
    # The owner may push, but holds a token fetched for pull only (oras-py keeps its first
    # token and asks for a new one only on a 403): 403 with the same challenge (RFC 6750
    # insufficient_scope), and a token for the challenge's scope then works.
    pull_only = token(http, f"repository:{world.private}:pull", auth=(world.owner, PASSWORD))["token"]
    narrow = http.post(
        f"/v2/{world.private}/blobs/uploads/", headers={"Authorization": f"Bearer {pull_only}"}
    )
    assert narrow.status_code == 403
    assert narrow.json()["errors"][0]["code"] == "DENIED"
    assert "fetch a new token" in narrow.json()["errors"][0]["message"]
    params = parse_challenge(narrow.headers["www-authenticate"])[1]
    assert (params["scope"], params["error"]) == (
        f"repository:{world.private}:pull,push",
        "insufficient_scope",
    )
    wider = token(http, params["scope"], auth=(world.owner, PASSWORD))["token"]
    started = http.post(f"/v2/{world.private}/blobs/uploads/", headers={"Authorization": f"Bearer {wider}"})
    assert started.status_code == 202
    # A personal access token limited to pull caps its holder: no new token would help.
    with Api.connect(token_registry, world.owner, PASSWORD) as api:
        _, secret = api.personal_token(["pull"])
    capped = token(http, f"repository:{world.private}:pull", auth=(world.owner, secret))["token"]
    refused = http.post(f"/v2/{world.private}/blobs/uploads/", headers={"Authorization": f"Bearer {capped}"})
    assert refused.status_code == 401


def test_basic_credentials_on_v2(http: httpx.Client, world: World) -> None:
    ok = http.get(f"/v2/{world.private}/manifests/v1", auth=(world.owner, PASSWORD))
    assert ok.status_code == 200
    assert http.get("/v2/", auth=(world.owner, PASSWORD)).status_code == 200
    outsider = http.get(f"/v2/{world.private}/manifests/v1", auth=(world.outsider, PASSWORD))
    missing = http.get(f"/v2/{world.workspace}/none/manifests/v1", auth=(world.outsider, PASSWORD))
    assert outsider.status_code == missing.status_code == 401
    assert outsider.json()["errors"][0]["code"] == missing.json()["errors"][0]["code"] == "UNAUTHORIZED"
    wrong = http.get(f"/v2/{world.public}/manifests/v1", auth=(world.owner, "wrong-password"))
    assert wrong.status_code == 401


def test_personal_access_token_revocation_is_immediate(
    http: httpx.Client, world: World, token_registry: RunningRegistry
) -> None:
    with Api.connect(token_registry, world.owner, PASSWORD) as api:
        token_id, secret = api.personal_token(["pull"])
        assert http.get(f"/v2/{world.private}/manifests/v1", auth=(world.owner, secret)).status_code == 200
        assert access_of(
            token(http, f"repository:{world.private}:pull,push", auth=(world.owner, secret))
        ) == {world.private: ["pull"]}, "a pull-only token caps its owner's rights"
        api.revoke_token(token_id)
    assert http.get(f"/v2/{world.private}/manifests/v1", auth=(world.owner, secret)).status_code == 401
    denied = http.get("/auth/token", params={"service": "dockyard"}, auth=(world.owner, secret))
    assert denied.status_code == 401


# --- bad tokens ---------------------------------------------------------------------------


def server_key(registry: RunningRegistry) -> tuple[str, Any]:
    keys = registry.data_dir / "keys"
    kid = json.loads((keys / "keys.json").read_text())["active"]
    private = serialization.load_pem_private_key((keys / f"{kid.replace(':', '')}.pem").read_bytes(), None)
    return kid, private


def claims_for(repo: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": "dockyard",
        "sub": ADMIN,
        "aud": "dockyard",
        "iat": now,
        "nbf": now - 1,
        "exp": now + 300,
        "jti": "x",
        "access": [{"type": "repository", "name": repo, "actions": ["pull"]}],
        "dyk": {"k": "user", "i": 1, "a": True},
        **overrides,
    }


def test_a_forged_token_signed_with_the_server_key_is_accepted(
    http: httpx.Client, world: World, token_registry: RunningRegistry
) -> None:
    """The control for the cases below: our crafted claims are right when properly signed."""
    kid, key = server_key(token_registry)
    good = jwt.encode(claims_for(world.private), key, algorithm="ES256", headers={"kid": kid})
    assert manifest_get(http, world.private, good).status_code == 200


@pytest.mark.parametrize(
    "case",
    [
        "tampered",
        "alg-none",
        "hs256-with-public-key",
        "expired",
        "not-yet-valid",
        "wrong-audience",
        "wrong-issuer",
        "unknown-kid",
        "garbage",
    ],
)
def test_bad_tokens_are_invalid_token(
    http: httpx.Client, world: World, token_registry: RunningRegistry, case: str
) -> None:
    kid, key = server_key(token_registry)
    now = int(time.time())
    claims = claims_for(world.private)
    if case == "tampered":
        body = token(http, f"repository:{world.public}:pull")["token"]
        head, payload, signature = body.split(".")
        forged = jwt_claims(body) | {"access": claims["access"]}
        bad = ".".join(
            [head, base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode(), signature]
        )
    elif case == "alg-none":
        bad = jwt.encode(claims, "", algorithm="none", headers={"kid": kid})
    elif case == "hs256-with-public-key":
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        head = base64.urlsafe_b64encode(
            json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode()
        ).rstrip(b"=")
        payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
        sig = base64.urlsafe_b64encode(
            hmac.new(public, head + b"." + payload, hashlib.sha256).digest()
        ).rstrip(b"=")
        bad = b".".join([head, payload, sig]).decode()
    elif case == "expired":
        bad = jwt.encode(
            claims | {"exp": now - 60, "iat": now - 400, "nbf": now - 400},
            key,
            algorithm="ES256",
            headers={"kid": kid},
        )
    elif case == "not-yet-valid":
        bad = jwt.encode(claims | {"nbf": now + 600}, key, algorithm="ES256", headers={"kid": kid})
    elif case == "wrong-audience":
        bad = jwt.encode(claims | {"aud": "another-registry"}, key, algorithm="ES256", headers={"kid": kid})
    elif case == "wrong-issuer":
        bad = jwt.encode(claims | {"iss": "mallory"}, key, algorithm="ES256", headers={"kid": kid})
    elif case == "unknown-kid":
        bad = jwt.encode(claims, key, algorithm="ES256", headers={"kid": "AAAA:" * 11 + "AAAA"})
    else:
        bad = "not.a.jwt"
    response = manifest_get(http, world.private, bad)
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert parse_challenge(response.headers["www-authenticate"])[1]["error"] == "invalid_token"


def test_jwks_publishes_the_verification_keys(http: httpx.Client, token_registry: RunningRegistry) -> None:
    kid, _ = server_key(token_registry)
    keys = http.get("/auth/jwks.json").json()["keys"]
    assert kid in {k["kid"] for k in keys}
    assert all(k["kty"] == "EC" and k["crv"] == "P-256" and "d" not in k for k in keys)


def test_key_rotation_logs_nobody_out(world: World, token_registry: RunningRegistry, tmp_path: Path) -> None:
    """After a rotation, tokens of the old key verify until its grace ends; then clients get
    invalid_token and silently fetch a new one."""
    keys = token_registry.data_dir / "keys"
    with httpx.Client(base_url=token_registry.url, timeout=30) as http:
        old = token(http, f"repository:{world.private}:pull", auth=(world.owner, PASSWORD))["token"]
        old_kid = json.loads(base64.urlsafe_b64decode(old.split(".")[0] + "=="))["kid"]
        new_kid = KeyRing(keys).rotate(keep_seconds=600)
        assert new_kid != old_kid
        assert manifest_get(http, world.private, old).status_code == 200, "the old key still verifies"
        fresh = token(http, f"repository:{world.private}:pull", auth=(world.owner, PASSWORD))["token"]
        assert json.loads(base64.urlsafe_b64decode(fresh.split(".")[0] + "=="))["kid"] == new_kid
        # End the old key's grace (as time would), then its tokens stop verifying.
        state = json.loads((keys / "keys.json").read_text())
        state["retired"][old_kid] = time.time() - 1
        (keys / "keys.json").write_text(json.dumps(state))
        expired = manifest_get(http, world.private, old)
        deadline = time.monotonic() + 10  # each worker looks at the key folder once a second
        while expired.status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.2)
            expired = manifest_get(http, world.private, old)
        assert expired.status_code == 401
        # A worker looks at the folder again at its first request a second after its last look,
        # and never takes the old token back. Ask each of them, through its own socket, until it
        # has refused it: from then on nobody is let in with it.
        path, bearer = f"/v2/{world.private}/manifests/v1", {"Authorization": f"Bearer {old}"}
        deadline = time.monotonic() + 30
        for socket_path in worker_sockets(token_registry):
            transport = httpx.HTTPTransport(uds=str(socket_path))
            with httpx.Client(base_url="http://worker", transport=transport, timeout=30) as worker:
                while worker.get(path, headers=bearer).status_code != 401:
                    assert time.monotonic() < deadline, f"{socket_path} still takes the old token"
        assert parse_challenge(expired.headers["www-authenticate"])[1]["error"] == "invalid_token"
        assert manifest_get(http, world.private, fresh).status_code == 200
    holder = TokenAuth(world.owner, PASSWORD)
    holder.token = old  # a client still holding the old token
    with httpx.Client(base_url=token_registry.url, timeout=30, auth=holder) as client:
        assert client.get(f"/v2/{world.private}/manifests/v1").status_code == 200, "the client re-asked"
    assert holder.token != old


def test_a_password_change_ends_remembered_password_logins_on_every_worker(
    token_registry: RunningRegistry,
) -> None:
    """Workers remember a password that matched (argon2 once per login, not per request);
    after a password change the old one is refused at once by every worker."""
    user = unique("changer")
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as admin:
        admin.create_user(user)
    path = "/auth/token?service=dockyard"

    def basic(password: str) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}

    def every_worker(password: str, times: int) -> list[list[int]]:
        """The statuses each worker answered, asked ``times`` through its own socket."""
        answers = []
        for socket_path in worker_sockets(token_registry):
            transport = httpx.HTTPTransport(uds=str(socket_path))
            with httpx.Client(base_url="http://worker", transport=transport, timeout=30) as http:
                answers.append([http.get(path, headers=basic(password)).status_code for _ in range(times)])
        return answers

    # Twice each: the second login is the remembered one.
    assert all(statuses == [200, 200] for statuses in every_worker(PASSWORD, 2))
    with Api.connect(token_registry, user, PASSWORD) as api:
        api.call(
            "PATCH", f"/users/{user}", json={"password": "a-brand-new-password", "current_password": PASSWORD}
        )
    refused = every_worker(PASSWORD, 1)  # once each: ten failures would lock the account
    assert all(statuses == [401] for statuses in refused), refused
    accepted = every_worker("a-brand-new-password", 2)
    assert all(statuses == [200, 200] for statuses in accepted), accepted
