"""The flat version list for tables (``GET /api/v1/versions``): one row per version the caller
may see, with its image's workspace and description; filtered, sorted and paged by the server
(on SQLite and PostgreSQL), with pages that stay stable; and the image list's answers beside it.

Internal versions are pushed over the Distribution API with token auth (their platforms come
from the image config); external ones are registered by reference and never verified here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support.catalog import CatalogUser, gzip_layer, image_config, new_user, problem
from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api, oci_as
from tests.support.oci import Blob, oci_manifest
from tests.support.servers import RunningRegistry

VERSION_FIELDS = {
    "image",
    "version",
    "source",
    "kind",
    "cluster_compatibility",
    "regions",
    "status",
    "status_reason",
    "external_reference",
    "upstream",
    "digest",
    "media_type",
    "compressed_size",
    "uncompressed_size",
    "platforms",
    "has_amd64",
    "warnings",
    "checked_at",
    "created_at",
    "created_by",
    "updated_at",
    "signatures",
    "imported",
    "marks",
}
SORTS = ("name", "version", "source", "type", "status", "size", "modified")
Row = tuple[str, str]


def push(registry: RunningRegistry, user: str, repository: str, tag: str, config: Blob, layer: str) -> None:
    with oci_as(registry, user, PASSWORD) as oci:
        oci.push(repository, oci_manifest(config, [gzip_layer(layer)]), tag)


@dataclass(frozen=True)
class Table:
    """Workspace ``lab`` (owner ``owner``, ``reader`` a reader) and ``other`` (also the owner's):

    lab/aligner:v1 (internal, linux/amd64), lab/aligner:v2 (internal, linux/arm64/v8),
    lab/bam-tools 1.19 (external, described "Tools for BAM files"), lab/bam-tools 1.20
    (external, bench, added with the image's own access 'private'): a private image;
    lab/public-tool 3.20 (external, a public image, described "100% open"), other/caller:v1
    (internal, linux/arm/v7).
    """

    registry: RunningRegistry
    owner: str
    reader: str
    outsider: str
    lab: str
    other: str

    def rows(self, *names: str) -> list[Row]:
        return [
            (f"{self.lab if not n.startswith('caller') else self.other}/{n.split(':')[0]}", n.split(":")[1])
            for n in names
        ]


@pytest.fixture(scope="module")
def admin(token_registry: RunningRegistry) -> Iterator[Api]:
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as api:
        yield api


@pytest.fixture(scope="module")
def table(token_registry: RunningRegistry, admin: Api) -> Table:
    owner, reader, outsider = (new_user(admin, label) for label in ("owner", "reader", "outsider"))
    with CatalogUser.connect(token_registry, owner) as user:
        lab, other = user.new_workspace("lab"), user.new_workspace("other")
        user.api.set_member(lab, reader, "reader")
        push(token_registry, owner, f"{lab}/aligner", "v1", image_config("amd64"), "a1")
        push(token_registry, owner, f"{lab}/aligner", "v2", image_config("arm64", "v8"), "a2")
        push(token_registry, owner, f"{other}/caller", "v1", image_config("arm", "v7"), "c1")
        samtools = "quay.io/biocontainers/samtools"
        user.register(
            lab, f"{samtools}:1.19", name="bam-tools", version="1.19", description="Tools for BAM files"
        )
        user.add_version(
            f"{lab}/bam-tools", f"{samtools}:1.20", version="1.20", access="private", type="bench"
        )
        user.register(lab, "alpine:3.20", name="public-tool", visibility="public", description="100% open")
        for image, version in (("aligner", "v1"), ("aligner", "v2")):
            assert user.wait_inspected(f"{lab}/{image}", version)["status"] == "available"
        assert user.wait_inspected(f"{other}/caller", "v1")["status"] == "available"
    return Table(token_registry, owner, reader, outsider, lab, other)


@pytest.fixture
def owner(table: Table) -> Iterator[CatalogUser]:
    with CatalogUser.connect(table.registry, table.owner) as user:
        yield user


def versions(user: CatalogUser, **params: Any) -> dict[str, Any]:
    result: dict[str, Any] = user.api.call("GET", "/versions", params=params)
    return result


def listed(user: CatalogUser, **params: Any) -> list[Row]:
    """(image, version) of every row, in the order listed, for the two test workspaces."""
    return [(row["image"], row["version"]) for row in versions(user, limit=500, **params)["items"]]


def ours(table: Table, rows: list[Row]) -> list[Row]:
    return [row for row in rows if row[0].split("/")[0] in (table.lab, table.other)]


ALL = ("aligner:v1", "aligner:v2", "bam-tools:1.19", "bam-tools:1.20", "caller:v1", "public-tool:3.20")


def test_one_row_per_version_with_its_workspace_and_description(table: Table, owner: CatalogUser) -> None:
    page = versions(owner, workspace=table.lab)

    assert (page["total"], page["total_exact"], page["limit"], page["offset"]) == (5, True, 50, 0)
    rows = {(row["image"], row["version"]): row for row in page["items"]}
    assert list(rows) == table.rows(*(n for n in ALL if not n.startswith("caller")))
    for row in page["items"]:
        assert set(row) == VERSION_FIELDS | {"workspace", "description", "visibility"}
        assert row["workspace"] == table.lab
        assert row["visibility"] == owner.image(row["image"])["visibility"]
        # The row is the version as GET /images/{name}/versions/{version} shows it.
        one = owner.version(row["image"], row["version"])  # the one version: with its base too
        assert set(one) == VERSION_FIELDS | {"based_on", "base_updated"}
        assert {k: row[k] for k in VERSION_FIELDS} == {k: one[k] for k in VERSION_FIELDS}
    assert rows[(f"{table.lab}/bam-tools", "1.19")]["description"] == "Tools for BAM files"
    assert rows[(f"{table.lab}/aligner", "v2")]["platforms"] == ["linux/arm64/v8"]


def test_each_caller_sees_the_rows_the_image_views_show(table: Table, owner: CatalogUser, admin: Api) -> None:
    lab_and_other = {"workspace": table.lab}
    with (
        CatalogUser.connect(table.registry, table.reader) as reader,
        CatalogUser.connect(table.registry, table.outsider) as outsider,
    ):
        # Readers pull every image of their workspace, internal or external versions alike.
        assert listed(reader, **lab_and_other) == table.rows(
            "aligner:v1", "aligner:v2", "bam-tools:1.19", "bam-tools:1.20", "public-tool:3.20"
        )
        assert listed(outsider, **lab_and_other) == table.rows("public-tool:3.20")
        assert ours(table, listed(outsider)) == table.rows("public-tool:3.20")
        for user in (owner, reader, outsider):
            # Every row is in the image list's view of its image, and the other way round.
            images = user.images(workspace=table.lab, limit=500)["items"]
            from_images = [(image["name"], v["version"]) for image in images for v in image["versions"]]
            assert listed(user, **lab_and_other) == from_images
    anonymous = httpx.get(f"{table.registry.url}/api/v1/versions", params=lab_and_other, timeout=30)
    assert [(r["image"], r["version"]) for r in anonymous.json()["items"]] == table.rows("public-tool:3.20")
    everything = admin.call("GET", "/versions", params={"limit": 500})
    assert set(table.rows(*ALL)) <= {(r["image"], r["version"]) for r in everything["items"]}


def test_filters(table: Table, owner: CatalogUser) -> None:
    lab, other = table.lab, table.other
    assert ours(table, listed(owner, source="internal")) == table.rows(
        "aligner:v1", "aligner:v2", "caller:v1"
    )
    assert listed(owner, workspace=other) == table.rows("caller:v1")
    assert ours(table, listed(owner, type="bench")) == table.rows("bam-tools:1.20")
    assert listed(owner, workspace=lab, status="unverified") == table.rows(
        "bam-tools:1.19", "bam-tools:1.20", "public-tool:3.20"
    )
    # A platform matches itself and its variants; an architecture is not a prefix of another.
    assert ours(table, listed(owner, platform="linux/arm64")) == table.rows("aligner:v2")
    assert ours(table, listed(owner, platform="linux/arm64/v8")) == table.rows("aligner:v2")
    assert ours(table, listed(owner, platform="linux/arm")) == table.rows("caller:v1")
    assert ours(table, listed(owner, platform="linux/arm64/v")) == []
    assert ours(table, listed(owner, platform="Linux/AMD64")) == []
    # Text in the image's name or description, any case; % and _ are themselves.
    assert ours(table, listed(owner, q="bam FILES")) == table.rows("bam-tools:1.19", "bam-tools:1.20")
    assert ours(table, listed(owner, q="ALIGNER")) == table.rows("aligner:v1", "aligner:v2")
    assert ours(table, listed(owner, q="100%")) == table.rows("public-tool:3.20")
    assert ours(table, listed(owner, q="bam_tools")) == []
    # Empty values filter nothing; filters combine.
    assert ours(table, listed(owner, workspace="", q="", status="")) == sorted(table.rows(*ALL))
    combined = versions(owner, workspace=lab, source="external", status="unverified", q="tools")
    assert (combined["total"], [r["version"] for r in combined["items"]]) == (2, ["1.19", "1.20"])
    assert versions(owner, workspace="no-such-workspace")["total"] == 0


def test_sorting_is_stable_and_descending_is_the_reverse(table: Table, owner: CatalogUser) -> None:
    scope = {"workspace": table.lab}
    by_name = listed(owner, **scope)
    assert by_name == sorted(by_name)
    for sort in SORTS:
        ascending = listed(owner, sort=sort, **scope)
        assert sorted(ascending) == sorted(by_name), sort
        assert listed(owner, sort=sort, order="desc", **scope) == ascending[::-1], sort
        # Any page size gives the same rows in the same order.
        for limit in (1, 2, 3):
            pages = [
                versions(owner, sort=sort, limit=limit, offset=offset, **scope)["items"]
                for offset in range(0, 5, limit)
            ]
            assert [(r["image"], r["version"]) for page in pages for r in page] == ascending, (sort, limit)
    rows = versions(owner, sort="size", limit=500, **scope)["items"]
    sizes = [r["compressed_size"] for r in rows]
    known = [s for s in sizes if s is not None]
    assert sizes == sorted(known) + [None] * (len(sizes) - len(known))  # unknown sizes after the known
    by_type = listed(owner, sort="type", **scope)
    assert by_type == table.rows(
        "bam-tools:1.20", "aligner:v1", "aligner:v2", "bam-tools:1.19", "public-tool:3.20"
    )
    modified = [r["updated_at"] for r in versions(owner, sort="modified", **scope)["items"]]
    assert modified == sorted(modified)


def test_bad_parameters_are_refused(owner: CatalogUser) -> None:
    for params, field in (
        ({"sort": "size; drop table images"}, "sort"),
        ({"sort": "compressed_size"}, "sort"),
        ({"order": "up"}, "order"),
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"offset": -1}, "offset"),
        ({"offset": 2**31}, "offset"),
    ):
        assert field in problem(owner.http.get("/versions", params=params), 422), params
    assert versions(owner, limit=500, offset=2**31 - 1)["items"] == []
