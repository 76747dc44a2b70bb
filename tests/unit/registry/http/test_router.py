"""The /v2 router driven in-process: routes, the error envelope, HEAD, and access checks."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from dockyard.app.asgi import Dockyard, create_app
from dockyard.db.engine import Database
from dockyard.db.migrate import upgrade
from dockyard.settings import Settings
from tests.support.oci import oci_manifest

LOOPBACK = ("127.0.0.1", 123)
REMOTE = ("192.0.2.7", 40000)  # TEST-NET-1: never loopback
DIGEST = "sha256:" + hashlib.sha256(b"x").hexdigest()
UPLOAD_ID = "3f1e4f5a-2b8c-4d7e-9a10-123456789abc"


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path,
        "auth_mode": "dev",
        "gc_interval_seconds": 0,
        "access_log": False,
        "max_manifest_bytes": 64 * 1024,
        **overrides,
    }
    return Settings(**values)


@asynccontextmanager
async def started(settings: Settings) -> AsyncIterator[Dockyard]:
    """The app as ``dockyard serve`` runs it: database migrated, lifespan started and stopped."""
    db = Database(settings.effective_database_url)
    try:
        await upgrade(db)
    finally:
        await db.dispose()
    app = create_app(settings)
    await app.startup()
    try:
        yield app
    finally:
        await app.shutdown()


def client(app: Dockyard, peer: tuple[str, int] = LOOPBACK, **kwargs: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=peer)
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", **kwargs)


@pytest.fixture
async def dev_app(tmp_path: Path) -> AsyncIterator[Dockyard]:
    async with started(settings_for(tmp_path)) as app:
        yield app


@pytest.fixture
async def http(dev_app: Dockyard) -> AsyncIterator[httpx.AsyncClient]:
    async with client(dev_app) as c:
        yield c


@pytest.fixture
async def basic_app(tmp_path: Path) -> AsyncIterator[Dockyard]:
    settings = settings_for(
        tmp_path, auth_mode="basic", admin_username="admin", admin_password=SecretStr("s3cret")
    )
    async with started(settings) as app:
        yield app


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def error_body(response: httpx.Response) -> list[dict[str, Any]]:
    """The spec's envelope, checked strictly: one key ``errors``, each error code/message/detail."""
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["content-length"]) == len(response.content)
    document = response.json()
    assert list(document) == ["errors"]
    errors: list[dict[str, Any]] = document["errors"]
    assert len(errors) == 1
    assert set(errors[0]) == {"code", "message", "detail"}
    assert isinstance(errors[0]["message"], str)
    assert errors[0]["message"]
    return errors


def code_of(response: httpx.Response) -> str:
    return str(error_body(response)[0]["code"])


# ---------------------------------------------------------------- routes


@pytest.mark.parametrize("path", ["/v2/", "/v2"])
async def test_base_endpoint(http: httpx.AsyncClient, path: str) -> None:
    response = await http.get(path)
    assert response.status_code == 200
    assert response.json() == {}
    assert response.headers["docker-distribution-api-version"] == "registry/2.0"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/v2/", "GET, HEAD"),
        ("POST", "/v2/_catalog", "GET, HEAD"),
        ("PUT", "/v2/team/app/tags/list", "GET, HEAD"),
        ("PATCH", "/v2/team/app/manifests/latest", "DELETE, GET, HEAD, PUT"),
        ("POST", "/v2/team/app/manifests/latest", "DELETE, GET, HEAD, PUT"),
        ("GET", "/v2/team/app/blobs/uploads/", "POST"),
        ("POST", f"/v2/team/app/blobs/uploads/{UPLOAD_ID}", "DELETE, GET, HEAD, PATCH, PUT"),
        ("PUT", f"/v2/team/app/blobs/{DIGEST}", "DELETE, GET, HEAD"),
        ("DELETE", f"/v2/team/app/referrers/{DIGEST}", "GET, HEAD"),
    ],
)
async def test_unsupported_method_is_405_with_allow(
    http: httpx.AsyncClient, method: str, path: str, allow: str
) -> None:
    response = await http.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert code_of(response) == "UNSUPPORTED"


