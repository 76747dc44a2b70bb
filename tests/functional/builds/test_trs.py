"""The GA4GH Tool Registry Service (``/ga4gh/trs/v2``) as a TRS client uses it, against a real
``dockyard serve`` on SQLite and PostgreSQL: every body is validated against the published
TRS v2.0.1 OpenAPI document (tests/support/trs).

The module's team has two tool images: ``greeter``, built here by buildah from a Dockerfile and
made public, and ``busybox``, pushed by skopeo into the workspace, private. Anonymous callers
and users outside the workspace see only the public one; a member sees both, with HTTP Basic
or a Bearer token.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from dockyard.builds.definitions import DefinitionInput
from dockyard.builds.views import RunView
from tests.support.builds import Team, in_process
from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api, TokenAuth, unique
from tests.support.servers import RunningRegistry
from tests.support.trs import TrsClient, check, check_list_headers, tool_path

pytestmark = pytest.mark.clients


@dataclass(frozen=True)
class Built:
    tool: str  # the public image built here
    private: str  # the workspace's private base image
    digest: str
    dockerfile: str


async def _build(server: RunningRegistry, team: Team, folder: Path, dockerfile: str) -> RunView:
    async with in_process(server, folder) as builds:
        owner = await builds.subject(team.owner)
        definition = await builds.definitions.create(
            owner, team.workspace, "greeter", DefinitionInput(dockerfile=dockerfile)
        )
        return await builds.build(owner, definition.name)


@pytest.fixture(scope="module")
def built(server: RunningRegistry, team: Team, tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The team's greeter, built here by buildah and made public, described."""
    dockerfile = f'FROM {team.base}\nLABEL org.opencontainers.image.title=greeter\nCMD ["echo", "hello"]\n'
    run = asyncio.run(_build(server, team, tmp_path_factory.mktemp("trs-builds"), dockerfile))
    assert run.status == "succeeded", run
    assert run.digest, run
    tool = f"{team.workspace}/greeter"
    with Api.connect(server, team.owner, PASSWORD) as api:
        api.set_visibility(tool, "public")
        api.call("PATCH", f"/images/{tool}", json={"description": "says hello, built here"})
    return Built(tool, f"{team.workspace}/busybox", run.digest, dockerfile)


@pytest.fixture
def anonymous(server: RunningRegistry) -> Iterator[TrsClient]:
    with TrsClient(server.url) as client:
        yield client


def as_user(server: RunningRegistry, username: str) -> TrsClient:
    return TrsClient(server.url, auth=(username, PASSWORD))


def test_service_info_and_tool_classes(anonymous: TrsClient) -> None:
    info = anonymous.get("/service-info", "ServiceInfo")
    assert info["type"] == {"group": "org.ga4gh", "artifact": "trs", "version": "2.0.1"}
    assert info["organization"]["url"].startswith("http://")
    classes = anonymous.get("/toolClasses", "ToolClassList")
    assert [c["id"] for c in classes] == ["CommandLineTool"]


def test_anonymous_lists_and_reads_the_public_tool_pinned_by_digest(
    server: RunningRegistry, built: Built, anonymous: TrsClient
) -> None:
    assert anonymous.tool_ids() == [built.tool]
    tool = anonymous.get(tool_path(built.tool), "Tool")
    assert (tool["id"], tool["organization"], tool["name"]) == (
        built.tool,
        built.tool.split("/")[0],
        "greeter",
    )
    assert tool["description"] == "says hello, built here"
    assert tool["url"] == f"{server.url}/ga4gh/trs/v2/tools/{built.tool.replace('/', '%2F')}"
    (version,) = tool["versions"]
    assert version["id"] == "latest"
    assert version["descriptor_type"] == []
    assert version["containerfile"] is True
    (image,) = version["images"]
    assert image["image_name"] == f"{server.host}/{built.tool}@{built.digest}"
    assert image["registry_host"] == server.host
    assert image["image_type"] == "Docker"
    assert image["checksum"] == [{"checksum": built.digest.removeprefix("sha256:"), "type": "sha256"}]
    assert isinstance(image["size"], int)
    assert image["size"] > 0
    assert anonymous.get(f"{tool_path(built.tool)}/versions", "ToolVersionList") == tool["versions"]
    assert anonymous.get(f"{tool_path(built.tool)}/versions/latest", "ToolVersion") == version
    # The urls a client follows (the tool id's '/' encoded) answer the same documents.
    assert check(anonymous.http.get(tool["url"]).json(), "Tool") == tool
    assert check(anonymous.http.get(version["url"]).json(), "ToolVersion") == version
    # The image named is the one the registry serves anonymously under that digest.
    manifest = httpx.head(
        f"{server.url}/v2/{built.tool}/manifests/{built.digest}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        auth=TokenAuth(),
    )
    assert manifest.status_code == 200
    assert manifest.headers["docker-content-digest"] == built.digest


def test_the_containerfile_of_a_built_here_version_is_its_dockerfile(
    built: Built, anonymous: TrsClient
) -> None:
    (wrapper,) = anonymous.get(f"{tool_path(built.tool)}/versions/latest/containerfile", "FileWrapperList")
    assert wrapper["content"] == built.dockerfile
    assert wrapper["checksum"] == [
        {"checksum": hashlib.sha256(built.dockerfile.encode()).hexdigest(), "type": "sha256"}
    ]


