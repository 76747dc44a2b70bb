"""Registry profiles against real upstreams on loopback, on both metadata databases.

Each failure reason is produced for real: Debian's ``docker-registry`` open and with htpasswd
Basic auth (404 repository vs 404 tag, wrong password naming the profile), the same storage
served over TLS by a certificate from a private CA (``tls`` without the CA bundle, success
with it), a stopped one (``unreachable``), nginx answering 429 with Retry-After, and ECR: an
access key pair exchanged for a token at ``moto`` in server mode, its password accepted by an
htpasswd registry (moto's token decodes to ``AWS:<password>``).
"""

from __future__ import annotations

import asyncio
import base64
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from dockyard.app.services import Services
from dockyard.auth.policy import Subject
from dockyard.errors import Forbidden, Invalid
from dockyard.outbound import OutboundPolicy
from dockyard.upstream.client import resolve
from dockyard.upstream.credentials import ProfileSettings
from dockyard.upstream.profiles import EcrTokens, Profiles
from dockyard.upstream.results import Failed, Resolution, Resolved
from tests.support.clients import Skopeo
from tests.support.servers import RunningRegistry, free_port
from tests.support.upstreams import (
    UpstreamImages,
    build_upstream_images,
    closed_port,
    private_ca_certificates,
    start_nginx,
    start_upstream_registry,
    wait_listening,
)
from tests.unit.catalog.factories import WORKSPACE, People

LOOPBACK = OutboundPolicy(["127.0.0.0/8"])
ECR_ACCOUNT = "312767926603"
ECR_REGION = "us-west-2"


@dataclass(frozen=True)
class Upstreams:
    open: RunningRegistry  # library/amd:v1
    private: RunningRegistry  # team/secret:v1, alice / right-password
    tls: RunningRegistry  # the open one's storage over HTTPS
    ca_pem: str
    ecr: RunningRegistry  # team/ecr:v1, AWS / moto's token password
    moto_url: str


def _moto_password(url: str) -> str:
    client = boto3.client(
        "ecr",
        region_name=ECR_REGION,
        endpoint_url=url,
        aws_access_key_id="AKIDTEST",
        aws_secret_access_key="x",
    )
    token = client.get_authorization_token(registryIds=[ECR_ACCOUNT])["authorizationData"][0]
    user, _, password = base64.b64decode(token["authorizationToken"]).decode().partition(":")
    assert user == "AWS"
    return password


@pytest.fixture(scope="module")
def upstreams(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstreams]:
    images: UpstreamImages = build_upstream_images(tmp_path_factory.mktemp("images"))
    started: list[RunningRegistry] = []
    moto_bin = shutil.which("moto_server") or str(
        Path(shutil.which("python") or "python").parent / "moto_server"
    )
    moto_port = free_port()
    moto_log = tmp_path_factory.mktemp("moto") / "moto.log"
    with moto_log.open("ab") as log:
        moto = subprocess.Popen(
            [moto_bin, "-H", "127.0.0.1", "-p", str(moto_port)], stdout=log, stderr=subprocess.STDOUT
        )
    try:
        wait_listening(moto_port, moto, moto_log)
        moto_url = f"http://127.0.0.1:{moto_port}"
        skopeo = Skopeo(tmp_path_factory.mktemp("skopeo"))
        opened = start_upstream_registry(tmp_path_factory.mktemp("open"))
        started.append(opened)
        skopeo.copy(images.ref("amd64"), f"docker://{opened.host}/library/amd:v1")
        private = start_upstream_registry(tmp_path_factory.mktemp("private"), {"alice": "right-password"})
        started.append(private)
        skopeo.copy(
            images.ref("amd64"),
            f"docker://{private.host}/team/secret:v1",
            extra=["--dest-creds", "alice:right-password"],
        )
        cert, key, ca_pem = private_ca_certificates(tmp_path_factory.mktemp("certs"))
        tls = start_upstream_registry(
            tmp_path_factory.mktemp("tls"), tls=(cert, key), data_dir=opened.data_dir
        )
        started.append(tls)
        password = _moto_password(moto_url)
        ecr = start_upstream_registry(tmp_path_factory.mktemp("ecr"), {"AWS": password})
        started.append(ecr)
        skopeo.copy(
            images.ref("amd64"), f"docker://{ecr.host}/ecr:v1", extra=["--dest-creds", f"AWS:{password}"]
        )
        yield Upstreams(opened, private, tls, ca_pem, ecr, moto_url)
    finally:
        for server in started:
            server.stop()
        moto.terminate()
        moto.wait(timeout=30)


async def _workspace_id(services: Services) -> int:
    from dockyard.auth.guard import find_workspace

    async with services.db.read() as conn:
        return (await find_workspace(conn, WORKSPACE)).id