@pytest.mark.parametrize(
    "path",
    ["/v2/team/app", "/v2/team/app/unknown/thing", "/v2/team/app/manifests/", "/v2/team/app/tags/list/extra"],
)
async def test_unknown_route_is_404(http: httpx.AsyncClient, path: str) -> None:
    response = await http.get(path)
    assert response.status_code == 404
    assert code_of(response) == "UNSUPPORTED"


@pytest.mark.parametrize(
    "path",
    [
        "/v2/Team/App/tags/list",
        "/v2/team//app/manifests/latest",
        "/v2/team/app-/manifests/latest",
        "/v2/" + "a" * 256 + "/tags/list",
        "/v2/team/app%0A/tags/list",
    ],
)
async def test_invalid_name_is_refused_before_authentication(basic_app: Dockyard, path: str) -> None:
    async with client(basic_app) as http:  # no credentials: a valid name would get 401
        response = await http.get(path)
    assert response.status_code == 400, response.text
    assert code_of(response) == "NAME_INVALID"


async def test_healthz(http: httpx.AsyncClient) -> None:
    response = await http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "registry_outbox_failing": 0}


# ---------------------------------------------------------------- errors


async def test_error_envelope(http: httpx.AsyncClient) -> None:
    response = await http.get("/v2/team/app/manifests/latest")
    assert response.status_code == 404
    assert code_of(response) == "MANIFEST_UNKNOWN"
    assert response.headers["docker-distribution-api-version"] == "registry/2.0"


async def test_error_detail_is_carried(http: httpx.AsyncClient) -> None:
    manifest = oci_manifest()  # its blobs were never pushed
    response = await http.put(
        "/v2/team/app/manifests/v1", content=manifest.body, headers={"Content-Type": manifest.media_type}
    )
    assert response.status_code == 404
    errors = error_body(response)
    assert errors[0]["code"] == "MANIFEST_BLOB_UNKNOWN"
    assert errors[0]["detail"]["digest"] in {blob.digest for blob in manifest.blobs}