def test_descriptor_endpoints_say_there_is_no_descriptor(built: Built, anonymous: TrsClient) -> None:
    version = f"{tool_path(built.tool)}/versions/latest"
    for path in (
        "CWL/descriptor",
        "PLAIN_WDL/descriptor",
        "CWL/descriptor/main.cwl",
        "NFL/tests",
        "CWL/files",
    ):
        assert "without descriptors" in anonymous.error(f"{version}/{path}", 404)
    assert "has no version 'nope'" in anonymous.error(f"{tool_path(built.tool)}/versions/nope", 404)
    assert "not found" in anonymous.error("/tools/nobody/nothing", 404)
    assert "not found" in anonymous.error("/tools/lab%00x", 404)  # never a 500 (PostgreSQL refuses NUL)
    assert "not found" in anonymous.error(f"/tools/{'x' * 300}", 404)
    # A line break (%0A) anywhere still reaches the TRS endpoint, not the web UI's plain 404.
    assert "not found" in anonymous.error("/tools/lab%0Ax", 404)
    assert "without descriptors" in anonymous.error(f"{version}/CWL%0A/files", 404)


def test_a_private_tool_is_hidden_from_anonymous_and_outsiders(
    server: RunningRegistry, team: Team, built: Built, anonymous: TrsClient
) -> None:
    with as_user(server, team.outsider) as outsider:
        for client in (anonymous, outsider):
            assert built.private not in client.tool_ids()
            assert client.tool_ids(organization=team.workspace) == [built.tool]
            # Nor is it counted: one page of one tool, where a member has two (test_paging_headers).
            page = client.tools(limit=1, organization=team.workspace)
            assert [t["id"] for t in page.json()] == [built.tool]
            assert "next_page" not in page.headers
            assert page.headers["x-total-count"] == "1"
            assert "offset=0" in page.headers["last_page"]
            assert client.tool_ids(offset=1, organization=team.workspace) == []
            for path in (
                "",
                "/versions",
                "/versions/v1",
                "/versions/v1/containerfile",
                "/versions/v1/CWL/descriptor",
            ):
                message = client.error(f"{tool_path(built.private)}{path}", 404)
                assert "not found" in message
                assert "descriptor" not in message


def test_a_member_sees_the_private_tool_with_basic_or_bearer(
    server: RunningRegistry, team: Team, built: Built
) -> None:
    with Api.connect(server, team.reader, PASSWORD) as api:
        _, token = api.personal_token(["pull"])
    with as_user(server, team.reader) as basic, TrsClient(server.url, token=token) as bearer:
        for client in (basic, bearer):
            assert client.tool_ids() == sorted([built.tool, built.private])
            version = client.get(f"{tool_path(built.private)}/versions/v1", "ToolVersion")
            assert version["containerfile"] is False  # pushed, not built here
            assert "not built by Dockyard" in client.error(
                f"{tool_path(built.private)}/versions/v1/containerfile", 404
            )


def test_paging_headers_walk_the_list(server: RunningRegistry, team: Team, built: Built) -> None:
    with as_user(server, team.reader) as reader:
        first = reader.tools(limit=1, organization=team.workspace)
        assert [t["id"] for t in first.json()] == [built.private]
        assert (first.headers["current_offset"], first.headers["current_limit"]) == ("0", "1")
        following = check_list_headers(httpx.get(first.headers["next_page"], auth=(team.reader, PASSWORD)))
        assert [t["id"] for t in check(following.json(), "ToolList")] == [built.tool]
        assert following.headers["current_offset"] == "1"
        assert "next_page" not in following.headers
        assert first.headers["x-total-count"] == following.headers["x-total-count"] == "2"
        assert following.headers["last_page"] == first.headers["last_page"]
        assert "offset=1" in first.headers["last_page"]
        assert f"organization={team.workspace}" in first.headers["last_page"]
        assert reader.tool_ids(offset=5) == []


def test_filters(server: RunningRegistry, team: Team, built: Built) -> None:
    with as_user(server, team.reader) as reader:
        assert reader.tool_ids(toolname="GREET") == [built.tool]
        assert reader.tool_ids(name="busy") == [built.private]
        assert reader.tool_ids(description="built here") == [built.tool]
        assert reader.tool_ids(id=built.private) == [built.private]
        assert reader.tool_ids(toolname=team.workspace[:4]) == []  # the workspace is not the tool's name
        assert reader.tool_ids(name="%") == []
        assert reader.tool_ids(name="_") == []
        assert reader.tool_ids(checker="true") == []
        assert reader.tool_ids(checker="false", toolClass="CommandLineTool") == sorted(
            [built.tool, built.private]
        )
        assert reader.tool_ids(toolClass="Workflow") == []
        assert reader.tool_ids(alias="x") == []
        assert reader.tool_ids(descriptorType="CWL") == []  # no tool here has a descriptor


@pytest.mark.parametrize(
    ("params", "word"),
    [
        ({"limit": "nan"}, "limit"),
        ({"limit": "inf"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "1e3"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"offset": "Infinity"}, "offset"),
        ({"offset": str(2**31)}, "offset"),
        ({"offset": "9" * 400}, "offset"),
        ({"checker": "maybe"}, "checker"),
        ({"name": "x" * 256}, "name"),
        ({"description": "a\x00b"}, "description"),
    ],
)
def test_bad_values_are_trs_errors(anonymous: TrsClient, params: dict[str, str], word: str) -> None:
    assert word in anonymous.error("/tools", 400, **params)


def test_bad_credentials_are_refused(server: RunningRegistry) -> None:
    with (
        TrsClient(server.url, auth=(unique("nobody"), "wrong")) as wrong,
        TrsClient(server.url, token="dy_nonsense") as bad,
    ):
        for client in (wrong, bad):
            response = client.http.get("/tools")
            assert response.status_code == 401
            assert check(response.json(), "Error")["code"] == 401
    with TrsClient(server.url, auth=(ADMIN, ADMIN_PASSWORD)) as admin:
        assert admin.get("/nowhere", "Error", 404)["code"] == 404