async def _resolve(
    services: Services, profiles: Profiles, host: str, repository: str, tag: str
) -> Resolution:
    reach = await profiles.connection_for(None, await _workspace_id(services), host)
    return await resolve(
        host,
        repository,
        tag,
        outbound=LOOPBACK,
        credentials=reach.credentials,
        scheme=reach.scheme,
        verify=reach.verify,
        deadline=60,
    )


def _profiles(services: Services, ecr: EcrTokens | None = None) -> Profiles:
    return Profiles(services.db, services.verification.credentials.cipher(), ecr=ecr)


def _failed(result: Resolution, kind: str) -> Failed:
    assert isinstance(result, Failed), result
    assert result.kind == kind, result
    return result


async def test_open_registry_not_found_says_repository_or_tag(
    services: Services, people: People, upstreams: Upstreams
) -> None:
    profiles = _profiles(services)
    host = upstreams.open.host
    assert isinstance(await _resolve(services, profiles, host, "library/amd", "v1"), Resolved)
    tag = _failed(await _resolve(services, profiles, host, "library/amd", "nope"), "not_found")
    assert (tag.detail, tag.message) == ("tag", f"tag nope not found in {host}/library/amd")
    repo = _failed(await _resolve(services, profiles, host, "nobody/nothing", "v1"), "not_found")
    assert (repo.detail, repo.message) == ("repository", f"repository nobody/nothing not found on {host}")


async def test_htpasswd_registry_with_the_profile_and_a_wrong_password_naming_it(
    services: Services, people: People, upstreams: Upstreams
) -> None:
    store = services.verification.credentials
    host = upstreams.private.host
    profiles = _profiles(services)
    anonymous = _failed(await _resolve(services, profiles, host, "team/secret", "v1"), "unauthorized")
    assert anonymous.profile is None

    await store.put(people.maintainer, WORKSPACE, host, "alice", "wrong-password")
    wrong = _failed(await _resolve(services, profiles, host, "team/secret", "v1"), "unauthorized")
    ws = await _workspace_id(services)
    assert wrong.profile == f"{host} (workspace {ws})"
    assert f"check the registry profile {host} (workspace {ws})" in wrong.message
    assert "wrong-password" not in wrong.message

    await store.put(people.maintainer, WORKSPACE, host, "alice", "right-password")
    assert isinstance(await _resolve(services, profiles, host, "team/secret", "v1"), Resolved)


async def test_platform_profile_is_used_and_the_workspace_s_own_wins(
    services: Services, people: People, upstreams: Upstreams
) -> None:
    store = services.verification.credentials
    host = upstreams.private.host
    with pytest.raises(Forbidden):
        await store.put(people.maintainer, None, host, "alice", "right-password")
    await store.put(people.admin, None, host, "alice", "right-password")
    profiles = _profiles(services)
    assert isinstance(await _resolve(services, profiles, host, "team/secret", "v1"), Resolved)
    await store.put(people.maintainer, WORKSPACE, host, "alice", "wrong-password")
    wrong = _failed(await _resolve(services, profiles, host, "team/secret", "v1"), "unauthorized")
    assert wrong.profile == f"{host} (workspace {await _workspace_id(services)})"


async def test_tls_without_the_ca_fails_with_tls_and_the_ca_bundle_fixes_it(
    services: Services, people: People, upstreams: Upstreams
) -> None:
    store = services.verification.credentials
    host = upstreams.tls.host
    profiles = _profiles(services)
    plain_http_off = ProfileSettings(plain_http=False)
    await store.put(people.maintainer, WORKSPACE, host, "", "", settings=plain_http_off)
    tls = _failed(await _resolve(services, profiles, host, "library/amd", "v1"), "tls")
    assert "add its CA bundle to the registry profile" in tls.message

    with_ca = ProfileSettings(plain_http=False, ca_bundle=upstreams.ca_pem)
    await store.put(people.maintainer, WORKSPACE, host, "", "", settings=with_ca)
    assert isinstance(await _resolve(services, profiles, host, "library/amd", "v1"), Resolved)

    with pytest.raises(Invalid, match="not PEM"):
        await store.put(
            people.maintainer, WORKSPACE, host, "", "", settings=ProfileSettings(ca_bundle="junk")
        )
    with pytest.raises(Invalid, match="over 64 KiB"):
        await store.put(
            people.maintainer, WORKSPACE, host, "", "", settings=ProfileSettings(ca_bundle="x" * 70_000)
        )


