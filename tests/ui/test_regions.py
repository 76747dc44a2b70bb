"""Regions from the Docker Repository table, as a maintainer would: Manage > Add Region copies a
pushed version to ``us`` (the Regions cell follows the copy until it is available), Manage >
Remove Region takes it out of ``eu``; on a Dockyard of its own with two folder regions."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api, start_token_dockyard
from tests.support.servers import RunningRegistry
from tests.ui.conftest import check_accessibility, screenshot, sign_in
from tests.ui.data import new_user, push_internal, wait_status


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    base = tmp_path_factory.mktemp("ui-regions")
    regions = {"us": {"driver": "filesystem", "root": str(base / "us")}}
    env = {"DOCKYARD_DEFAULT_REGION": "eu", "DOCKYARD_REGIONS": json.dumps(regions)}
    server = start_token_dockyard("sqlite", base, extra_env=env)
    yield server
    server.stop()


def test_a_maintainer_adds_and_removes_a_region_from_the_manage_menu(
    page: Page, ui_server: RunningRegistry
) -> None:
    with Api.connect(ui_server, ADMIN, ADMIN_PASSWORD) as admin:
        user = new_user(admin, "regions")
    name = f"{user}/placed"
    push_internal(ui_server, user, name, "v1")
    wait_status(ui_server, user, name, "v1", "available")
    sign_in(page, user, PASSWORD)
    page.goto(f"/repository?q={user}")
    page.get_by_label(f"Select {name}:v1").check()
    manage = page.get_by_role("button", name="Manage", exact=True)

    manage.click()
    page.get_by_role("menuitem", name="Add Region").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_label("Region")).to_have_value("us")
    screenshot(page, "70-region-add")
    check_accessibility(page, "70-region-add")
    dialog.get_by_role("button", name="Add region").click()
    expect(page.locator(f'[data-regions="{name}:v1"]')).to_have_text("eu, us")  # the copy ended

    manage.click()
    page.get_by_role("menuitem", name="Remove Region").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Region").select_option("eu")
    dialog.get_by_role("button", name="Remove region").click()
    expect(page.locator(f'[data-regions="{name}:v1"]')).to_have_text("us")
    screenshot(page, "71-region-removed")
    check_accessibility(page, "71-region-removed")
    with Api.connect(ui_server, user, PASSWORD) as api:
        found = api.call("GET", f"/images/{name}/versions/v1/regions")
        assert [r["region"] for r in found["regions"]] == ["us"]
