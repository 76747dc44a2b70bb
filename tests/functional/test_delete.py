"""Deleting images, versions and workspaces through the real server (token mode, its own data
folder and database, SQLite and PostgreSQL): who may, what /v2 answers after, the audit log
and the image's history, the name-clash rule, and the bytes ``dockyard gc`` reclaims on disk.

Each test runs its own Dockyard: collecting with no grace period would otherwise remove
what other tests are in the middle of pushing."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api, oci_as, start_token_dockyard
from tests.support.oci import Manifest, image_config, oci_manifest, random_blob
from tests.support.servers import RunningRegistry, dockyard_cli, postgres_database

WS = "lab"


@pytest.fixture
def server(db_kind: str, tmp_path: Path) -> Iterator[RunningRegistry]:
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(postgres_database()) if db_kind == "postgres" else ""
        running = start_token_dockyard(db_kind, tmp_path, url)
        stack.callback(running.stop)
        yield running


@pytest.fixture
def people(server: RunningRegistry) -> Iterator[dict[str, Api]]:
    """The workspace ``lab``: ``olga`` owns it, ``dev`` is a developer; and the admin."""
    with contextlib.ExitStack() as stack:
        admin = stack.enter_context(Api.connect(server, ADMIN, ADMIN_PASSWORD))
        for name in ("olga", "dev"):
            admin.create_user(name)
        owner = stack.enter_context(Api.connect(server, "olga", PASSWORD))
        owner.create_workspace(WS)
        owner.set_member(WS, "dev", "developer")
        yield {
            "admin": admin,
            "owner": owner,
            "dev": stack.enter_context(Api.connect(server, "dev", PASSWORD)),
        }


def image() -> Manifest:
    return oci_manifest(image_config(layers=2), [random_blob(40_000), random_blob(50_000)])


def push(server: RunningRegistry, repository: str, tag: str, manifest: Manifest, status: int = 201) -> Any:
    with oci_as(server, "olga", PASSWORD) as oci:
        oci.push_blobs(repository, manifest.blobs)
        response = oci.put_manifest(repository, tag, manifest)
        assert response.status_code == status, f"{response.status_code} {response.text[:300]}"
        return response


def blob_file(server: RunningRegistry, digest: str) -> Path:
    hex_ = digest.split(":", 1)[1]
    return server.data_dir / "storage" / "blobs" / "sha256" / hex_[:2] / hex_ / "data"


def collect(server: RunningRegistry) -> dict[str, Any]:
    done = dockyard_cli(server, "gc", "--grace-seconds", "0")
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def v2_error(server: RunningRegistry, path: str) -> tuple[int, str]:
    with oci_as(server, "olga", PASSWORD) as oci:
        response = oci.http.get(path)
    codes = [e["code"] for e in response.json().get("errors", [])] if response.status_code >= 400 else []
    return response.status_code, ",".join(codes)


def test_an_owner_deletes_a_version_then_the_image_and_gc_reclaims_the_bytes(
    server: RunningRegistry, people: dict[str, Api]
) -> None:
    owner, dev, admin = people["owner"], people["dev"], people["admin"]
    v1, v2 = image(), image()
    push(server, "lab/tool", "v1", v1)
    push(server, "lab/tool", "v2", v2)
    owner.call(
        "POST",
        "/images/lab/tool/versions",
        201,
        json={"reference": "docker.io/library/alpine:3.20", "version": "ext"},
    )
    assert owner.call("GET", "/images/lab/tool")["may_delete"] is True
    assert dev.call("GET", "/images/lab/tool")["may_delete"] is False

    # A developer is refused, and nothing is lost.
    for path in ("/images/lab/tool", "/images/lab/tool/versions/v1"):
        refused = dev.http.delete(path)
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
    assert [v["version"] for v in owner.call("GET", "/images/lab/tool")["versions"]] == ["v1", "v2", "ext"]
    assert v2_error(server, "/v2/lab/tool/manifests/v1") == (200, "")

    owner.call("DELETE", "/images/lab/tool/versions/v2", 204)
    assert v2_error(server, "/v2/lab/tool/manifests/v2") == (404, "MANIFEST_UNKNOWN")
    assert v2_error(server, "/v2/lab/tool/manifests/v1") == (200, "")

    owner.call("DELETE", "/images/lab/tool", 204)
    assert owner.http.get("/images/lab/tool").status_code == 404
    assert v2_error(server, "/v2/lab/tool/manifests/v1") == (404, "MANIFEST_UNKNOWN")
    assert v2_error(server, "/v2/lab/tool/tags/list") == (404, "NAME_UNKNOWN")
    with oci_as(server, ADMIN, ADMIN_PASSWORD) as oci:
        assert "lab/tool" not in oci.catalog().json()["repositories"]

    history = owner.call("GET", "/images/lab/tool/events")
    # (Inspections run in the background and add their events whenever they finish.)
    told = [(e["kind"], e["version"]) for e in history if e["kind"] != "inspected"]
    assert told[:3] == [
        ("image.deleted", None),
        ("version.deleted", "v2"),
        ("version.added", "ext"),
    ]
    assert history[0]["actor"] == "olga"
    assert history[0]["detail"] == {"versions": ["ext", "v1"]}
    audited = [(e["action"], e["target"], e["actor_name"]) for e in admin.call("GET", "/audit")]
    assert ("version.delete", "lab/tool:v2", "olga") in audited
    assert ("image.delete", "lab/tool", "olga") in audited

    layers = [b for m in (v1, v2) for b in m.blobs]
    assert all(blob_file(server, b.digest).exists() for b in layers)
    report = collect(server)
    assert sorted(report["blobs"]) == sorted(b.digest for b in layers)
    assert report["bytes_freed"] == sum(b.size for b in layers)
    assert not any(blob_file(server, b.digest).exists() for b in layers)


def test_a_deleted_external_version_frees_its_name_for_a_push(
    server: RunningRegistry, people: dict[str, Api]
) -> None:
    owner = people["owner"]
    owner.call("POST", "/images", 201, json={"workspace": WS, "reference": "docker.io/library/alpine:3.20"})
    pushed = image()
    refused = push(server, "lab/alpine", "3.20", pushed, status=403)
    assert refused.json()["errors"][0]["code"] == "DENIED"

    owner.call("DELETE", "/images/lab/alpine/versions/3.20", 204)
    push(server, "lab/alpine", "3.20", pushed)

    assert owner.call("GET", "/images/lab/alpine/versions/3.20")["source"] == "internal"


def test_a_workspace_delete_is_refused_with_what_it_holds_until_forced(
    server: RunningRegistry, people: dict[str, Api]
) -> None:
    owner, dev, admin = people["owner"], people["dev"], people["admin"]
    pushed = image()
    push(server, "lab/tool", "v1", pushed)
    owner.call("POST", "/images", 201, json={"workspace": WS, "reference": "docker.io/library/alpine:3.20"})

    refused = owner.http.delete(f"/workspaces/{WS}")
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["holds"] == ["image lab/alpine", "image lab/tool"]
    assert "force" in problem["detail"]
    assert dev.http.delete(f"/workspaces/{WS}", params={"force": "true"}).status_code == 403
    assert v2_error(server, "/v2/lab/tool/manifests/v1") == (200, "")

    owner.call("DELETE", f"/workspaces/{WS}", 204, params={"force": "true"})

    assert owner.http.get(f"/workspaces/{WS}").status_code == 404
    with oci_as(server, ADMIN, ADMIN_PASSWORD) as oci:
        assert "lab/tool" not in oci.catalog().json()["repositories"]
    entry = admin.call("GET", "/audit", params={"action": "workspace.delete"})[0]
    assert (entry["target"], entry["actor_name"]) == (WS, "olga")
    assert entry["detail"] == {"forced": True, "deleted": ["image lab/alpine", "image lab/tool"]}
    report = collect(server)
    assert report["bytes_freed"] == sum(b.size for b in pushed.blobs)
    assert not any(blob_file(server, b.digest).exists() for b in pushed.blobs)
