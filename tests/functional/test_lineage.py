"""Lineage of pushed images (SQLite and PostgreSQL): a version's base is found by layer prefix
among the catalog's versions, its children are listed for whoever sees them, a private base
is never named to someone who cannot see it, and a newer base flags the children."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from dockyard.catalog.tables import image_versions, images, layer_chains, version_lineage
from dockyard.db.engine import Database
from tests.support.catalog import CatalogUser, new_user, problem
from tests.support.cli import Cli
from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api, oci_as
from tests.support.lineage import based_on, children, image, layers, push
from tests.support.oci import unique_repo
from tests.support.servers import RunningRegistry


@pytest.fixture
def people(token_registry: RunningRegistry) -> Iterator[tuple[CatalogUser, CatalogUser, CatalogUser]]:
    """(admin, the base's owner, the app's owner): each pushes to their own workspace."""
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as api:
        first, second = new_user(api, "base"), new_user(api, "app")
    with (
        CatalogUser.connect(token_registry, ADMIN, ADMIN_PASSWORD) as admin,
        CatalogUser.connect(token_registry, first) as base,
        CatalogUser.connect(token_registry, second) as app,
    ):
        yield admin, base, app


def test_a_pushed_image_finds_its_base_by_layer_prefix_and_the_base_lists_its_children(
    token_registry: RunningRegistry, people: tuple[CatalogUser, CatalogUser, CatalogUser]
) -> None:
    admin, owner, user = people
    label = unique_repo("prefix")
    os_layers, app_layers = layers(f"{label} os", f"{label} libs"), layers(f"{label} mid", f"{label} app")
    base, app = f"{owner.name}/alpine", f"{user.name}/app"
    with oci_as(token_registry, owner.name, PASSWORD) as oci:
        pushed = push(oci, owner, base, "3.20", image(os_layers, label))
    owner.api.set_visibility(base, "public")
    with oci_as(token_registry, user.name, PASSWORD) as oci:
        push(oci, user, app, "1", image(os_layers + app_layers, label))
        assert based_on(user, app, "1") == {
            "visible": True, "image": base, "version": "3.20", "digest": pushed["digest"], "layers_added": 2
        }  # fmt: skip
        assert user.version(app, "1")["base_updated"] is False
        assert based_on(user, base, "3.20") is None  # nothing under it
        # The app's image is private: its owner sees it as a child, the base's owner does not.
        assert children(user, base, "3.20") == [(app, "1", False)]
        assert children(owner, base, "3.20") == []
        assert children(admin, base, "3.20") == [(app, "1", False)]

        # A deeper base pushed later is adopted: the app is its child now, 1 layer added.
        mid = f"{user.name}/mid"
        push(oci, user, mid, "1", image([*os_layers, app_layers[0]], label))
    mid_digest = user.version(mid, "1")["digest"]
    expected = {"visible": True, "image": mid, "version": "1", "digest": mid_digest, "layers_added": 1}
    assert based_on(user, app, "1") == expected
    assert children(user, base, "3.20") == [(mid, "1", False)]
    assert children(user, mid, "1") == [(app, "1", False)]
    lineage = user.api.call("GET", f"/images/{app}/versions/1/lineage")
    assert lineage["based_on"]["image"] == mid
    assert lineage["children"]["items"] == []


def test_children_are_paged_in_order(
    token_registry: RunningRegistry, people: tuple[CatalogUser, CatalogUser, CatalogUser]
) -> None:
    _, owner, _ = people
    label = unique_repo("paged")
    stack = layers(f"{label} os")
    base = f"{owner.name}/base"
    with oci_as(token_registry, owner.name, PASSWORD) as oci:
        push(oci, owner, base, "1", image(stack, label))
        for n in range(3):
            push(oci, owner, f"{owner.name}/child", str(n), image(stack + layers(f"{label} {n}"), label))
    first = owner.api.call("GET", f"/images/{base}/versions/1/children", params={"limit": 2})
    assert ([c["version"] for c in first["items"]], first["next_offset"]) == (["0", "1"], 2)
    rest = owner.api.call("GET", f"/images/{base}/versions/1/children", params={"limit": 2, "offset": 2})
    assert ([c["version"] for c in rest["items"]], rest["next_offset"]) == (["2"], None)


def test_a_private_base_is_never_named_to_who_cannot_see_it(
    token_registry: RunningRegistry, people: tuple[CatalogUser, CatalogUser, CatalogUser]
) -> None:
    admin, owner, user = people
    label = unique_repo("private")
    secret_layers = layers(f"{label} secret")
    secret, app = f"{owner.name}/secret", f"{user.name}/app"
    with oci_as(token_registry, owner.name, PASSWORD) as oci:
        push(oci, owner, secret, "1", image(secret_layers, label))  # private (the default)
    with oci_as(token_registry, user.name, PASSWORD) as oci:
        push(oci, user, app, "1", image(secret_layers + layers(f"{label} app"), label))
    assert based_on(user, app, "1") == {
        "visible": False, "image": None, "version": None, "digest": None, "layers_added": None
    }  # fmt: skip
    assert based_on(admin, app, "1") == {
        "visible": True, "image": secret, "version": "1", "digest": admin.version(secret, "1")["digest"],
        "layers_added": 1,
    }  # fmt: skip
    # Once the user sees an image with the same layers (a public copy), that one is named.
    copy = f"{owner.name}/copy"
    with oci_as(token_registry, owner.name, PASSWORD) as oci:
        push(oci, owner, copy, "1", image(secret_layers, label))
    owner.api.set_visibility(copy, "public")
    found = based_on(user, app, "1")
    assert found is not None
    assert (found["visible"], found["image"]) == (True, copy)
    assert user.http.get(f"/images/{secret}/versions/1/children").status_code == 404


def test_a_newer_version_of_the_base_or_its_tag_moved_flags_the_children(
    token_registry: RunningRegistry, people: tuple[CatalogUser, CatalogUser, CatalogUser]
) -> None:
    _, owner, user = people
    label = unique_repo("updated")
    old, new = layers(f"{label} old"), layers(f"{label} new")
    base, app, other = f"{owner.name}/base", f"{user.name}/app", f"{user.name}/other"
    with oci_as(token_registry, owner.name, PASSWORD) as oci:
        first = push(oci, owner, base, "1", image(old, label))
        push(oci, owner, base, "stable", image(old, label + "-tagged"))  # the same layers: no update
    owner.api.set_visibility(base, "public")
    with oci_as(token_registry, user.name, PASSWORD) as oci:
        push(oci, user, app, "1", image(old + layers(f"{label} app"), label))
        push(oci, user, other, "1", image(new + layers(f"{label} other"), label))
    assert user.version(app, "1")["base_updated"] is False
    with oci_as(token_registry, owner.name, PASSWORD) as oci:
        # A child of the base pushed in the base's own image is no newer base.
        push(oci, owner, base, "1-extra", image(old + layers(f"{label} extra"), label))
        assert user.version(app, "1")["base_updated"] is False
        push(oci, owner, base, "2", image(new, label))  # a newer version, other layers
    version = user.version(app, "1")
    assert version["base_updated"] is True
    assert version["based_on"]["digest"] == first["digest"]  # what it was built on
    assert (app, "1", True) in children(user, base, "1")

    # The tag itself moving flags its children too (and they stay listed under it).
    moved = f"{owner.name}/moving"
    with oci_as(token_registry, owner.name, PASSWORD) as oci:
        push(oci, owner, moved, "latest", image(layers(f"{label} m1"), label))
    owner.api.set_visibility(moved, "public")
    child = f"{user.name}/on-moving"
    with oci_as(token_registry, user.name, PASSWORD) as oci:
        push(oci, user, child, "1", image(layers(f"{label} m1", f"{label} c"), label))
    assert user.version(child, "1")["base_updated"] is False
    with oci_as(token_registry, owner.name, PASSWORD) as oci:
        push(oci, owner, moved, "latest", image(layers(f"{label} m2"), label))
    assert user.version(child, "1")["base_updated"] is True
    assert children(user, moved, "latest") == [(child, "1", True)]


def test_the_cli_shows_a_versions_base_and_children(
    token_registry: RunningRegistry, people: tuple[CatalogUser, CatalogUser, CatalogUser], tmp_path: Path
) -> None:
    _, owner, _ = people
    label = unique_repo("cli")
    stack = layers(f"{label} os")
    base, child = f"{owner.name}/base", f"{owner.name}/child"
    with oci_as(token_registry, owner.name, PASSWORD) as oci:
        pushed = push(oci, owner, base, "1", image(stack, label))
        push(oci, owner, child, "2", image(stack + layers(f"{label} a", f"{label} b"), label))
        push(oci, owner, base, "1.1", image(layers(f"{label} newer"), label))
    cli = Cli(token_registry, tmp_path / "cli.toml")
    cli.ok("login", token_registry.url, "-u", owner.name, "--password-stdin", stdin=PASSWORD + "\n")
    shown = cli.run("image", "lineage", f"{child}:2")
    assert shown.returncode == 0, shown.stderr
    assert f"Based on {base}:1@{pushed['digest']}, 2 layers added. Base updated" in " ".join(
        shown.stdout.split()
    )
    assert f"dockyard image rebuild {child}:2" in shown.stderr  # the hint
    listed = cli.ok("image", "lineage", f"{base}:1")
    assert "No base image known" in listed
    assert f"{child}:2" in listed
    assert cli.json("image", "lineage", f"{base}:1")["children"]["items"][0]["image"] == child
    refused = cli.fails("image", "rebuild", f"{child}:2")
    assert "was not built here" in refused.stderr


async def test_the_backfill_records_the_lineage_of_versions_inspected_before_it(
    token_registry: RunningRegistry, people: tuple[CatalogUser, CatalogUser, CatalogUser]
) -> None:
    admin, owner, _ = people
    label = unique_repo("backfill")
    stack = layers(f"{label} os")
    base, child = f"{owner.name}/old-base", f"{owner.name}/old-child"
    with oci_as(token_registry, owner.name, PASSWORD) as oci:
        push(oci, owner, base, "1", image(stack, label))
        push(oci, owner, child, "1", image(stack + layers(f"{label} app"), label))
    # As if both had been inspected before lineage existed: no chains, no base.
    url = token_registry.database_url or f"sqlite+aiosqlite:///{token_registry.data_dir / 'dockyard.db'}"
    db = Database(url)
    try:
        mine = select(image_versions.c.id).join(images, images.c.id == image_versions.c.image_id)
        mine = mine.where(images.c.name.in_([base, child]))
        async with db.write() as conn:
            await conn.execute(delete(version_lineage).where(version_lineage.c.version_id.in_(mine)))
            await conn.execute(delete(layer_chains).where(layer_chains.c.version_id.in_(mine)))
    finally:
        await db.dispose()
    assert based_on(owner, child, "1") is None
    assert "admins" in problem(owner.http.post("/lineage/backfill"), 403)
    admin.api.call("POST", "/lineage/backfill", 202)
    deadline = time.monotonic() + 60
    while (found := based_on(owner, child, "1")) is None:  # the server's worker runs the job
        assert time.monotonic() < deadline, "the backfill did not record the child's base in 60 s"
        await asyncio.sleep(0.2)
    assert (found["image"], found["layers_added"]) == (base, 1)
