"""The image page's "Import into Dockyard" button: an external version is copied into
Dockyard's storage (a job on the server), its progress shown, and the card then says it is
stored here and where it was imported from."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.support.catalog import Upstreams
from tests.support.identity import PASSWORD, Api
from tests.support.servers import RunningRegistry
from tests.ui import test_image
from tests.ui.conftest import check_accessibility, screenshot, sign_in
from tests.ui.data import new_user, register_external

pytestmark = pytest.mark.clients
upstreams = test_image.upstreams  # the 2-platform index on docker-registry


def test_an_external_version_is_imported_from_the_image_page(
    page: Page, admin_api: Api, ui_server: RunningRegistry, upstreams: Upstreams
) -> None:
    user = new_user(admin_api, "importpage")
    reference = upstreams.ref("library/multi:v1")
    register_external(ui_server, user, reference)
    sign_in(page, user, PASSWORD)
    page.goto(f"/images/{user}/multi")
    card = page.get_by_role("article", name="v1")
    expect(card.get_by_text(f"External: {reference}")).to_be_visible()
    check_accessibility(page, "40-image-import-external")
    card.get_by_role("button", name="Import into Dockyard (v1)").click()
    expect(card.get_by_text("Internal (stored here)")).to_be_visible(timeout=60_000)
    expect(card.get_by_text(reference)).to_be_visible()
    expect(card.get_by_text(f"by {user}").first).to_be_visible()
    expect(card.get_by_role("button", name="Import into Dockyard (v1)")).to_have_count(0)
    expect(page.get_by_role("listitem").filter(has_text="Imported").first).to_be_visible()
    screenshot(page, "40-image-import-done")
    check_accessibility(page, "40-image-import-done")