async def test_oversize_manifest_is_413_manifest_invalid(http: httpx.AsyncClient) -> None:
    response = await http.put(
        "/v2/team/app/manifests/v1",
        content=b"{" + b" " * (64 * 1024) + b"}",
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert response.status_code == 413
    assert code_of(response) == "MANIFEST_INVALID"


async def test_invalid_digest_in_the_path(http: httpx.AsyncClient) -> None:
    response = await http.get("/v2/team/app/blobs/sha256:1234")
    assert response.status_code == 400
    assert code_of(response) == "DIGEST_INVALID"


async def test_range_invalid_carries_upload_headers(http: httpx.AsyncClient) -> None:
    start = await http.post("/v2/team/app/blobs/uploads/")
    location = start.headers["location"]
    response = await http.patch(
        location, content=b"abc", headers={"Content-Range": "5-7", "Content-Type": "application/octet-stream"}
    )
    assert response.status_code == 416
    assert code_of(response) == "RANGE_INVALID"
    assert response.headers["location"] == location
    assert response.headers["range"] == "0-0"


async def test_an_unexpected_exception_is_500_unknown(
    dev_app: Dockyard, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: object) -> list[str]:
        raise RuntimeError("secret internal state")

    monkeypatch.setattr(dev_app.services.manifests, "tags", broken)
    async with client(dev_app) as http:
        with caplog.at_level(logging.ERROR, logger="dockyard.registry"):
            response = await http.get("/v2/team/app/tags/list")
            head = await http.head("/v2/team/app/tags/list")
    assert response.status_code == 500
    assert code_of(response) == "UNKNOWN"
    assert "secret internal state" not in response.text, "internals stay in the log"
    assert response.headers["docker-distribution-api-version"] == "registry/2.0"
    assert head.status_code == 500
    assert head.content == b""
    logged = [r for r in caplog.records if r.name == "dockyard.registry" and r.exc_info]
    assert len(logged) == 2
    assert all(isinstance(r.exc_info[1], RuntimeError) for r in logged if r.exc_info)


@pytest.mark.parametrize(
    "n",
    ["\u00b2", "\u0663", "1" * 5000, "1234567890", ""],
    ids=["superscript-two", "arabic-indic-three", "5000-digits", "10-digits", "empty"],
)
async def test_page_size_must_be_ascii_digits(http: httpx.AsyncClient, n: str) -> None:
    for path in ("/v2/team/app/tags/list", "/v2/_catalog"):
        response = await http.get(path, params={"n": n})
        assert response.status_code == 400, response.text
        assert code_of(response) == "PAGINATION_NUMBER_INVALID"


@pytest.mark.parametrize(
    "path",
    [
        "/v2/team/app/manifests/latest",
        f"/v2/team/app/blobs/{DIGEST}",
        "/v2/Bad/tags/list",
        "/v2/team/app/unknown",
    ],
)
async def test_head_errors_have_no_body(http: httpx.AsyncClient, path: str) -> None:
    get = await http.get(path)
    head = await http.head(path)
    assert head.status_code == get.status_code
    assert head.status_code >= 400
    assert head.content == b""
    assert head.headers["content-length"] == str(len(get.content)), "HEAD describes what GET would send"


async def test_head_of_an_unsupported_method_has_no_body(http: httpx.AsyncClient) -> None:
    response = await http.head("/v2/team/app/blobs/uploads/")
    assert response.status_code == 405
    assert response.content == b""
    assert response.headers["allow"] == "POST"


# ---------------------------------------------------------------- access


async def test_basic_mode_without_credentials(basic_app: Dockyard) -> None:
    async with client(basic_app) as http:
        response = await http.get("/v2/")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Basic realm="dockyard"'
    assert code_of(response) == "UNAUTHORIZED"


@pytest.mark.parametrize(
    "authorization",
    [
        basic("admin", "wrong")["Authorization"],
        basic("root", "s3cret")["Authorization"],
        basic("admin", "s3cret ")["Authorization"],
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"\xff\xfe:s3cret").decode(),
        "Bearer some.jwt.token",
    ],
)
async def test_basic_mode_with_wrong_credentials(basic_app: Dockyard, authorization: str) -> None:
    async with client(basic_app, headers={"Authorization": authorization}) as http:
        response = await http.get("/v2/_catalog")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Basic realm="dockyard"'
    assert code_of(response) == "UNAUTHORIZED"


@pytest.mark.parametrize("peer", [LOOPBACK, REMOTE])
async def test_basic_mode_with_the_right_credentials(basic_app: Dockyard, peer: tuple[str, int]) -> None:
    async with client(basic_app, peer, headers=basic("admin", "s3cret")) as http:
        assert (await http.get("/v2/")).status_code == 200
        catalog = await http.get("/v2/_catalog")
    assert catalog.status_code == 200
    assert catalog.json() == {"repositories": []}


@pytest.mark.parametrize("peer", [LOOPBACK, ("::1", 5000), ("127.10.0.1", 1)])
async def test_dev_mode_lets_loopback_clients_in(dev_app: Dockyard, peer: tuple[str, int]) -> None:
    async with client(dev_app, peer) as http:
        assert (await http.get("/v2/")).status_code == 200
        assert (await http.post("/v2/team/app/blobs/uploads/")).status_code == 202


