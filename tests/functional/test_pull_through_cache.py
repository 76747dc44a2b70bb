"""The pull-through cache with real clients and a real upstream (Debian's docker-registry on
loopback, behind nginx whose access log counts what the upstream served).

A cache workspace serves ``<ws>/<host>_<port>/<path>`` (a repository name cannot hold ``:``):
the first pull fetches from the upstream, later pulls are served locally, a tag whose upstream
is down is served stale (and says so), an uncached tag with the upstream down fails naming the
reason, and concurrent first pulls of one blob fetch it from the upstream once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.catalog import CatalogUser
from tests.support.clients import (
    POLICY_JSON,
    DockerDaemon,
    Podman,
    Result,
    Skopeo,
    containers_login,
    docker_as,
    docker_login,
)
from tests.support.identity import (
    ADMIN,
    ADMIN_PASSWORD,
    PASSWORD,
    Api,
    TokenAuth,
    start_token_dockyard,
    unique,
)
from tests.support.images import TestImages
from tests.support.servers import RunningRegistry, dockyard_cli, postgres_database
from tests.support.upstreams import (
    Nginx,
    UpstreamImages,
    build_upstream_images,
    start_nginx,
    start_upstream_registry,
)

pytestmark = pytest.mark.clients

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar"
BIG = 256 * 1024 * 1024


@dataclass
class Upstream:
    registry: RunningRegistry
    nginx: Nginx

    @property
    def host(self) -> str:  # what the cache reaches: nginx, which logs every request
        return self.nginx.host("upstream")

    def cache_path(self, workspace: str) -> str:
        return f"{workspace}/{self.host.replace(':', '_')}"

    def requests(self, pattern: str) -> list[str]:
        path = self.nginx.base / "access.log"
        lines = path.read_text().splitlines() if path.exists() else []
        return [line for line in lines if re.search(pattern, line)]

    def fail(self) -> None:
        """nginx answers every request 503 from now on (the upstream itself keeps running)."""
        (self.nginx.base / "down").touch()

    def stop(self) -> None:
        self.nginx.stop()
        self.registry.stop()


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> UpstreamImages:
    return build_upstream_images(tmp_path_factory.mktemp("cache-images"))


def start_upstream(base: Path, images: UpstreamImages) -> Upstream:
    registry = start_upstream_registry(base / "registry")
    try:
        nginx = start_nginx(
            base / "nginx",
            {
                "upstream": f"location / {{ if (-f {base / 'nginx' / 'down'}) {{ return 503; }} "
                f"proxy_pass http://{registry.host}; "
                "proxy_buffering off; client_max_body_size 0; proxy_request_buffering off; }"
            },
        )
    except BaseException:
        registry.stop()
        raise
    upstream = Upstream(registry, nginx)
    skopeo = Skopeo(base / "skopeo")
    skopeo.copy(images.ref("arm64"), f"docker://{registry.host}/library/arm:v1", extra=["--preserve-digests"])
    for tag in ("v1", "v2"):
        skopeo.copy(
            images.ref("amd64"), f"docker://{registry.host}/library/amd:{tag}", extra=["--preserve-digests"]
        )
    return upstream


@pytest.fixture
def upstream(tmp_path: Path, images: UpstreamImages) -> Iterator[Upstream]:
    found = start_upstream(tmp_path / "upstream", images)
    try:
        yield found
    finally:
        found.stop()


@pytest.fixture
def cache(token_registry: RunningRegistry) -> Iterator[str]:
    """A fresh cache workspace; tags revalidated on every pull (so the upstream is asked)."""
    name = unique("cache")
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as api:
        api.create_workspace(name)
        shown = api.call(
            "PUT", f"/workspaces/{name}/cache", json={"limit_bytes": "1GiB", "revalidate_seconds": "0"}
        )
        assert (shown["limit_bytes"], shown["revalidate_seconds"]) == (1024**3, 0)
        yield name


def skopeo_pull(tmp_path: Path, server: RunningRegistry, ref: str, check: bool = True) -> tuple[int, str]:
    skopeo = Skopeo(tmp_path / unique("skopeo"))
    dest = tmp_path / unique("oci")
    result = skopeo.copy(
        f"docker://{server.host}/{ref}",
        f"oci:{dest}:x",
        extra=["--src-creds", f"{ADMIN}:{ADMIN_PASSWORD}"],
        check=check,
    )
    return result.returncode, result.stderr


def test_skopeo_pulls_through_the_cache_then_with_the_upstream_stopped(
    token_registry: RunningRegistry, upstream: Upstream, cache: str, tmp_path: Path
) -> None:
    ref = f"{upstream.cache_path(cache)}/library/amd"
    skopeo_pull(tmp_path, token_registry, f"{ref}:v1")
    # The catalog lists the cached image: its inspection reads the config through the cache
    # when the client has not fetched it yet (the manifest is stored before its blobs).
    with CatalogUser.connect(token_registry, ADMIN, ADMIN_PASSWORD) as admin:
        listed = admin.wait_inspected(ref, "v1")
    assert listed["status"] == "available", listed
    assert listed["platforms"] == ["linux/amd64"]
    fetched = upstream.requests(r"GET /v2/library/amd/blobs/sha256:")
    assert len(fetched) == 3  # the config and two layers: once each
    with httpx.Client(base_url=token_registry.url, auth=TokenAuth(ADMIN, ADMIN_PASSWORD), timeout=60) as http:
        fresh = http.get(f"/v2/{ref}/manifests/v1", headers={"Accept": OCI_MANIFEST})
        assert fresh.status_code == 200
        assert fresh.headers["dockyard-cache"] == "hit"  # revalidated: the upstream has the same
        upstream.stop()
        stale = http.get(f"/v2/{ref}/manifests/v1", headers={"Accept": OCI_MANIFEST})
        assert stale.status_code == 200, stale.text
        assert stale.headers["dockyard-cache"] == "stale"
        assert stale.headers["warning"].startswith('110 - "Response is Stale')
        assert stale.content == fresh.content
        missing = http.get(f"/v2/{ref}/manifests/v2", headers={"Accept": OCI_MANIFEST})
        assert missing.status_code == 404
        error = missing.json()["errors"][0]
        assert error["code"] == "MANIFEST_UNKNOWN"
        assert "not cached" in error["message"], error
        assert "(unreachable)" in error["message"], error
    code, _ = skopeo_pull(tmp_path, token_registry, f"{ref}:v1")  # all from the cache
    assert code == 0
    code, stderr = skopeo_pull(tmp_path, token_registry, f"{ref}:v2", check=False)
    assert code != 0
    assert "not cached and the upstream failed (unreachable)" in stderr, stderr


def test_a_tag_the_upstream_does_not_have_is_unknown_naming_the_upstream(
    token_registry: RunningRegistry, upstream: Upstream, cache: str
) -> None:
    ref = f"{upstream.cache_path(cache)}/library/amd"
    with httpx.Client(base_url=token_registry.url, auth=TokenAuth(ADMIN, ADMIN_PASSWORD), timeout=60) as http:
        answer = http.get(f"/v2/{ref}/manifests/nope")
    assert answer.status_code == 404
    error = answer.json()["errors"][0]
    assert error["code"] == "MANIFEST_UNKNOWN"
    assert f"{upstream.host}/library/amd has no manifest nope" in error["message"], error


def _push_big_image(upstream: Upstream, tmp_path: Path) -> tuple[str, str]:
    """A manifest with one 256 MiB layer on the upstream; (layer digest, its sha256)."""
    layer = tmp_path / "big.layer"
    hasher = hashlib.sha256()
    with layer.open("wb") as out:
        for _ in range(BIG // (4 * 1024 * 1024)):
            chunk = os.urandom(4 * 1024 * 1024)
            hasher.update(chunk)
            out.write(chunk)
    digest = f"sha256:{hasher.hexdigest()}"
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [digest]}}
    ).encode()
    config_digest = f"sha256:{hashlib.sha256(config).hexdigest()}"
    base = f"http://{upstream.registry.host}/v2/library/big"
    with httpx.Client(timeout=300) as http:
        for data, dig in ((layer.read_bytes(), digest), (config, config_digest)):
            start = http.post(f"{base}/blobs/uploads/")
            assert start.status_code == 202, start.text
            location = httpx.URL(f"http://{upstream.registry.host}").join(start.headers["location"])
            done = http.put(location.copy_merge_params({"digest": dig}), content=data)
            assert done.status_code == 201, done.text
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
            "layers": [{"mediaType": LAYER, "digest": digest, "size": BIG}],
        }
        put = http.put(
            f"{base}/manifests/v1", content=json.dumps(manifest), headers={"Content-Type": OCI_MANIFEST}
        )
        assert put.status_code == 201, put.text
    layer.unlink()
    return digest, hasher.hexdigest()


def test_eight_concurrent_first_pulls_of_a_256_mib_layer_fetch_it_once(
    token_registry: RunningRegistry, upstream: Upstream, cache: str, tmp_path: Path
) -> None:
    digest, expected = _push_big_image(upstream, tmp_path)
    ref = f"{upstream.cache_path(cache)}/library/big"

    def pull(_: int) -> str:
        with httpx.Client(
            base_url=token_registry.url, auth=TokenAuth(ADMIN, ADMIN_PASSWORD), timeout=600
        ) as http:
            hasher = hashlib.sha256()
            with http.stream("GET", f"/v2/{ref}/blobs/{digest}") as answer:
                assert answer.status_code == 200, answer.read()
                for chunk in answer.iter_bytes(1024 * 1024):
                    hasher.update(chunk)
            return hasher.hexdigest()

    with httpx.Client(base_url=token_registry.url, auth=TokenAuth(ADMIN, ADMIN_PASSWORD), timeout=60) as http:
        assert http.get(f"/v2/{ref}/manifests/v1").status_code == 200
    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(pull, range(8))) == [expected] * 8
    assert len(upstream.requests(rf"GET /v2/library/big/blobs/{digest}")) == 1


def test_an_image_config_too_big_to_inspect_is_still_served_through_the_cache(
    token_registry: RunningRegistry, upstream: Upstream, cache: str
) -> None:
    # A config over the catalog's 1 MiB inspection limit: the inspection refuses it, and the
    # fetch it started lets go, so a client's pull of that config is served, not kept waiting.
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "config": {"Labels": {"padding": "x" * (2 << 20)}}}
    ).encode()
    config_digest = f"sha256:{hashlib.sha256(config).hexdigest()}"
    base = f"http://{upstream.registry.host}/v2/library/wide"
    with httpx.Client(timeout=60) as http:
        start = http.post(f"{base}/blobs/uploads/")
        location = httpx.URL(f"http://{upstream.registry.host}").join(start.headers["location"])
        assert (
            http.put(location.copy_merge_params({"digest": config_digest}), content=config).status_code == 201
        )
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
            "layers": [],
        }
        put = http.put(
            f"{base}/manifests/v1", content=json.dumps(manifest), headers={"Content-Type": OCI_MANIFEST}
        )
        assert put.status_code == 201, put.text
    ref = f"{upstream.cache_path(cache)}/library/wide"
    with httpx.Client(base_url=token_registry.url, auth=TokenAuth(ADMIN, ADMIN_PASSWORD), timeout=60) as http:
        assert http.get(f"/v2/{ref}/manifests/v1", headers={"Accept": OCI_MANIFEST}).status_code == 200
        with CatalogUser.connect(token_registry, ADMIN, ADMIN_PASSWORD) as admin:
            inspected = admin.wait_inspected(ref, "v1")
        assert inspected["status"] == "failed"
        assert "expected at most" in inspected["status_reason"], inspected
        pulled = http.get(f"/v2/{ref}/blobs/{config_digest}")
        assert pulled.status_code == 200, pulled.text[:300]
        assert pulled.content == config


def _gc(server: RunningRegistry, *args: str) -> dict[str, Any]:
    result = dockyard_cli(server, "gc", *args)
    assert result.returncode == 0, result.stderr
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def test_gc_evicts_the_least_recently_pulled_until_the_cache_is_under_its_limit(
    tmp_path: Path, images: UpstreamImages, db_kind: str
) -> None:
    upstream = start_upstream(tmp_path / "upstream", images)
    with contextlib.ExitStack() as stack:
        stack.callback(upstream.stop)
        url = stack.enter_context(postgres_database()) if db_kind == "postgres" else ""
        server = start_token_dockyard(
            db_kind, tmp_path / "dockyard", url, extra_env={"DOCKYARD_PULL_FLUSH_SECONDS": "0.2"}
        )
        stack.callback(server.stop)
        _evict(tmp_path, images, upstream, server)


def _evict(tmp_path: Path, images: UpstreamImages, upstream: Upstream, server: RunningRegistry) -> None:
    with Api.connect(server, ADMIN, ADMIN_PASSWORD) as api:
        api.create_workspace("lru")
        limit = images.amd64.compressed_size  # room for the amd64 image only
        api.call("PUT", "/workspaces/lru/cache", json={"limit_bytes": limit, "revalidate_seconds": "1h"})
        base = upstream.cache_path("lru")
        for name in ("amd", "arm", "amd"):  # amd64 pulled again last: arm64 is the least recent
            skopeo_pull(tmp_path, server, f"{base}/library/{name}:v1")
        assert api.call("GET", "/workspaces/lru/cache")["used_bytes"] > limit
        arm = f"{base}/library/arm@{images.arm64.manifest.digest}"
        deadline = time.monotonic() + 30
        while _gc(server, "--dry-run")["evicted"] != [arm]:  # until the last pulls are written
            assert time.monotonic() < deadline, _gc(server, "--dry-run")
            time.sleep(0.2)
        assert _gc(server, "--grace-seconds", "0")["evicted"] == [arm]
        assert api.call("GET", "/workspaces/lru/cache")["used_bytes"] <= limit
    arm_fetches = len(upstream.requests(r"GET /v2/library/arm/manifests/v1"))
    skopeo_pull(tmp_path, server, f"{base}/library/amd:v1")  # still cached
    skopeo_pull(tmp_path, server, f"{base}/library/arm:v1")  # evicted: fetched again
    assert len(upstream.requests(r"GET /v2/library/arm/manifests/v1")) == arm_fetches + 1


@pytest.mark.parametrize("client", ["podman", "docker"])
def test_podman_and_docker_pull_through_the_cache_then_with_the_upstream_stopped(
    client: str,
    token_registry: RunningRegistry,
    upstream: Upstream,
    test_images: TestImages,
    cache: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    ref = f"{token_registry.host}/{upstream.cache_path(cache)}/library/busybox"
    if client == "podman":
        podman = Podman(tmp_path / "podman")
        request.addfinalizer(podman.close)
        containers_login(podman, token_registry.host, ADMIN, ADMIN_PASSWORD)

        def pull(ref: str, check: bool = True) -> Result:
            return podman(
                "pull", "--tls-verify=false", "--signature-policy", str(POLICY_JSON), ref, check=check
            )

        def forget(ref: str) -> None:
            podman.rmi(ref)
    else:
        daemon: DockerDaemon = request.getfixturevalue("dockerd")
        config = tmp_path / "docker-config"
        docker_login(daemon, config, token_registry.host, ADMIN, ADMIN_PASSWORD)

        def pull(ref: str, check: bool = True) -> Result:
            return docker_as(daemon, config, "pull", ref, check=check)

        def forget(ref: str) -> None:
            docker_as(daemon, config, "rmi", "--force", ref)

        # The daemon is shared by the session and other tests pull this busybox image and expect
        # the daemon to hold no copy: whatever this test pulled goes with it.
        request.addfinalizer(lambda: docker_as(daemon, config, "rmi", "--force", f"{ref}:v1", check=False))

    skopeo = Skopeo(tmp_path / "skopeo-push")
    for tag in ("v1", "v2"):  # a runnable busybox image for this machine, in a 2-platform index
        target = f"docker://{upstream.registry.host}/library/busybox:{tag}"
        skopeo.copy(test_images.index_ref, target, all_images=True, extra=["--preserve-digests"])
    pull(f"{ref}:v1")
    assert len(upstream.requests(r"GET /v2/library/busybox/manifests/v1")) == 1
    # Once at most, even when another workspace stored the layer already (it is fetched, not linked).
    assert len(upstream.requests(rf"GET /v2/library/busybox/blobs/{test_images.image.layer.digest}")) <= 1
    forget(f"{ref}:v1")
    upstream.stop()
    pull(f"{ref}:v1")  # the tag is revalidated on every pull here: served stale
    failed = pull(f"{ref}:v2", check=False)
    assert failed.returncode != 0
    output = failed.stdout + failed.stderr
    assert "not cached and the upstream failed (unreachable)" in output, output


def test_pulls_through_the_cache_need_the_workspace_pull_permission(
    token_registry: RunningRegistry, upstream: Upstream, cache: str
) -> None:
    member, outsider = unique("reader"), unique("outsider")
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as api:
        api.create_user(member)
        api.create_user(outsider)
        api.set_member(cache, member, "reader")
    ref = f"{upstream.cache_path(cache)}/library/amd"  # no such repository yet
    with httpx.Client(base_url=token_registry.url, auth=TokenAuth(outsider, PASSWORD), timeout=60) as http:
        refused = http.get(f"/v2/{ref}/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert refused.status_code in (401, 403), refused.text
    assert upstream.requests(r"GET /v2/library/amd/manifests/v1") == []  # nothing asked upstream
    with httpx.Client(base_url=token_registry.url, auth=TokenAuth(member, PASSWORD), timeout=60) as http:
        pulled = http.get(f"/v2/{ref}/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert pulled.status_code == 200, pulled.text
    assert pulled.headers["dockyard-cache"] == "miss"


def _push(http: httpx.Client, repository: str, blobs: list[bytes], tag: str) -> None:
    """Push an OCI image of ``blobs`` (the first is the config) to ``repository:tag``."""
    described = []
    for data in blobs:
        digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
        start = http.post(f"/v2/{repository}/blobs/uploads/")
        assert start.status_code == 202, start.text
        location = httpx.URL(start.headers["location"]).copy_merge_params({"digest": digest})
        done = http.put(location, content=data)
        assert done.status_code == 201, done.text
        described.append({"digest": digest, "size": len(data)})
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, **described[0]},
        "layers": [{"mediaType": LAYER, **blob} for blob in described[1:]],
    }
    put = http.put(
        f"/v2/{repository}/manifests/{tag}",
        content=json.dumps(manifest),
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert put.status_code == 201, put.text


def test_a_blob_stored_only_in_another_workspace_is_not_served_through_the_cache(
    token_registry: RunningRegistry, upstream: Upstream, cache: str
) -> None:
    lab, reader = unique("lab"), unique("reader")
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as api:
        api.create_workspace(lab)  # private
        api.create_user(reader)
        api.set_member(cache, reader, "reader")
    secret = f"lab's private layer {unique('x')}".encode()
    digest = f"sha256:{hashlib.sha256(secret).hexdigest()}"
    with httpx.Client(base_url=token_registry.url, auth=TokenAuth(ADMIN, ADMIN_PASSWORD), timeout=60) as http:
        _push(http, f"{lab}/private", [b'{"architecture":"amd64","os":"linux"}', secret], "v1")
        assert http.get(f"/v2/{lab}/private/blobs/{digest}").content == secret
    ref = f"{upstream.cache_path(cache)}/library/amd"  # the upstream has no such layer
    with httpx.Client(base_url=token_registry.url, auth=TokenAuth(reader, PASSWORD), timeout=60) as http:
        assert http.get(f"/v2/{ref}/manifests/v1").status_code == 200  # the cache works for reader
        probed = http.head(f"/v2/{ref}/blobs/{digest}")
        read = http.get(f"/v2/{ref}/blobs/{digest}")
    assert probed.status_code == 404
    assert read.status_code == 404, read.content[:200]
    assert secret not in read.content
    assert read.json()["errors"][0]["code"] == "BLOB_UNKNOWN"
    assert len(upstream.requests(rf"HEAD /v2/library/amd/blobs/{digest}")) == 1  # asked, refused
    assert len(upstream.requests(rf"GET /v2/library/amd/blobs/{digest}")) == 1


def test_pushes_into_a_cache_workspace_are_refused_and_pulls_still_work(
    token_registry: RunningRegistry, upstream: Upstream, images: UpstreamImages, cache: str, tmp_path: Path
) -> None:
    ref = f"{upstream.cache_path(cache)}/library/amd"
    message = f"{cache} is a pull-through cache of other registries: push to another workspace"
    pushed = Skopeo(tmp_path / "skopeo-push").copy(
        images.ref("arm64"),
        f"docker://{token_registry.host}/{ref}:v1",
        extra=["--dest-creds", f"{ADMIN}:{ADMIN_PASSWORD}", "--dest-tls-verify=false"],
        check=False,
    )
    assert pushed.returncode != 0
    assert message in pushed.stderr, pushed.stderr
    skopeo_pull(tmp_path, token_registry, f"{ref}:v1")  # the cache's own writes still work
    with httpx.Client(base_url=token_registry.url, auth=TokenAuth(ADMIN, ADMIN_PASSWORD), timeout=60) as http:
        served = http.get(f"/v2/{ref}/manifests/v1", headers={"Accept": OCI_MANIFEST})
        assert served.headers["docker-content-digest"] == images.amd64.manifest.digest
        deleted = http.delete(f"/v2/{ref}/manifests/v1")
    assert deleted.status_code == 403
    error = deleted.json()["errors"][0]
    assert (error["code"], error["message"]) == ("DENIED", message)


def test_a_cached_tag_is_served_stale_while_the_upstream_answers_503(
    token_registry: RunningRegistry, upstream: Upstream, cache: str
) -> None:
    ref = f"{upstream.cache_path(cache)}/library/amd"
    with httpx.Client(base_url=token_registry.url, auth=TokenAuth(ADMIN, ADMIN_PASSWORD), timeout=60) as http:
        fresh = http.get(f"/v2/{ref}/manifests/v1", headers={"Accept": OCI_MANIFEST})
        assert fresh.headers["dockyard-cache"] == "miss"
        upstream.fail()
        stale = http.get(f"/v2/{ref}/manifests/v1", headers={"Accept": OCI_MANIFEST})
        assert stale.status_code == 200, stale.text
        assert stale.headers["dockyard-cache"] == "stale"
        assert stale.content == fresh.content
    assert upstream.requests(r"GET /v2/library/amd/manifests/v1 HTTP/1.1\" 503")


def test_a_repository_pulled_with_credentials_is_private_in_a_public_cache(
    token_registry: RunningRegistry, upstream: Upstream
) -> None:
    cache = unique("pubcache")
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as api:
        api.create_workspace(cache, default_visibility="public")
        api.call(
            "PUT", f"/workspaces/{cache}/cache", json={"limit_bytes": "1GiB", "revalidate_seconds": "1h"}
        )
        api.call(
            "PUT",
            f"/workspaces/{cache}/registries",
            json={
                "registry": upstream.host,
                "kind": "distribution",
                "username": "mirror",
                "secret": "s3cret",
            },
        )
    ref = f"{upstream.cache_path(cache)}/library/amd"
    with httpx.Client(base_url=token_registry.url, auth=TokenAuth(ADMIN, ADMIN_PASSWORD), timeout=60) as http:
        pulled = http.get(f"/v2/{ref}/manifests/v1", headers={"Accept": OCI_MANIFEST})
        assert pulled.status_code == 200, pulled.text
    with httpx.Client(base_url=token_registry.url, auth=TokenAuth(), timeout=60) as http:
        anonymous = http.get(f"/v2/{ref}/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert anonymous.status_code in (401, 403, 404), anonymous.text


def test_a_blob_of_another_workspace_is_not_served_through_the_cache_by_digest(
    token_registry: RunningRegistry, upstream: Upstream, cache: str
) -> None:
    from tests.support.identity import oci_as
    from tests.support.oci import image_config, oci_manifest, random_blob

    layer = random_blob(4000)  # a private layer of another workspace; the upstream never had it
    member, private = unique("reader"), unique("private")
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as api:
        api.create_user(member)
        api.set_member(cache, member, "reader")
        api.create_workspace(private)
    with oci_as(token_registry, ADMIN, ADMIN_PASSWORD) as oci:
        oci.push(f"{private}/secret", oci_manifest(image_config(), [layer]), "v1")
    ref = f"{upstream.cache_path(cache)}/library/amd"
    with httpx.Client(base_url=token_registry.url, auth=TokenAuth(member, PASSWORD), timeout=60) as http:
        asked = http.get(f"/v2/{ref}/blobs/{layer.digest}")
    assert asked.status_code == 404, (asked.status_code, asked.headers)
    assert asked.content != layer.data
    assert len(upstream.requests(rf"GET /v2/library/amd/blobs/{layer.digest}")) == 1  # asked upstream


def test_a_head_of_an_uncached_blob_asks_the_upstream_with_a_head_and_downloads_nothing(
    token_registry: RunningRegistry, upstream: Upstream, images: UpstreamImages, cache: str
) -> None:
    layer = images.amd64.layers[0]
    ref = f"{upstream.cache_path(cache)}/library/amd"
    missing = f"sha256:{hashlib.sha256(b'no such layer').hexdigest()}"
    with httpx.Client(base_url=token_registry.url, auth=TokenAuth(ADMIN, ADMIN_PASSWORD), timeout=60) as http:
        assert http.get(f"/v2/{ref}/manifests/v1").status_code == 200
        head = http.head(f"/v2/{ref}/blobs/{layer.digest}")
        unknown = http.head(f"/v2/{ref}/blobs/{missing}")
    assert head.status_code == 200
    assert int(head.headers["content-length"]) == layer.size
    assert head.headers["docker-content-digest"] == layer.digest
    assert head.headers["dockyard-cache"] == "miss"
    assert len(upstream.requests(rf"HEAD /v2/library/amd/blobs/{layer.digest}")) == 1
    assert upstream.requests(rf"GET /v2/library/amd/blobs/{layer.digest}") == []
    assert unknown.status_code == 404
    assert upstream.requests(rf"GET /v2/library/amd/blobs/{missing}") == []


def test_a_head_the_upstream_redirects_to_a_get_only_url_is_answered_from_the_get_headers(
    token_registry: RunningRegistry, tmp_path: Path, images: UpstreamImages, cache: str
) -> None:
    """As registries on object storage do: a blob HEAD redirected to a URL presigned for GET,
    which refuses a HEAD (403). The cache answers the HEAD with the size and digest the GET's
    headers carry, and stores nothing."""
    registry = start_upstream_registry(tmp_path / "registry")
    try:
        presigned = (
            "location /presigned/ { if ($request_method = HEAD) { return 403; } "
            "rewrite ^/presigned(/.*)$ $1 break; "
            f"proxy_pass http://{registry.host}; proxy_buffering off; }}"
        )
        blobs_head = (
            r"location ~ ^/v2/.+/blobs/ { if ($request_method = HEAD) { return 307 /presigned$uri; } "
            f"proxy_pass http://{registry.host}; proxy_buffering off; }}"
        )
        nginx = start_nginx(
            tmp_path / "nginx",
            {"upstream": f"{presigned}\n{blobs_head}\nlocation / {{ proxy_pass http://{registry.host}; }}"},
        )
    except BaseException:
        registry.stop()
        raise
    upstream = Upstream(registry, nginx)
    try:
        Skopeo(tmp_path / "skopeo").copy(
            images.ref("amd64"), f"docker://{registry.host}/library/amd:v1", extra=["--preserve-digests"]
        )
        layer = images.amd64.layers[0]
        ref = f"{upstream.cache_path(cache)}/library/amd"
        with httpx.Client(
            base_url=token_registry.url, auth=TokenAuth(ADMIN, ADMIN_PASSWORD), timeout=60
        ) as http:
            assert http.get(f"/v2/{ref}/manifests/v1").status_code == 200
            head = http.head(f"/v2/{ref}/blobs/{layer.digest}")
            again = http.head(f"/v2/{ref}/blobs/{layer.digest}")
        assert head.status_code == 200, head.text
        assert int(head.headers["content-length"]) == layer.size
        assert head.headers["docker-content-digest"] == layer.digest
        assert again.headers["dockyard-cache"] == "miss"  # the HEAD stored nothing
        assert (
            len(upstream.requests(rf"HEAD /presigned/v2/library/amd/blobs/{layer.digest} HTTP/1.1\" 403"))
            == 2
        )
        assert len(upstream.requests(rf"GET /v2/library/amd/blobs/{layer.digest}")) == 2
    finally:
        upstream.stop()
