"""The image page's lineage: "Based on X, N layers added", the versions built on a base, and a
"base updated" note with a Rebuild action once a newer base is in the catalog (the server's
reason shown when the version was not built here)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.support.catalog import CatalogUser
from tests.support.identity import PASSWORD, Api, oci_as, unique
from tests.support.lineage import image, layers, push
from tests.support.servers import RunningRegistry
from tests.ui.conftest import check_accessibility, screenshot, sign_in
from tests.ui.data import new_user

pytestmark = pytest.mark.clients


def test_a_version_shows_its_base_its_children_and_offers_a_rebuild_when_the_base_is_updated(
    page: Page, admin_api: Api, ui_server: RunningRegistry
) -> None:
    user = new_user(admin_api, "lineage")
    label = unique("ui-lineage")
    os_layers = layers(f"{label} os", f"{label} libs")
    base, app = f"{user}/alpine", f"{user}/tool"
    with CatalogUser.connect(ui_server, user) as catalog, oci_as(ui_server, user, PASSWORD) as oci:
        first = push(oci, catalog, base, "3.20", image(os_layers, label))
        push(oci, catalog, app, "1.0", image([*os_layers, *layers(f"{label} tool")], label))
        sign_in(page, user, PASSWORD)
        page.goto(f"/images/{app}")
        card = page.get_by_role("article", name="1.0")
        lineage = card.get_by_test_id("lineage")
        expect(lineage).to_contain_text(f"Based on {base}:3.20")
        expect(lineage).to_contain_text("1 layer added")
        expect(lineage.get_by_role("note")).to_have_count(0)

        page.goto(f"/images/{base}")
        built_on = page.get_by_role("list", name="Versions built on 3.20")
        expect(built_on).to_contain_text(f"{app}:1.0")
        expect(built_on.get_by_role("link", name=f"{app}:1.0")).to_be_visible()

        push(oci, catalog, base, "3.21", image(layers(f"{label} newer os"), label))
    page.goto(f"/images/{app}")
    note = page.get_by_role("article", name="1.0").get_by_role("note")
    expect(note).to_contain_text(f"Base updated: a newer version of {base} is in the catalog.")
    expect(page.get_by_role("article", name="1.0").get_by_test_id("lineage")).to_contain_text(
        first["digest"][7:19]
    )
    screenshot(page, "77-image-lineage")
    check_accessibility(page, "77-image-lineage")
    note.get_by_role("button", name="Rebuild").click()
    expect(note.get_by_role("alert")).to_contain_text("was not built here")