@pytest.mark.parametrize("peer", [REMOTE, ("10.0.0.1", 1), ("::ffff:192.0.2.7", 1)])
async def test_dev_mode_refuses_other_clients(dev_app: Dockyard, peer: tuple[str, int]) -> None:
    async with client(dev_app, peer) as http:
        response = await http.get("/v2/")
        push = await http.post("/v2/team/app/blobs/uploads/")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Basic realm="dockyard"'
    assert code_of(response) == "UNAUTHORIZED"
    assert push.status_code == 401


async def test_dev_mode_accepts_the_admin_from_anywhere(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, admin_username="admin", admin_password=SecretStr("pw"))
    async with started(settings) as app, client(app, REMOTE) as http:
        assert (await http.get("/v2/", headers=basic("admin", "pw"))).status_code == 200
        assert (await http.get("/v2/", headers=basic("admin", "no"))).status_code == 401


async def test_mount_source_needs_pull_access(basic_app: Dockyard) -> None:
    """A cross-repository mount must not leak a blob the caller cannot pull: without access
    to ``from`` it falls back to a plain upload session."""
    async with client(basic_app, headers=basic("admin", "s3cret")) as http:
        data = os.urandom(100)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        start = await http.post("/v2/team/source/blobs/uploads/")
        put = await http.put(start.headers["location"], params={"digest": digest}, content=data)
        assert put.status_code == 201
        mounted = await http.post(
            "/v2/team/target/blobs/uploads/", params={"mount": digest, "from": "team/source"}
        )
        assert mounted.status_code == 201
        assert mounted.headers["location"] == f"/v2/team/target/blobs/{digest}"
        missing = await http.post(
            "/v2/team/other/blobs/uploads/", params={"mount": digest, "from": "team/none"}
        )
        assert missing.status_code == 202
        assert "/blobs/uploads/" in missing.headers["location"]


# ---------------------------------------------------------------- a round trip through the router


async def test_chunked_push_and_ranged_pull(http: httpx.AsyncClient) -> None:
    data = os.urandom(10_000)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    start = await http.post("/v2/team/app/blobs/uploads/")
    assert start.status_code == 202
    location = start.headers["location"]
    first = await http.patch(location, content=data[:6000], headers={"Content-Range": "0-5999"})
    assert first.status_code == 202
    assert first.headers["range"] == "0-5999"
    status = await http.get(location)
    assert status.status_code == 204
    assert status.headers["range"] == "0-5999"
    done = await http.put(location, params={"digest": digest}, content=data[6000:])
    assert done.status_code == 201
    assert done.headers["docker-content-digest"] == digest

    whole = await http.get(f"/v2/team/app/blobs/{digest}")
    assert whole.status_code == 200
    assert whole.content == data
    head = await http.head(f"/v2/team/app/blobs/{digest}")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(data))
    part = await http.get(f"/v2/team/app/blobs/{digest}", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.content == data[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
    beyond = await http.get(f"/v2/team/app/blobs/{digest}", headers={"Range": "bytes=20000-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{len(data)}"


async def test_manifest_round_trip(http: httpx.AsyncClient) -> None:
    manifest = oci_manifest()
    for blob in manifest.blobs:
        start = await http.post("/v2/team/app/blobs/uploads/")
        put = await http.put(start.headers["location"], params={"digest": blob.digest}, content=blob.data)
        assert put.status_code == 201
    pushed = await http.put(
        "/v2/team/app/manifests/v1", content=manifest.body, headers={"Content-Type": manifest.media_type}
    )
    assert pushed.status_code == 201
    assert pushed.headers["docker-content-digest"] == manifest.digest
    assert pushed.headers["location"] == f"/v2/team/app/manifests/{manifest.digest}"
    pulled = await http.get("/v2/team/app/manifests/v1", headers={"Accept": manifest.media_type})
    assert pulled.status_code == 200
    assert pulled.content == manifest.body
    assert pulled.headers["content-type"] == manifest.media_type
    assert pulled.headers["docker-content-digest"] == manifest.digest
    tags = await http.get("/v2/team/app/tags/list")
    assert tags.json() == {"name": "team/app", "tags": ["v1"]}
