"""Verifying external image references against real upstream registries on loopback.

The upstreams: Debian's ``docker-registry`` open and behind Basic auth (images pushed with
skopeo from a local OCI layout), nginx in front of it (rate limiting with ``limit_req``, a
proxy to a closed port, hand-written hostile answers), and Dockyard itself in token mode.
There is no internet: every host is 127.0.0.1, so every call uses ``scheme="http"``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from dockyard.outbound import OutboundClient, OutboundPolicy
from dockyard.upstream.client import Credentials, Failed, Resolution, Resolved, resolve
from tests.support.clients import Skopeo, manifest_descriptor
from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api, oci_as, unique
from tests.support.oci import Manifest, oci_manifest
from tests.support.servers import RunningRegistry
from tests.support.upstreams import (
    Nginx,
    UpstreamImages,
    build_upstream_images,
    closed_port,
    start_nginx,
    start_upstream_registry,
)

pytestmark = pytest.mark.clients

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
ALICE = Credentials("alice", "alice-upstream-secret")
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
LOOPBACK = OutboundPolicy(["127.0.0.0/8"])  # every upstream here is on loopback


async def http_resolve(
    host: str,
    repository: str,
    reference: str,
    *,
    credentials: Credentials | None = None,
    client: OutboundClient | None = None,
    deadline: float = 60.0,
) -> Resolution:
    """``resolve`` over plain HTTP, loopback allowed, as every upstream here is on loopback."""
    return await resolve(
        host,
        repository,
        reference,
        outbound=LOOPBACK,
        credentials=credentials,
        scheme="http",
        client=client,
        deadline=deadline,
    )


async def base_status(host: str) -> int:
    """The status of ``GET /v2/`` on ``host``."""
    async with httpx.AsyncClient(timeout=10) as client:
        return (await client.get(f"http://{host}/v2/")).status_code


def resolved(result: Resolution) -> Resolved:
    assert isinstance(result, Resolved), f"expected a resolution, got {result}"
    return result


def failed(result: Resolution, kind: str) -> Failed:
    assert isinstance(result, Failed), f"expected a {kind} failure, got {result}"
    assert result.kind == kind, result
    return result


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> UpstreamImages:
    return build_upstream_images(tmp_path_factory.mktemp("upstream-images"))


@dataclass(frozen=True)
class OpenUpstream:
    registry: RunningRegistry
    docker_digest: str  # library/amd:docker, the amd64 image converted to Docker schema 2

    @property
    def host(self) -> str:
        return self.registry.host


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory, images: UpstreamImages) -> Iterator[OpenUpstream]:
    """An open docker-registry holding library/multi:v1 (index), library/amd:v1, library/arm:v1
    and library/amd:docker (Docker schema 2)."""
    registry = start_upstream_registry(tmp_path_factory.mktemp("open-upstream"))
    try:
        skopeo = Skopeo(tmp_path_factory.mktemp("skopeo-open"))
        exact = ["--preserve-digests"]
        skopeo.copy(
            images.ref("multi"), f"docker://{registry.host}/library/multi:v1", all_images=True, extra=exact
        )
        skopeo.copy(images.ref("amd64"), f"docker://{registry.host}/library/amd:v1", extra=exact)
        skopeo.copy(images.ref("arm64"), f"docker://{registry.host}/library/arm:v1", extra=exact)
        skopeo.copy(
            images.ref("amd64"), f"docker://{registry.host}/library/amd:docker", extra=["--format", "v2s2"]
        )
        docker = manifest_descriptor(registry.url, "library/amd", "docker")
        assert docker.media_type == DOCKER_MANIFEST
        yield OpenUpstream(registry, docker.digest)
    finally:
        registry.stop()


@pytest.fixture(scope="module")
def private_upstream(
    tmp_path_factory: pytest.TempPathFactory, images: UpstreamImages
) -> Iterator[RunningRegistry]:
    """A docker-registry with Basic auth (bcrypt htpasswd) holding team/secret:v1 (arm64)."""
    registry = start_upstream_registry(
        tmp_path_factory.mktemp("private-upstream"), {ALICE.username: ALICE.secret}
    )
    try:
        skopeo = Skopeo(tmp_path_factory.mktemp("skopeo-private"))
        creds = f"{ALICE.username}:{ALICE.secret}"
        skopeo.copy(
            images.ref("arm64"),
            f"docker://{registry.host}/team/secret:v1",
            extra=["--preserve-digests", "--dest-creds", creds],
        )
        yield registry
    finally:
        registry.stop()


def spec_error(status: int, code: str, message: str) -> str:
    """nginx directives answering with a Distribution error body."""
    body = json.dumps({"errors": [{"code": code, "message": message, "detail": None}]})
    return f"      default_type application/json;\n      return {status} '{body}';\n"


HUB_LIKE_429 = "      add_header Retry-After 30 always;\n" + spec_error(
    429, "TOOMANYREQUESTS", "pull rate limit exceeded"
)


@pytest.fixture(scope="module")
def front(
    tmp_path_factory: pytest.TempPathFactory, upstream: OpenUpstream, images: UpstreamImages
) -> Iterator[Nginx]:
    """nginx with one server block per case, each on its own port:

    - ``throttled``: ``limit_req`` at 1 request a minute in front of the open upstream, answering
      the excess like Docker Hub (429, ``TOOMANYREQUESTS``, ``Retry-After: 30``);
    - ``throttled_plain``: the same limit with nginx's own 429 page;
    - ``broken``: a proxy to a closed port (502);
    - ``hostile``: a lying ``Docker-Content-Digest``, a 5 MiB manifest, an index listing a
      manifest that is not served, a manifest trickled at 100 bytes/s, and a ``NAME_UNKNOWN``.
    """
    base = tmp_path_factory.mktemp("nginx")
    files = base / "files"
    evil = files / "v2" / "evil"
    for name in ("lies", "huge", "sparse", "slow"):
        (evil / name / "manifests").mkdir(parents=True)
    (evil / "lies" / "manifests" / "v1").write_bytes(images.blobs[images.amd64.manifest.digest])
    (evil / "huge" / "manifests" / "v1").write_bytes(b" " * (MAX_MANIFEST_BYTES + 1024 * 1024))
    (evil / "sparse" / "manifests" / "v1").write_bytes(images.blobs[images.index.digest])
    (evil / "slow" / "manifests" / "v1").write_bytes(
        images.blobs[images.amd64.manifest.digest] + b" " * 20_000
    )

    def served(path: str, media_type: str, extra: str = "") -> str:
        body = f"      root {files};\n      default_type {media_type};\n{extra}"
        return f"    location = {path} {{\n{body}    }}\n"

    proxy = f"      proxy_pass http://{upstream.host};\n      proxy_set_header Host $http_host;\n"
    servers = {
        "throttled": (
            "    location /v2/ {\n      limit_req zone=hub;\n      error_page 429 = @throttled;\n"
            f"{proxy}    }}\n    location @throttled {{\n{HUB_LIKE_429}    }}\n"
        ),
        "throttled_plain": f"    location /v2/ {{\n      limit_req zone=plain;\n{proxy}    }}\n",
        "broken": f"    location /v2/ {{\n      proxy_pass http://127.0.0.1:{closed_port()};\n    }}\n",
        "hostile": (
            served(
                "/v2/evil/lies/manifests/v1",
                OCI_MANIFEST,
                f"      add_header Docker-Content-Digest {images.arm64.manifest.digest} always;\n",
            )
            + served("/v2/evil/huge/manifests/v1", OCI_MANIFEST)
            + served("/v2/evil/sparse/manifests/v1", OCI_INDEX)
            + served("/v2/evil/slow/manifests/v1", OCI_MANIFEST, "      limit_rate 100;\n")
            + "    location = /v2/evil/gone/manifests/v1 {\n"
            + spec_error(404, "NAME_UNKNOWN", "repository name not known to registry")
            + "    }\n"
        ),
    }
    zones = (
        "  limit_req_zone $binary_remote_addr zone=hub:1m rate=1r/m;\n"
        "  limit_req_zone $binary_remote_addr zone=plain:1m rate=1r/m;\n"
        "  limit_req_status 429;\n"
    )
    nginx = start_nginx(base, servers, zones)
    try:
        yield nginx
    finally:
        nginx.stop()


# --------------------------------------------------------------------------- resolved


async def test_a_tag_resolves_anonymously(upstream: OpenUpstream, images: UpstreamImages) -> None:
    result = resolved(await http_resolve(upstream.host, "library/amd", "v1"))

    assert result.digest == images.amd64.manifest.digest
    assert result.media_type == OCI_MANIFEST
    assert not result.is_index
    assert result.platforms == ["linux/amd64"]
    assert result.compressed_size == images.amd64.compressed_size
    assert result.platform_sizes == {"linux/amd64": images.amd64.compressed_size}
    assert result.checked_at.tzinfo is not None


async def test_a_digest_resolves_anonymously(upstream: OpenUpstream, images: UpstreamImages) -> None:
    digest = images.amd64.manifest.digest
    result = resolved(await http_resolve(upstream.host, "library/amd", digest))

    assert result.digest == digest
    assert result.platforms == ["linux/amd64"]
    assert result.compressed_size == images.amd64.compressed_size


async def test_an_index_lists_its_platforms_and_sizes_without_attestations(
    upstream: OpenUpstream, images: UpstreamImages
) -> None:
    result = resolved(await http_resolve(upstream.host, "library/multi", "v1"))

    assert result.digest == images.index.digest
    assert result.media_type == OCI_INDEX
    assert result.is_index
    assert result.platforms == ["linux/amd64", "linux/arm64/v8"]  # not the unknown/unknown attestation
    assert result.platform_sizes == {
        "linux/amd64": images.amd64.compressed_size,
        "linux/arm64/v8": images.arm64.compressed_size,
    }
    assert result.compressed_size == images.amd64.compressed_size  # what an amd64 pull downloads
    assert images.amd64.compressed_size != images.arm64.compressed_size


async def test_an_index_resolves_by_digest(upstream: OpenUpstream, images: UpstreamImages) -> None:
    result = resolved(await http_resolve(upstream.host, "library/multi", images.index.digest))
    assert (result.digest, result.platforms) == (images.index.digest, ["linux/amd64", "linux/arm64/v8"])


async def test_an_arm64_only_image_reports_its_platform(
    upstream: OpenUpstream, images: UpstreamImages
) -> None:
    result = resolved(await http_resolve(upstream.host, "library/arm", "v1"))

    assert result.digest == images.arm64.manifest.digest
    assert result.platforms == ["linux/arm64/v8"]  # read from the config blob: os, architecture, variant
    assert result.compressed_size == images.arm64.compressed_size
    assert result.platform_sizes == {"linux/arm64/v8": images.arm64.compressed_size}


async def test_a_docker_schema2_manifest_resolves(upstream: OpenUpstream, images: UpstreamImages) -> None:
    result = resolved(await http_resolve(upstream.host, "library/amd", "docker"))

    assert result.media_type == DOCKER_MANIFEST
    assert result.digest == upstream.docker_digest != images.amd64.manifest.digest
    assert result.platforms == ["linux/amd64"]
    assert result.compressed_size == images.amd64.compressed_size  # same config and layer blobs


async def test_an_injected_client_is_used_and_left_open(
    upstream: OpenUpstream, images: UpstreamImages
) -> None:
    seen: list[str] = []

    async def record(request: httpx.Request) -> None:
        seen.append(request.url.path)

    async with LOOPBACK.client(event_hooks={"request": [record]}) as client:
        first = resolved(await http_resolve(upstream.host, "library/arm", "v1", client=client))
        second = resolved(await http_resolve(upstream.host, "library/arm", "v1", client=client))
    assert first.digest == second.digest == images.arm64.manifest.digest
    assert (
        seen
        == [
            "/v2/library/arm/manifests/v1",
            f"/v2/library/arm/blobs/{images.arm64.config.digest}",
        ]
        * 2
    )


# --------------------------------------------------------------------------- not found, invalid


async def test_a_missing_tag_is_not_found(upstream: OpenUpstream) -> None:
    result = failed(await http_resolve(upstream.host, "library/amd", "nope"), "not_found")
    assert result.status == 404
    assert result.message == f"tag nope not found in {upstream.host}/library/amd"


async def test_a_missing_digest_is_not_found(upstream: OpenUpstream) -> None:
    digest = "sha256:" + "0" * 64
    result = failed(await http_resolve(upstream.host, "library/amd", digest), "not_found")
    assert result.message == f"manifest {digest} not found in {upstream.host}/library/amd"


async def test_a_missing_repository_is_not_found(upstream: OpenUpstream) -> None:
    result = failed(await http_resolve(upstream.host, "nobody/nothing", "v1"), "not_found")
    assert result.status == 404
    # Distribution (and Dockyard) answer MANIFEST_UNKNOWN here: the tags list (404) tells.
    assert (result.detail, result.message) == (
        "repository",
        f"repository nobody/nothing not found on {upstream.host}",
    )


@pytest.mark.parametrize(
    ("host", "repository", "reference", "scheme", "expected"),
    [
        ("127.0.0.1:1", "Library/Alpine", "v1", "http", "invalid repository name"),
        ("127.0.0.1:1", "library/alpine", "bad tag", "http", "invalid tag"),
        ("127.0.0.1:1", "library/alpine", "sha256:abc", "http", "invalid sha256 digest"),
        ("not a host", "library/alpine", "v1", "http", "invalid registry host"),
        ("127.0.0.1:1", "library/alpine", "v1", "ftp", "unsupported scheme"),
    ],
)
async def test_bad_arguments_are_invalid_without_a_request(
    host: str, repository: str, reference: str, scheme: str, expected: str
) -> None:
    result = failed(await resolve(host, repository, reference, outbound=LOOPBACK, scheme=scheme), "invalid")
    assert expected in result.message
    assert result.status is None


# --------------------------------------------------------------------------- unauthorized


async def test_a_private_image_without_credentials_is_unauthorized(private_upstream: RunningRegistry) -> None:
    host = private_upstream.host
    result = failed(await http_resolve(host, "team/secret", "v1"), "unauthorized")

    assert result.status == 401
    assert result.message == (
        f"the upstream registry refused anonymous access to {host}/team/secret: the image is private "
        f"(or does not exist); add credentials for {host} or ask its owner for access"
    )


async def test_a_private_image_resolves_with_credentials(
    private_upstream: RunningRegistry, images: UpstreamImages
) -> None:
    result = resolved(await http_resolve(private_upstream.host, "team/secret", "v1", credentials=ALICE))
    assert result.digest == images.arm64.manifest.digest
    assert result.platforms == ["linux/arm64/v8"]  # the config blob was fetched with the credentials too
    assert result.compressed_size == images.arm64.compressed_size


async def test_wrong_credentials_are_unauthorized(private_upstream: RunningRegistry) -> None:
    wrong = Credentials(ALICE.username, "not-the-secret")
    result = failed(
        await http_resolve(private_upstream.host, "team/secret", "v1", credentials=wrong), "unauthorized"
    )
    assert result.status == 401
    assert f"{private_upstream.host} refused alice access to team/secret" in result.message
    assert "not-the-secret" not in result.message
    assert "not-the-secret" not in repr(wrong)


# --------------------------------------------------------------------------- unreachable, rate limited


async def test_a_closed_port_is_unreachable() -> None:
    host = f"127.0.0.1:{closed_port()}"
    result = failed(await http_resolve(host, "library/amd", "v1"), "unreachable")
    assert result.status is None
    assert result.message.startswith(f"could not reach {host}: the connection was refused")


async def test_a_failing_proxy_is_an_upstream_error(front: Nginx) -> None:
    host = front.host("broken")
    result = failed(await http_resolve(host, "library/amd", "v1"), "upstream_error")
    assert result.status == 502
    assert f"{host} answered HTTP 502 (Bad Gateway)" in result.message


async def test_a_rate_limited_upstream_says_when_to_come_back(front: Nginx, images: UpstreamImages) -> None:
    host = front.host("throttled")
    # The first request in the minute passes (the real registry answers through nginx)...
    assert await base_status(host) == 200
    # ...and the next is refused as Docker Hub does.
    result = failed(await http_resolve(host, "library/amd", "v1"), "rate_limited")

    assert result.status == 429
    assert result.retry_after == 30.0
    assert result.message == (
        f"{host} is rate limiting requests (HTTP 429: pull rate limit exceeded); try again in 30 seconds, "
        f"or add credentials for {host} if it allows more pulls to signed-in users"
    )


async def test_a_plain_429_is_rate_limited_too(front: Nginx) -> None:
    host = front.host("throttled_plain")
    assert await base_status(host) == 200
    result = failed(await http_resolve(host, "library/amd", "v1"), "rate_limited")

    assert (result.status, result.retry_after) == (429, None)
    assert "try again later" in result.message


# --------------------------------------------------------------------------- hostile upstreams


async def test_a_lying_digest_header_is_refused(front: Nginx, images: UpstreamImages) -> None:
    result = failed(await http_resolve(front.host("hostile"), "evil/lies", "v1"), "invalid")
    assert f"Docker-Content-Digest {images.arm64.manifest.digest} does not match" in result.message
    assert images.amd64.manifest.digest in result.message


async def test_an_oversized_manifest_is_refused_unread(front: Nginx) -> None:
    result = failed(await http_resolve(front.host("hostile"), "evil/huge", "v1"), "invalid")
    assert f"more than {MAX_MANIFEST_BYTES} bytes are refused" in result.message


async def test_an_index_listing_a_missing_manifest_is_invalid(front: Nginx, images: UpstreamImages) -> None:
    result = failed(await http_resolve(front.host("hostile"), "evil/sparse", "v1"), "invalid")
    assert result.status == 404
    assert (
        f"lists manifest {images.amd64.manifest.digest}, which the registry does not serve" in result.message
    )


async def test_an_unknown_repository_is_named_as_such(front: Nginx) -> None:
    host = front.host("hostile")
    result = failed(await http_resolve(host, "evil/gone", "v1"), "not_found")
    assert result.status == 404
    assert result.message == f"repository evil/gone not found on {host}"


async def test_a_stalling_upstream_is_cut_off_at_the_deadline(front: Nginx) -> None:
    host = front.host("hostile")
    result = failed(await http_resolve(host, "evil/slow", "v1", deadline=1.0), "unreachable")
    assert result.message.startswith(f"{host} did not finish answering within 1 seconds")


# --------------------------------------------------------------------------- Dockyard in token mode


@dataclass(frozen=True)
class DockyardUpstream:
    registry: RunningRegistry
    public: str
    private: str
    image: Manifest
    outsider: str  # a user with no access to either repository


@pytest.fixture(scope="module")
def dockyard_upstream(token_registry: RunningRegistry) -> DockyardUpstream:
    workspace = unique("upstream")
    image = oci_manifest()
    public, private = f"{workspace}/public", f"{workspace}/private"
    outsider = unique("outsider")
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as api:
        api.create_user(outsider)
        api.create_workspace(workspace)
        with oci_as(token_registry, ADMIN, ADMIN_PASSWORD) as oci:
            oci.push(public, image, "v1")
            oci.push(private, image, "v1")
        api.set_visibility(public, "public")
    return DockyardUpstream(token_registry, public, private, image, outsider)


def _size(image: Manifest) -> int:
    document = json.loads(image.body)
    return int(document["config"]["size"]) + sum(int(layer["size"]) for layer in document["layers"])


async def test_dockyard_public_image_resolves_anonymously(dockyard_upstream: DockyardUpstream) -> None:
    up = dockyard_upstream
    result = resolved(await http_resolve(up.registry.host, up.public, "v1"))
    assert result.digest == up.image.digest
    assert result.platforms == ["linux/amd64"]  # the config blob, fetched with the anonymous token
    assert result.compressed_size == _size(up.image)


async def test_dockyard_private_image_is_unauthorized_anonymously(
    dockyard_upstream: DockyardUpstream,
) -> None:
    up = dockyard_upstream
    result = failed(await http_resolve(up.registry.host, up.private, "v1"), "unauthorized")
    assert result.status == 401
    assert "refused anonymous access" in result.message


async def test_dockyard_private_image_resolves_with_a_token_for_credentials(
    dockyard_upstream: DockyardUpstream,
) -> None:
    up = dockyard_upstream
    admin = Credentials(ADMIN, ADMIN_PASSWORD)
    result = resolved(await http_resolve(up.registry.host, up.private, "v1", credentials=admin))
    assert result.digest == up.image.digest


async def test_dockyard_rejects_wrong_credentials_at_its_token_service(
    dockyard_upstream: DockyardUpstream,
) -> None:
    up = dockyard_upstream
    wrong = Credentials(up.outsider, "wrong-password")  # not the admin: failed logins count towards a lock
    result = failed(await http_resolve(up.registry.host, up.private, "v1", credentials=wrong), "unauthorized")
    assert result.status == 401
    assert result.message.startswith(f"{up.registry.host} rejected the credentials of {up.outsider}")


async def test_dockyard_user_without_access_is_unauthorized(dockyard_upstream: DockyardUpstream) -> None:
    up = dockyard_upstream
    outsider = Credentials(up.outsider, PASSWORD)
    result = failed(
        await http_resolve(up.registry.host, up.private, "v1", credentials=outsider), "unauthorized"
    )
    assert result.status == 401
    assert result.message.startswith(f"{up.registry.host} refused {up.outsider} access to {up.private}")
    # ...while the public image resolves for the same user.
    assert resolved(await http_resolve(up.registry.host, up.public, "v1", credentials=outsider))


async def test_dockyard_missing_repository_is_not_found_for_a_signed_in_user(
    dockyard_upstream: DockyardUpstream,
) -> None:
    up = dockyard_upstream
    missing = f"{up.public.split('/')[0]}/missing"
    admin = Credentials(ADMIN, ADMIN_PASSWORD)
    result = failed(await http_resolve(up.registry.host, missing, "v1", credentials=admin), "not_found")
    assert result.status == 404
    # MANIFEST_UNKNOWN, and the tags list says which is missing
    assert result.message == f"repository {missing} not found on {up.registry.host}"


def test_images_are_what_the_tests_assume(images: UpstreamImages) -> None:
    """The layout's index lists amd64, arm64/v8 and an attestation, in that order."""
    index = json.loads(images.blobs[images.index.digest])
    platforms = [entry["platform"] for entry in index["manifests"]]
    assert platforms == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "os": "linux", "variant": "v8"},
        {"architecture": "unknown", "os": "unknown"},
    ]
