"""The catalog for its consumers: the list of images (paginated, filtered, with a source
column), what a user may run (``/runnable``, for a compute node's image dropdown), who sees
what (one setting per image, its repository's visibility, read by the registry's pull rights
for internal and external versions alike), and
storage usage with shared layers counted once per scope.

Internal images are pushed over the Distribution API with token auth (small images with real
gzip layers and known platforms); external ones are registered by reference and never
verified here, so no upstream is needed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.support.catalog import CatalogUser, gzip_layer, image_config, new_user, problem
from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api, oci_as
from tests.support.oci import Blob, oci_manifest
from tests.support.servers import RunningRegistry

SAMTOOLS = "quay.io/biocontainers/samtools:1.19--h50ea8bc_0"


def push(
    registry: RunningRegistry, user: str, repository: str, tag: str, config: Blob, layers: list[Blob]
) -> str:
    """Push an image as ``user`` over the Distribution API; returns the manifest digest."""
    manifest = oci_manifest(config, layers)
    with oci_as(registry, user, PASSWORD) as oci:
        oci.push(repository, manifest, tag)
    return manifest.digest


@dataclass(frozen=True)
class World:
    """Workspace ``main`` (private by default) owned by ``owner`` with ``reader`` and
    ``maintainer`` members, and ``other`` (also the owner's); ``outsider`` belongs to neither.

    main/aligner:v1 (internal, linux/amd64), main/aligner:v2 (internal, linux/arm64/v8),
    main/ext-public (external, public, bench), main/ext-ws (external, registered with the
    deprecated access 'workspace', described as for BAM files), main/ext-private (external,
    access 'private'): both private images, as the access of a new image sets its visibility;
    other/caller:v1 (internal, linux/amd64).
    """

    registry: RunningRegistry
    owner: str
    reader: str
    maintainer: str
    outsider: str
    main: str
    other: str
    digests: dict[str, str]  # "aligner:v1" -> manifest digest

    @property
    def host(self) -> str:
        return self.registry.host


@pytest.fixture(scope="module")
def admin(token_registry: RunningRegistry) -> Iterator[Api]:
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as api:
        yield api


@pytest.fixture(scope="module")
def world(token_registry: RunningRegistry, admin: Api) -> World:
    owner = new_user(admin, "owner")
    reader, maintainer, outsider = (new_user(admin, label) for label in ("reader", "maintainer", "outsider"))
    with CatalogUser.connect(token_registry, owner) as user:
        main, other = user.new_workspace("main"), user.new_workspace("other")
        user.api.set_member(main, reader, "reader")
        user.api.set_member(main, maintainer, "maintainer")
        digests = {
            "aligner:v1": push(
                token_registry, owner, f"{main}/aligner", "v1", image_config("amd64"), [gzip_layer("a1")]
            ),
            "aligner:v2": push(
                token_registry,
                owner,
                f"{main}/aligner",
                "v2",
                image_config("arm64", "v8"),
                [gzip_layer("a2")],
            ),
            "caller:v1": push(
                token_registry, owner, f"{other}/caller", "v1", image_config("amd64"), [gzip_layer("c")]
            ),
        }
        user.register(main, "alpine:3.20", name="ext-public", visibility="public", type="bench")
        user.register(main, SAMTOOLS, name="ext-ws", access="workspace", description="samtools for BAM files")
        user.register(main, "nvcr.io/nvidia/pytorch:24.01-py3", name="ext-private", access="private")
        for image, version in (("aligner", "v1"), ("aligner", "v2")):
            assert user.wait_inspected(f"{main}/{image}", version)["status"] == "available"
        assert user.wait_inspected(f"{other}/caller", "v1")["status"] == "available"
    return World(token_registry, owner, reader, maintainer, outsider, main, other, digests)


@pytest.fixture
def owner(world: World) -> Iterator[CatalogUser]:
    with CatalogUser.connect(world.registry, world.owner) as user:
        yield user


def rows(runnable: list[dict[str, object]]) -> set[tuple[object, ...]]:
    return {(r["image"], r["version"]) for r in runnable}


# --------------------------------------------------------------------------- /runnable


def test_runnable_lists_versions_with_pull_references(world: World, owner: CatalogUser) -> None:
    main, host = world.main, world.host

    found = {(r["image"], r["version"]): r for r in owner.runnable(workspace=main)}

    assert found == {
        (f"{main}/aligner", "v1"): {
            "image": f"{main}/aligner", "version": "v1", "source": "internal", "kind": "tool",
            "status": "available", "platforms": ["linux/amd64"],
            "pull": f"{host}/{main}/aligner@{world.digests['aligner:v1']}",
        },
        (f"{main}/aligner", "v2"): {
            "image": f"{main}/aligner", "version": "v2", "source": "internal", "kind": "tool",
            "status": "available", "platforms": ["linux/arm64/v8"],
            "pull": f"{host}/{main}/aligner@{world.digests['aligner:v2']}",
        },
        # Unverified external versions are offered by their reference (no digest is known yet).
        (f"{main}/ext-public", "3.20"): {
            "image": f"{main}/ext-public", "version": "3.20", "source": "external", "kind": "bench",
            "status": "unverified", "platforms": [], "pull": "docker.io/library/alpine:3.20",
        },
        (f"{main}/ext-ws", "1.19--h50ea8bc_0"): {
            "image": f"{main}/ext-ws", "version": "1.19--h50ea8bc_0", "source": "external", "kind": "tool",
            "status": "unverified", "platforms": [], "pull": SAMTOOLS,
        },
        (f"{main}/ext-private", "24.01-py3"): {
            "image": f"{main}/ext-private", "version": "24.01-py3", "source": "external", "kind": "tool",
            "status": "unverified", "platforms": [], "pull": "nvcr.io/nvidia/pytorch:24.01-py3",
        },
    }  # fmt: skip


def test_runnable_filters_by_workspace_type_status_and_platform(world: World, owner: CatalogUser) -> None:
    main, other = world.main, world.other
    aligner, public = f"{main}/aligner", f"{main}/ext-public"
    externals = {
        (public, "3.20"),
        (f"{main}/ext-ws", "1.19--h50ea8bc_0"),
        (f"{main}/ext-private", "24.01-py3"),
    }

    assert rows(owner.runnable(workspace=other)) == {(f"{other}/caller", "v1")}
    assert rows(owner.runnable(workspace=main, type="bench")) == {(public, "3.20")}
    assert rows(owner.runnable(workspace=main, type="tool")) == {(aligner, "v1"), (aligner, "v2")} | (
        externals - {(public, "3.20")}
    )
    assert rows(owner.runnable(workspace=main, status="available")) == {(aligner, "v1"), (aligner, "v2")}
    assert rows(owner.runnable(workspace=main, status="unverified")) == externals
    assert rows(owner.runnable(workspace=main, status="failed")) == set()
    assert rows(owner.runnable(workspace=main, platform="linux/arm64/v8")) == {(aligner, "v2")}
    assert rows(owner.runnable(workspace=main, platform="linux/arm64")) == {(aligner, "v2")}  # any variant
    assert rows(owner.runnable(workspace=main, platform="linux/arm")) == set()
    assert rows(owner.runnable(platform="linux/amd64")) >= {(aligner, "v1"), (f"{other}/caller", "v1")}
    assert rows(owner.runnable(workspace=main, platform="linux/amd64")) == {(aligner, "v1")}
    assert rows(owner.runnable(workspace=main, type="bench", status="available")) == set()


# --------------------------------------------------------------------------- who sees what


def test_an_outsider_does_not_see_private_internal_images(world: World, owner: CatalogUser) -> None:
    main, aligner = world.main, f"{world.main}/aligner"
    with CatalogUser.connect(world.registry, world.outsider) as outsider:
        for path in (
            f"/images/{aligner}",
            f"/images/{aligner}/versions/v1",
            f"/images/{aligner}/versions/v1/resolve",
            f"/images/{aligner}/events",
            f"/images/{aligner}/usage",
        ):
            assert problem(outsider.http.get(path), 404) == f"image '{aligner}' not found", path
        assert aligner not in outsider.image_names()
        assert outsider.image_names(workspace=main) == [f"{main}/ext-public"]
        assert rows(outsider.runnable(workspace=main)) == {(f"{main}/ext-public", "3.20")}
        assert problem(outsider.http.get(f"/workspaces/{main}/usage"), 404) == (
            f"workspace '{main}': usage is shown to its members"
        )
        # Not a member, so no writes either (the image is as invisible as a missing one).
        patch = outsider.http.patch(f"/images/{aligner}", json={"description": "mine"})
        assert problem(patch, 404) == f"image '{aligner}' not found"

        # Making a repository public makes its image visible and runnable for everyone.
        shared = owner.new_workspace("shared")
        opened = f"{shared}/tool"
        digest = push(world.registry, world.owner, opened, "v1", image_config("amd64"), [gzip_layer("open")])
        owner.wait_inspected(opened, "v1")
        assert problem(outsider.http.get(f"/images/{opened}"), 404) == f"image '{opened}' not found"
        owner.api.set_visibility(opened, "public")
        assert [v["version"] for v in outsider.image(opened)["versions"]] == ["v1"]
        assert outsider.resolve(opened, "v1")["reference"] == f"{world.host}/{opened}@{digest}"
        assert rows(outsider.runnable(workspace=shared)) == {(opened, "v1")}
        anonymous = httpx.get(f"{world.registry.url}/api/v1/images/{opened}", timeout=30)
        assert anonymous.status_code == 200, anonymous.text


def test_members_see_what_their_role_allows(world: World, owner: CatalogUser) -> None:
    main = world.main
    everything = [f"{main}/aligner", f"{main}/ext-private", f"{main}/ext-public", f"{main}/ext-ws"]
    assert owner.image_names(workspace=main) == everything
    with CatalogUser.connect(world.registry, world.maintainer) as maintainer:
        assert maintainer.image_names(workspace=main) == everything
    with CatalogUser.connect(world.registry, world.reader) as reader:
        # Readers pull every private image of their workspace, internal or external.
        assert reader.image_names(workspace=main) == everything
        assert reader.image(f"{main}/ext-private")["visibility"] == "private"
        assert f"{main}/ext-private" in {r["image"] for r in reader.runnable(workspace=main)}
        # Readers do not change the catalog.
        denied = reader.http.patch(f"/images/{main}/aligner", json={"description": "x"})
        assert "developer" in problem(denied, 403)
    anonymous = httpx.get(f"{world.registry.url}/api/v1/images", params={"workspace": main}, timeout=30)
    assert [item["name"] for item in anonymous.json()["items"]] == [f"{main}/ext-public"]


def test_an_images_visibility_is_its_repositorys_and_changes_who_sees_it(
    world: World, owner: CatalogUser
) -> None:
    workspace = owner.new_workspace("access")
    owner.api.set_member(workspace, world.reader, "reader")
    image = owner.register(workspace, SAMTOOLS)["image"]  # private: the workspace's default
    version = f"/images/{image}/versions/1.19--h50ea8bc_0"
    anonymous = f"{world.registry.url}/api/v1/images/{image}"
    with (
        CatalogUser.connect(world.registry, world.reader) as reader,
        CatalogUser.connect(world.registry, world.outsider) as outsider,
    ):
        assert reader.image(image)["visibility"] == "private"
        assert problem(outsider.http.get(f"/images/{image}"), 404) == f"image '{image}' not found"
        # A per-version access is refused unless it is the image's (old clients keep working).
        refused = owner.http.patch(version, json={"access": "public"})
        assert problem(refused, 409) == (
            f"visibility is a setting of the whole image and its repository, not of one version: "
            f"'{image}' and all its versions are private. To make them public, a maintainer changes "
            f"the image's visibility (PUT /api/v1/images/{image}/visibility, "
            f"'dockyard image visibility {image} public', or the image page)"
        )
        same = owner.api.call("PATCH", version, json={"access": "workspace", "regions": ["eu"]})
        assert (same["regions"], "access" in same) == (["eu"], False)
        bad = owner.http.patch(version, json={"access": "everyone"})
        assert problem(bad, 422) == "access is one of public, workspace, private, not 'everyone'"
        assert problem(owner.http.put(f"/images/{image}/visibility", json={"visibility": "all"}), 422) == (
            "unknown visibility 'all'; use 'private' or 'public'"
        )

        # The image page's switch and the repository settings' are the one setting.
        opened = owner.api.call("PUT", f"/images/{image}/visibility", json={"visibility": "public"})
        assert (opened["name"], opened["visibility"]) == (image, "public")
        assert owner.api.call("GET", "/repository", params={"name": image})["visibility"] == "public"
        assert [v["version"] for v in outsider.image(image)["versions"]] == ["1.19--h50ea8bc_0"]
        assert httpx.get(anonymous, timeout=30).json()["visibility"] == "public"
        owner.api.set_visibility(image, "private")
        assert problem(outsider.http.get(f"/images/{image}"), 404) == f"image '{image}' not found"
        assert httpx.get(anonymous, timeout=30).status_code == 404
    modified = [
        (e["version"], e["detail"]["changes"]) for e in owner.events(image) if e["kind"] == "modified"
    ]
    assert modified == [
        ("1.19--h50ea8bc_0", {"regions": {"before": [], "after": ["eu"]}}),
        (None, {"visibility": {"before": "private", "after": "public"}}),
        (None, {"visibility": {"before": "public", "after": "private"}}),
    ]


def test_the_visibility_is_the_maintainers_to_change(world: World, owner: CatalogUser, admin: Api) -> None:
    workspace = owner.new_workspace("dev-access")
    developer = new_user(admin, "developer")
    owner.api.set_member(workspace, developer, "developer")
    image = owner.register(workspace, "quay.io/lab/tool:1")["image"]
    with CatalogUser.connect(world.registry, developer) as dev:
        # A developer registers a new image with the visibility they choose,
        made = dev.register(workspace, "quay.io/lab/open:1", visibility="public")["image"]
        assert dev.image(made)["visibility"] == "public"
        # but changes no image's afterwards, as no repository's.
        denied = dev.http.put(f"/images/{image}/visibility", json={"visibility": "public"})
        assert "maintainer" in problem(denied, 403)
        added = dev.http.post(
            f"/images/{image}/versions", json={"reference": "quay.io/lab/tool:2", "visibility": "public"}
        )
        assert problem(added, 409).startswith("visibility is a setting of the whole image")
    assert [v["version"] for v in owner.image(image)["versions"]] == ["1"]
    assert owner.image(image)["visibility"] == "private"


BENCH_ONLY = (
    "cluster_compatibility is for bench images only; a tool image cannot list clusters (hpc-a): "
    "set type to 'bench', or clear cluster_compatibility ([])"
)


def test_cluster_compatibility_is_refused_on_tool_images(owner: CatalogUser) -> None:
    workspace = owner.new_workspace("clusters")
    for fields in (
        {"cluster_compatibility": ["hpc-a"]},
        {"type": "tool", "cluster_compatibility": ["hpc-a"]},
    ):
        refused = owner.http.post("/images", json={"workspace": workspace, "reference": SAMTOOLS, **fields})
        assert problem(refused, 422) == BENCH_ONLY
    assert owner.images(workspace=workspace)["total"] == 0

    tool = owner.register(workspace, SAMTOOLS)
    path = f"/images/{tool['image']}/versions/{tool['version']}"
    assert problem(owner.http.patch(path, json={"cluster_compatibility": ["hpc-a"]}), 422) == BENCH_ONLY
    assert owner.version(tool["image"], tool["version"])["cluster_compatibility"] == []
    refused = owner.http.post(
        f"/images/{tool['image']}/versions",
        json={"reference": "quay.io/biocontainers/samtools:1.20", "cluster_compatibility": ["hpc-a"]},
    )
    assert problem(refused, 422) == BENCH_ONLY

    bench = owner.api.call("PATCH", path, json={"type": "bench", "cluster_compatibility": ["hpc-a", "hpc-b"]})
    assert (bench["kind"], bench["cluster_compatibility"]) == ("bench", ["hpc-a", "hpc-b"])
    # Back to a tool only with the clusters cleared.
    back = owner.http.patch(path, json={"type": "tool"})
    assert "cluster_compatibility is for bench images only" in problem(back, 422)
    assert owner.version(tool["image"], tool["version"])["kind"] == "bench"
    tool_again = owner.api.call("PATCH", path, json={"type": "tool", "cluster_compatibility": []})
    assert (tool_again["kind"], tool_again["cluster_compatibility"]) == ("tool", [])
    added = owner.add_version(
        tool["image"], "quay.io/biocontainers/samtools:1.20", type="bench", cluster_compatibility=["hpc-a"]
    )
    assert (added["kind"], added["cluster_compatibility"]) == ("bench", ["hpc-a"])


# --------------------------------------------------------------------------- the list


def test_the_image_list_is_paginated(world: World, owner: CatalogUser) -> None:
    main = world.main
    names = [f"{main}/aligner", f"{main}/ext-private", f"{main}/ext-public", f"{main}/ext-ws"]

    pages = [owner.images(workspace=main, limit=3, offset=offset) for offset in (0, 3, 6)]

    assert [(p["total"], p["limit"], p["offset"]) for p in pages] == [(4, 3, 0), (4, 3, 3), (4, 3, 6)]
    assert [[item["name"] for item in p["items"]] for p in pages] == [names[:3], names[3:], []]
    for limit in (0, 501):
        assert "limit" in problem(owner.http.get("/images", params={"limit": limit}), 422)
    assert "offset" in problem(owner.http.get("/images", params={"offset": -1}), 422)


def test_the_image_list_has_a_source_column_and_filters(world: World, owner: CatalogUser) -> None:
    main = world.main
    internal = owner.images(workspace=main, source="internal")
    assert [(i["name"], i["source"]) for i in internal["items"]] == [(f"{main}/aligner", "internal")]
    external = owner.images(workspace=main, source="external")
    assert external["total"] == 3
    assert {i["source"] for i in external["items"]} == {"external"}
    assert {v["source"] for i in external["items"] for v in i["versions"]} == {"external"}
    assert [i["name"] for i in owner.images(workspace=main, q="BAM")["items"]] == [f"{main}/ext-ws"]
    assert [i["name"] for i in owner.images(workspace=main, type="bench")["items"]] == [f"{main}/ext-public"]
    arm = owner.images(workspace=main, platform="linux/arm64/v8")["items"]
    assert [(i["name"], [v["version"] for v in i["versions"]]) for i in arm] == [(f"{main}/aligner", ["v2"])]
    assert owner.images(workspace=main, status="unverified")["total"] == 3

    # An image with internal and external versions is "mixed"; a source filter keeps its matching versions.
    workspace = owner.new_workspace("mixed")
    image = f"{workspace}/tool"
    push(world.registry, world.owner, image, "v1", image_config("amd64"), [gzip_layer("mixed")])
    owner.wait_inspected(image, "v1")
    owner.add_version(image, "alpine:3.20", version="upstream")
    assert owner.image(image)["source"] == "mixed"
    (only_external,) = owner.images(workspace=workspace, source="external")["items"]
    assert (only_external["source"], [v["version"] for v in only_external["versions"]]) == (
        "external",
        ["upstream"],
    )
    (only_internal,) = owner.images(workspace=workspace, source="internal")["items"]
    assert (only_internal["source"], [v["version"] for v in only_internal["versions"]]) == (
        "internal",
        ["v1"],
    )


# --------------------------------------------------------------------------- storage usage


def test_storage_usage_counts_a_shared_layer_once_per_scope(world: World, owner: CatalogUser) -> None:
    workspace = owner.new_workspace("usage")
    shared, only_one, only_two = gzip_layer("shared", 900), gzip_layer("one", 300), gzip_layer("two", 500)
    c1, c2, c3 = (image_config("amd64", label=label) for label in ("one-v1", "one-v2", "two-v1"))
    one, two = f"{workspace}/one", f"{workspace}/two"
    push(world.registry, world.owner, one, "v1", c1, [shared, only_one])
    push(world.registry, world.owner, one, "v2", c2, [shared])  # a second version sharing the layer
    push(world.registry, world.owner, two, "v1", c3, [shared, only_two])  # another image sharing it
    for image, version in ((one, "v1"), (one, "v2"), (two, "v1")):
        owner.wait_inspected(image, version)
    owner.register(workspace, SAMTOOLS)  # external: stored elsewhere, counts nothing

    v1 = c1.size + shared.size + only_one.size
    v2 = c2.size + shared.size
    assert owner.version(one, "v1")["compressed_size"] == v1
    assert owner.api.call("GET", f"/images/{one}/usage") == {
        "image": one,
        "bytes": c1.size + c2.size + shared.size + only_one.size,  # < v1 + v2
        "versions": [{"version": "v1", "bytes": v1}, {"version": "v2", "bytes": v2}],
    }
    two_bytes = c3.size + shared.size + only_two.size
    assert owner.api.call("GET", f"/images/{two}/usage")["bytes"] == two_bytes
    usage = owner.api.call("GET", f"/workspaces/{workspace}/usage")
    assert usage["workspace"] == workspace
    assert usage["bytes"] == c1.size + c2.size + c3.size + shared.size + only_one.size + only_two.size
    assert [(i["image"], i["bytes"]) for i in usage["images"]] == [
        (one, c1.size + c2.size + shared.size + only_one.size),
        (two, two_bytes),
    ]
