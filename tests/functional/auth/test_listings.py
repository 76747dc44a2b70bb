"""What lists show to whom: ``GET /api/v1/workspaces`` names a user's personal workspace (and
so the user) only to those who may see it, and ``/v2/_catalog`` lists to everyone, anonymous
included, the repositories they may pull, paged with ``n`` and ``last``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api, oci_as, unique
from tests.support.oci import OciClient, next_link, oci_manifest
from tests.support.servers import RunningRegistry


@dataclass
class World:
    alice: str  # a user with only private repositories
    bob: str  # a user with a public repository and a private one
    carol: str  # a user with no repository, member (reader) of the lab
    lab: str  # an organisation (bob owns it) with a private repository
    repositories: dict[str, str]  # label -> name


@pytest.fixture(scope="module")
def world(token_registry: RunningRegistry) -> World:
    alice, bob, carol, lab = unique("alice"), unique("bob"), unique("carol"), unique("lab")
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as admin:
        for user in (alice, bob, carol):
            admin.create_user(user)
    repositories = {
        "alice-private": f"{alice}/secret",
        "bob-public": f"{bob}/shared",
        "bob-private": f"{bob}/hidden",
        "lab-private": f"{lab}/pipeline",
    }
    with Api.connect(token_registry, bob, PASSWORD) as api:
        api.create_workspace(lab)
        api.set_member(lab, carol, "reader")
    for label, name in repositories.items():
        owner = alice if label.startswith("alice") else bob
        with oci_as(token_registry, owner, PASSWORD) as oci:
            assert oci.push(name, oci_manifest(), "v1").status_code == 201
    with Api.connect(token_registry, bob, PASSWORD) as api:
        api.set_visibility(repositories["bob-public"], "public")
    return World(alice, bob, carol, lab, repositories)


def workspaces(registry: RunningRegistry, who: str | None, **params: Any) -> dict[str, str | None]:
    """name -> my_role, from GET /api/v1/workspaces as ``who`` (None: anonymous)."""
    auth = None if who is None else (who, ADMIN_PASSWORD if who == ADMIN else PASSWORD)
    response = httpx.get(f"{registry.url}/api/v1/workspaces", params=params, auth=auth, timeout=30)
    assert response.status_code == 200, response.text
    return {ws["name"]: ws["my_role"] for ws in response.json()}


def test_personal_workspaces_are_listed_only_to_who_may_see_them(
    token_registry: RunningRegistry, world: World
) -> None:
    ours = {world.alice, world.bob, world.carol, world.lab}

    def listed(who: str | None, **params: Any) -> dict[str, str | None]:
        return {
            name: role for name, role in workspaces(token_registry, who, **params).items() if name in ours
        }

    # Anonymous: the organisation, and bob's workspace, which a public repository names
    # anyway; not alice or carol (users without anything public).
    assert listed(None) == {world.lab: None, world.bob: None}
    assert listed(world.carol) == {world.lab: "reader", world.bob: None, world.carol: "owner"}
    assert listed(world.alice) == {world.lab: None, world.bob: None, world.alice: "owner"}
    assert listed(world.carol, mine="true") == {world.lab: "reader", world.carol: "owner"}
    assert listed(ADMIN) == dict.fromkeys(ours, "owner")
    assert listed(ADMIN, mine="true") == {}


@pytest.fixture
def admin_oci(token_registry: RunningRegistry) -> Iterator[OciClient]:
    with oci_as(token_registry, ADMIN, ADMIN_PASSWORD) as oci:
        yield oci


def catalog(registry: RunningRegistry, who: str | None, world: World, page: int | None = None) -> list[str]:
    """The catalog as ``who`` sees it, narrowed to this world's repositories; with ``page``,
    followed page by page through the Link headers."""
    ours = set(world.repositories.values())
    with oci_as(registry, who, None if who is None else PASSWORD) as oci:
        if page is None:
            response = oci.catalog()
            assert response.status_code == 200, response.text
            names: list[str] = response.json()["repositories"]
        else:
            names = oci.all_repositories(page_size=page)
    return [name for name in names if name in ours]


def test_the_catalog_lists_what_each_caller_may_pull(token_registry: RunningRegistry, world: World) -> None:
    repos = world.repositories
    assert catalog(token_registry, None, world) == [repos["bob-public"]]
    assert catalog(token_registry, world.alice, world) == sorted(
        [repos["alice-private"], repos["bob-public"]]
    )
    assert catalog(token_registry, world.carol, world) == sorted([repos["bob-public"], repos["lab-private"]])
    assert catalog(token_registry, world.bob, world) == sorted(
        [repos["bob-public"], repos["bob-private"], repos["lab-private"]]
    )


def test_the_catalog_pages_over_what_the_caller_may_pull(
    token_registry: RunningRegistry, world: World, admin_oci: OciClient
) -> None:
    for who in (None, world.carol):
        with oci_as(token_registry, who, None if who is None else PASSWORD) as oci:
            whole = oci.catalog().json()["repositories"]
            assert whole == sorted(whole)
            # Pages of n after last, linked: together exactly the unpaged list, in order.
            for size in (1, 2):
                assert oci.all_repositories(page_size=size) == whole
            first = oci.catalog(n=1)
            assert first.json()["repositories"] == whole[:1]
            assert (next_link(first) is not None) == (len(whole) > 1)
    # The admin sees everything, the others' private repositories included.
    assert set(world.repositories.values()) <= set(admin_oci.all_repositories(page_size=2))