async def test_plain_http_needs_an_admin(services: Services, people: People) -> None:
    store = services.verification.credentials
    with pytest.raises(Forbidden, match="plain HTTP"):
        await store.put(
            people.maintainer,
            WORKSPACE,
            "registry.example.org",
            "",
            "",
            settings=ProfileSettings(plain_http=True),
        )
    saved = await store.put(
        people.admin, WORKSPACE, "registry.example.org", "", "", settings=ProfileSettings(plain_http=True)
    )
    assert saved.settings.plain_http is True
    reach = await _profiles(services).connection_for(
        None, await _workspace_id(services), "registry.example.org"
    )
    assert reach.scheme == "http"


async def test_a_stopped_registry_is_unreachable(services: Services, people: People) -> None:
    host = f"127.0.0.1:{closed_port()}"
    failed = _failed(await _resolve(services, _profiles(services), host, "library/amd", "v1"), "unreachable")
    assert failed.detail == "connect"


async def test_429_with_retry_after_is_rate_limited(
    services: Services, people: People, tmp_path: Path
) -> None:
    nginx = start_nginx(
        tmp_path / "nginx", {"limited": "location / { add_header Retry-After 17 always; return 429; }"}
    )
    try:
        host = nginx.host("limited")
        failed = _failed(
            await _resolve(services, _profiles(services), host, "library/amd", "v1"), "rate_limited"
        )
        assert failed.retry_after == 17
        assert "try again in 17 seconds" in failed.message
    finally:
        nginx.stop()


async def _ecr_profile(
    services: Services, upstreams: Upstreams, who: Subject, workspace: str, secret: str
) -> str:
    """An ECR profile of ``workspace`` for the moto-backed registry (access key AKIDEXAMPLE)."""
    settings = ProfileSettings(kind="ecr", ecr_account=ECR_ACCOUNT, ecr_region=ECR_REGION)
    host = upstreams.ecr.host
    await services.verification.credentials.put(
        who, workspace, host, "AKIDEXAMPLE", secret, settings=settings
    )
    return host


async def test_ecr_exchanges_the_key_pair_for_a_token_and_keeps_it(
    services: Services, people: People, upstreams: Upstreams
) -> None:
    store = services.verification.credentials
    host = await _ecr_profile(services, upstreams, people.maintainer, WORKSPACE, "secret-key")
    tokens = EcrTokens(upstreams.moto_url)
    profiles = _profiles(services, tokens)

    assert isinstance(await _resolve(services, profiles, host, "ecr", "v1"), Resolved)
    assert isinstance(await _resolve(services, profiles, host, "ecr", "v1"), Resolved)
    assert tokens.exchanges == 1  # the token is kept until shortly before it expires

    with pytest.raises(Invalid, match="12-digit account id"):
        await store.put(people.maintainer, WORKSPACE, host, "AKID", "s", settings=ProfileSettings(kind="ecr"))


async def test_ecr_tokens_are_per_profile_and_secret_not_per_access_key_id(
    services: Services, people: People, upstreams: Upstreams
) -> None:
    from dockyard.auth.guard import find_workspace

    host = await _ecr_profile(services, upstreams, people.maintainer, WORKSPACE, "lab-secret")
    other = people.outsider.name  # the outsider's own workspace, same access key id, its own secret
    await _ecr_profile(services, upstreams, people.outsider, other, "any-guess")
    async with services.db.read() as conn:
        lab_id, other_id = (await find_workspace(conn, WORKSPACE)).id, (await find_workspace(conn, other)).id
    tokens = EcrTokens(upstreams.moto_url)
    profiles = _profiles(services, tokens)

    lab = await profiles.connection_for(None, lab_id, host)
    assert tokens.exchanges == 1
    theirs = await profiles.connection_for(None, other_id, host)
    assert tokens.exchanges == 2  # its own exchange, not the lab's cached token
    assert theirs.profile != lab.profile
    assert theirs.credentials is not None
    assert theirs.credentials.profile == theirs.profile
    await profiles.connection_for(None, lab_id, host)
    await profiles.connection_for(None, other_id, host)
    assert tokens.exchanges == 2  # each kept per profile and secret

    # Concurrent requests for one uncached key share a single exchange.
    fresh = EcrTokens(upstreams.moto_url)
    await asyncio.gather(
        *(fresh.token("AKIDEXAMPLE", "lab-secret", ECR_ACCOUNT, ECR_REGION, "p") for _ in range(5))
    )
    assert fresh.exchanges == 1


async def test_ecr_host_names_the_account_and_region(services: Services, people: People) -> None:
    store = services.verification.credentials
    host = f"{ECR_ACCOUNT}.dkr.ecr.{ECR_REGION}.amazonaws.com"
    saved = await store.put(
        people.maintainer, WORKSPACE, host, "AKID", "s", settings=ProfileSettings(kind="ecr")
    )
    assert (saved.settings.ecr_account, saved.settings.ecr_region) == (ECR_ACCOUNT, ECR_REGION)
