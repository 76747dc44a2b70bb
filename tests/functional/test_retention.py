"""Retention rules (#18) through the real server (token mode, its own data folder and database,
SQLite and PostgreSQL) with skopeo pushing and the ``dockyard`` CLI running them.

- keep the latest 10 of 50 tags: the dry run lists exactly the 40 oldest and deletes nothing,
  the real run (a job, followed by ``dockyard retention run``) deletes them from /v2 and the
  catalog, records the run and audits it, and ``dockyard gc`` frees their bytes on disk;
- untagged manifests older than D days, and tags not pulled for D days, with stored times set
  in the database (no waiting): index children and signatures of live manifests stay;
- pull times: pulls are noted in memory and written once, at shutdown (no row per pull).

Each test runs its own Dockyard: collecting with no grace period would otherwise remove what
other tests are in the middle of pushing."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import Cli
from tests.support.clients import Skopeo, containers_login
from tests.support.database import sql
from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api, oci_as, unique
from tests.support.oci import Manifest, image_config, oci_index, oci_manifest, random_blob
from tests.support.servers import RunningRegistry, dockyard_cli, private_dockyard

pytestmark = pytest.mark.clients

WS = "lab"
REPO = f"{WS}/app"
DAY = 86400.0
TOKEN_ENV = {
    "DOCKYARD_AUTH_MODE": "token",
    "DOCKYARD_ADMIN_USERNAME": ADMIN,
    "DOCKYARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
}
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@dataclass(frozen=True)
class Pushed:
    tag: str
    digest: str
    own_blobs: dict[str, int]  # digest -> size of the blobs no other tag uses


@pytest.fixture
def servers(db_kind: str, tmp_path: Path) -> Iterator[tuple[RunningRegistry, Any]]:
    env = {**TOKEN_ENV, "DOCKYARD_PULL_FLUSH_SECONDS": "3600", "DOCKYARD_RETENTION_CHECK_SECONDS": "1"}
    with private_dockyard(db_kind, tmp_path, env) as found:
        yield found


def people(server: RunningRegistry, stack: contextlib.ExitStack) -> tuple[Api, Api]:
    """``olga`` owns the workspace ``lab``, ``dev`` is a developer in it."""
    with Api.connect(server, ADMIN, ADMIN_PASSWORD) as admin:
        for name in ("olga", "dev"):
            admin.create_user(name)
    owner = stack.enter_context(Api.connect(server, "olga", PASSWORD))
    owner.create_workspace(WS)
    owner.set_member(WS, "dev", "developer")
    return owner, stack.enter_context(Api.connect(server, "dev", PASSWORD))


def cli(
    server: RunningRegistry, config: Path, *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return Cli(server, config).run(*args, stdin=stdin)


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def build_layout(root: Path, count: int) -> list[Pushed]:
    """An OCI layout of ``count`` images tagged 1.0.0 ... : one layer all share, and one
    layer and config of each image's own (what GC must free once its tag is gone)."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')

    def put(data: bytes) -> dict[str, Any]:
        digest = _sha(data)
        (blobs / digest.split(":", 1)[1]).write_bytes(data)
        return {"digest": digest, "size": len(data)}

    shared_raw = os.urandom(200_000)
    shared = put(gzip.compress(shared_raw, mtime=0)) | {
        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip"
    }
    images, index = [], []
    for i in range(count):
        raw = os.urandom(30_000 + i)
        layer = put(gzip.compress(raw, mtime=0)) | {
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip"
        }
        config_doc = {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": {"n": str(i)}},
            "rootfs": {"type": "layers", "diff_ids": [_sha(shared_raw), _sha(raw)]},
        }
        config = put(json.dumps(config_doc).encode()) | {
            "mediaType": "application/vnd.oci.image.config.v1+json"
        }
        manifest = json.dumps(
            {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [shared, layer]}
        ).encode()
        described = put(manifest)
        tag = f"1.0.{i}"
        index.append(
            {
                "mediaType": OCI_MANIFEST,
                **described,
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        )
        images.append(
            Pushed(
                tag, described["digest"], {layer["digest"]: layer["size"], config["digest"]: config["size"]}
            )
        )
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": index}))
    return images


def blob_file(server: RunningRegistry, digest: str) -> Path:
    hex_ = digest.split(":", 1)[1]
    return server.data_dir / "storage" / "blobs" / "sha256" / hex_[:2] / hex_ / "data"


def bytes_on_disk(server: RunningRegistry) -> int:
    root = server.data_dir / "storage" / "blobs"
    return sum(p.stat().st_size for p in root.rglob("data") if p.is_file())


def v2_tags(server: RunningRegistry, repository: str) -> list[str]:
    with oci_as(server, "olga", PASSWORD) as oci:
        found = oci.tags(repository)
    assert found.status_code == 200, found.text
    return sorted(found.json()["tags"] or [])


def test_keep_the_latest_10_of_50_tags_dry_run_real_run_and_gc(
    servers: tuple[RunningRegistry, Any], tmp_path: Path
) -> None:
    server, _restart = servers
    with contextlib.ExitStack() as stack:
        owner, dev = people(server, stack)
        images = build_layout(tmp_path / "layout", 50)
        skopeo = Skopeo(tmp_path / "skopeo")
        containers_login(skopeo, server.host, "olga", PASSWORD)
        for image in images:  # in order: 1.0.0 is the oldest push
            skopeo.copy(
                f"oci:{tmp_path / 'layout'}:{image.tag}", f"docker://{server.host}/{REPO}:{image.tag}"
            )
        assert v2_tags(server, REPO) == sorted(i.tag for i in images)
        oldest, newest = images[:40], images[40:]
        base = f"/workspaces/{WS}/retention"

        # A developer may not manage retention; a bad number is a problem with the field.
        refused = dev.http.post(f"{base}/rules", json={"kind": "keep_last", "count": 10})
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        too_many = owner.http.post(f"{base}/rules", json={"kind": "keep_last", "count": 10_001})
        assert too_many.status_code == 422, too_many.text
        rule = owner.call("POST", f"{base}/rules", expect=201, json={"kind": "keep_last", "count": 10})
        assert rule["description"] == "every repository: keep the latest 10 tags (by push time)"

        dry = owner.call("POST", f"{base}/rules/{rule['id']}/runs", json={"dry_run": True})
        assert dry["status"] == "succeeded"
        assert dry["dry_run"] is True
        assert dry["deleted"] == 40
        assert dry["kept"] == 0
        assert sorted((i["tag"], i["digest"]) for i in dry["items"]) == sorted(
            (i.tag, i.digest) for i in oldest
        )
        assert {i["action"] for i in dry["items"]} == {"delete"}
        assert v2_tags(server, REPO) == sorted(i.tag for i in images)  # nothing went

        # The real run, from the CLI: queued as a job, followed to its end.
        config = tmp_path / "cli.toml"
        login = cli(
            server, config, "login", server.url, "-u", "olga", "--password-stdin", stdin=PASSWORD + "\n"
        )
        assert login.returncode == 0, login.stderr
        listed = cli(server, config, "retention", "list", WS)
        assert "keep the latest 10 tags" in listed.stdout, listed.stdout
        real = cli(server, config, "retention", "run", WS, str(rule["id"]))
        assert real.returncode == 0, real.stderr
        assert (
            "succeeded: every repository: keep the latest 10 tags (by push time): deleted 40." in real.stdout
        )
        assert v2_tags(server, REPO) == sorted(i.tag for i in newest)
        image_view = owner.call("GET", f"/images/{REPO}")
        assert sorted(v["version"] for v in image_view["versions"]) == sorted(i.tag for i in newest)
        runs = owner.call("GET", f"{base}/runs")
        assert [(r["dry_run"], r["status"], r["deleted"]) for r in runs] == [
            (False, "succeeded", 40),
            (True, "succeeded", 40),
        ]
        assert runs[0]["started_by"] == "olga"
        assert runs[0]["done"] == 40
        with Api.connect(server, ADMIN, ADMIN_PASSWORD) as admin:
            audited = admin.call("GET", "/audit", params={"workspace": WS, "action": "retention.run"})
            deletes = admin.call(
                "GET", "/audit", params={"workspace": WS, "action": "tag.delete", "limit": 100}
            )
        assert [a["detail"]["dry_run"] for a in audited] == [False, True]
        assert sorted(a["target"] for a in deletes) == sorted(f"{REPO}:{i.tag}" for i in oldest)
        history = owner.call("GET", f"/images/{REPO}/events", params={"limit": 500})
        assert sorted(e["version"] for e in history if e["kind"] == "version.deleted") == sorted(
            i.tag for i in oldest
        )

        # GC frees exactly the bytes only the deleted images used, measured on disk.
        doomed = {d: s for i in oldest for d, s in i.own_blobs.items()}
        before = bytes_on_disk(server)
        assert all(blob_file(server, d).exists() for d in doomed)
        gc = dockyard_cli(server, "gc", "--grace-seconds", "0")
        assert gc.returncode == 0, gc.stderr
        report = json.loads(gc.stdout)
        assert sorted(report["blobs"]) == sorted(doomed)
        assert report["bytes_freed"] == sum(doomed.values())
        assert before - bytes_on_disk(server) == sum(doomed.values())
        assert not any(blob_file(server, d).exists() for d in doomed)
        for image in newest:  # what was kept still pulls
            pulled = skopeo.copy(
                f"docker://{server.host}/{REPO}:{image.tag}", f"oci:{tmp_path / 'back'}:{image.tag}"
            )
            assert pulled.ok


def _push(server: RunningRegistry, repository: str, manifest: Manifest, tag: str | None = None) -> None:
    with oci_as(server, "olga", PASSWORD) as oci:
        response = oci.push(repository, manifest, tag)
        assert response.status_code == 201, response.text


def test_untagged_manifests_older_than_d_days_go_but_index_children_and_signatures_stay(
    servers: tuple[RunningRegistry, Any],
) -> None:
    server, _restart = servers
    with contextlib.ExitStack() as stack:
        owner, _dev = people(server, stack)
        repository = f"{WS}/untagged"
        old_loose, new_loose = oci_manifest(), oci_manifest()
        tagged = oci_manifest()
        child = oci_manifest()
        index = oci_index([child])
        signature = oci_manifest(
            image_config(), [random_blob(64)], subject=tagged, artifact_type="application/x.sig"
        )
        for manifest in (old_loose, new_loose, signature):
            _push(server, repository, manifest)
        _push(server, repository, tagged, "1.0")
        _push(server, repository, index, "multi")
        long_ago = time.time() - 30 * DAY
        sql(
            server,
            "UPDATE manifests SET created_at = :t WHERE digest IN (:a, :b, :c, :d, :e)",
            t=long_ago,
            a=old_loose.digest,
            b=signature.digest,
            c=tagged.digest,
            d=child.digest,
            e=index.digest,
        )
        base = f"/workspaces/{WS}/retention"
        rule = owner.call(
            "POST",
            f"{base}/rules",
            expect=201,
            json={"kind": "untagged", "days": 7, "repository": repository},
        )
        dry = owner.call("POST", f"{base}/rules/{rule['id']}/runs", json={"dry_run": True})
        assert [(i["digest"], i["tag"]) for i in dry["items"]] == [(old_loose.digest, None)]
        assert dry["items"][0]["reason"] == "untagged, pushed 30 days ago"
        real = owner.http.post(f"{base}/rules/{rule['id']}/runs", json={"dry_run": False})
        assert real.status_code == 202, real.text
        done = wait_run(owner, real.json()["id"])
        assert done["deleted"] == 1
        with oci_as(server, "olga", PASSWORD) as oci:
            assert oci.get_manifest(repository, old_loose.digest).status_code == 404
            for kept in (new_loose, child, signature, tagged, index):
                assert oci.get_manifest(repository, kept.digest).status_code == 200


def wait_run(api: Api, run_id: int, deadline: float = 60.0) -> Any:
    """Poll a queued run until it ends (a real run is a job)."""
    until = time.monotonic() + deadline
    while time.monotonic() < until:
        run = api.call("GET", f"/workspaces/{WS}/retention/runs/{run_id}")
        if run["status"] not in ("queued", "running"):
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not end within {deadline} s")


def wait_scheduled(api: Api, rule_id: int, deadline: float = 60.0) -> Any:
    """Poll until the schedule has queued and finished a run of the rule."""
    until = time.monotonic() + deadline
    while time.monotonic() < until:
        runs = api.call("GET", f"/workspaces/{WS}/retention/runs", params={"rule": rule_id})
        done = [r for r in runs if r["started_by"] == "schedule" and r["status"] not in ("queued", "running")]
        if done:
            return done[0]
        time.sleep(0.2)
    raise AssertionError(f"no scheduled run of rule {rule_id} ended within {deadline} s")


def test_pulls_are_written_in_one_batch_and_tags_not_pulled_for_d_days_go(
    servers: tuple[RunningRegistry, Any],
) -> None:
    server, restart = servers
    with contextlib.ExitStack() as stack:
        owner, _dev = people(server, stack)
        repository = f"{WS}/pulled"
        pulled, idle, fresh = oci_manifest(), oci_manifest(), oci_manifest()
        for manifest, tag in ((pulled, "pulled"), (idle, "idle"), (fresh, "fresh")):
            _push(server, repository, manifest, tag)
        started = time.time()
        with oci_as(server, "olga", PASSWORD) as oci:
            for _ in range(20):
                assert oci.get_manifest(repository, "pulled").status_code == 200
            assert oci.get_manifest(repository, pulled.digest).status_code == 200
            assert oci.http.head(f"/v2/{repository}/manifests/idle").status_code == 200  # a HEAD is no pull
        assert sql(server, "SELECT COUNT(*) FROM manifest_pulls") == [(0,)]  # no write per pull
    server.stop()  # the shutdown writes this process's pulls, in one batch
    rows = sql(server, "SELECT digest, last_pulled_at FROM manifest_pulls")
    assert [r[0] for r in rows] == [pulled.digest]
    assert started <= rows[0][1] <= time.time()

    server = restart()
    with Api.connect(server, "olga", PASSWORD) as owner:
        long_ago = time.time() - 100 * DAY
        sql(server, "UPDATE tags SET updated_at = :t WHERE name IN ('pulled', 'idle')", t=long_ago)
        base = f"/workspaces/{WS}/retention"
        rule = owner.call("POST", f"{base}/rules", expect=201, json={"kind": "not_pulled", "days": 30})
        dry = owner.call("POST", f"{base}/rules/{rule['id']}/runs", json={"dry_run": True})
        assert [(i["tag"], i["reason"]) for i in dry["items"]] == [("idle", "last pushed 100 days ago")]
        # A pull long ago counts from then.
        sql(server, "UPDATE manifest_pulls SET last_pulled_at = :t", t=time.time() - 40 * DAY)
        dry = owner.call("POST", f"{base}/rules/{rule['id']}/runs", json={"dry_run": True})
        assert [(i["tag"], i["reason"]) for i in dry["items"]] == [
            ("idle", "last pushed 100 days ago"),
            ("pulled", "last pulled 40 days ago"),
        ]
        real = owner.http.post(f"{base}/rules/{rule['id']}/runs", json={"dry_run": False})
        assert real.status_code == 202, real.text
        assert wait_run(owner, real.json()["id"])["deleted"] == 2
        assert v2_tags(server, repository) == ["fresh"]

        # The schedule: a daily rule whose hour came is queued by the server and run as a job.
        _push(server, repository, oci_manifest(), "newer")
        daily = owner.call(
            "POST", f"{base}/rules", expect=201, json={"kind": "keep_last", "count": 1, "daily_at": 3}
        )
        assert daily["schedule"] == "daily at 03:00 UTC"
        sql(
            server,
            "UPDATE retention_rules SET next_run_at = :t WHERE id = :id",
            t=time.time() - 1,
            id=daily["id"],
        )
        scheduled = wait_scheduled(owner, daily["id"])
        assert (scheduled["status"], scheduled["deleted"]) == ("succeeded", 1)
        assert v2_tags(server, repository) == ["newer"]
        (again,) = [r for r in owner.call("GET", f"{base}/rules") if r["id"] == daily["id"]]
        assert again["next_run_at"] > time.time()  # tomorrow at 03:00


def test_the_cli_adds_lists_dry_runs_shows_and_removes_rules(
    token_registry: RunningRegistry, tmp_path: Path
) -> None:
    name = unique("pruner")
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as admin:
        admin.create_user(name)
    repository = f"{name}/tool"
    for tag in ("v1.0.0", "v1.2.0", "v1.10.0", "latest"):
        _push_as(token_registry, name, repository, oci_manifest(), tag)
    config = tmp_path / "cli.toml"
    login = cli(
        token_registry,
        config,
        "login",
        token_registry.url,
        "-u",
        name,
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert login.returncode == 0, login.stderr

    bad = cli(token_registry, config, "retention", "add", name, "--keep-last", "0")
    assert bad.returncode != 0
    assert "error:" in bad.stderr, bad.stderr
    assert "count" in bad.stderr, bad.stderr
    neither = cli(token_registry, config, "retention", "add", name)
    assert neither.returncode == 2
    assert "exactly one of --keep-last, --untagged-days, --not-pulled-days" in neither.stderr

    added = cli(
        token_registry,
        config,
        "retention",
        "add",
        name,
        "--keep-last",
        "1",
        "--by",
        "semver",
        "-r",
        repository,
    )
    assert added.returncode == 0, added.stderr
    assert "Added rule " in added.stdout
    assert f"{repository}: keep the latest 1 tags (by semantic version), when started." in added.stdout
    rule_id = added.stdout.split()[2].rstrip(":")
    listed = cli(token_registry, config, "retention", "list", name)
    assert "keep the latest 1 tags (by semantic version)" in listed.stdout
    assert "when started" in listed.stdout

    dry = cli(token_registry, config, "retention", "run", name, rule_id, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would delete 2, keep 1." in dry.stdout
    lines = {
        line.split()[2]: line.split()[0]
        for line in dry.stdout.splitlines()
        if line.startswith(("delete ", "keep ")) and repository in line
    }
    assert lines == {"v1.2.0": "delete", "v1.0.0": "delete", "latest": "keep"}
    assert "not a semantic version" in dry.stdout
    with oci_as(token_registry, name, PASSWORD) as oci:
        assert sorted(oci.tags(repository).json()["tags"]) == ["latest", "v1.0.0", "v1.10.0", "v1.2.0"]

    runs = cli(token_registry, config, "retention", "runs", name)
    assert "dry run" in runs.stdout
    assert "succeeded" in runs.stdout
    run_id = dry.stdout.split()[2].rstrip(":")
    shown = cli(token_registry, config, "retention", "runs", name, "--run", run_id)
    assert f"Run {run_id} (dry run) succeeded" in shown.stdout
    assert "v1.0.0" in shown.stdout
    removed = cli(token_registry, config, "retention", "remove", name, rule_id)
    assert removed.returncode == 0
    assert f"Removed rule {rule_id} of {name}." in removed.stdout
    gone = cli(token_registry, config, "retention", "run", name, rule_id, "--dry-run")
    assert gone.returncode != 0
    assert f"has no retention rule {rule_id}" in gone.stderr


def _push_as(server: RunningRegistry, user: str, repository: str, manifest: Manifest, tag: str) -> None:
    with oci_as(server, user, PASSWORD) as oci:
        response = oci.push(repository, manifest, tag)
        assert response.status_code == 201, response.text
