"""Trust marks in the web UI: badges in the image list's Marks column and on the image page
(Official, Signed; a tampered signature says "Signature invalid", never "signed"), and the
filter chips that narrow the list to one mark."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.support.cosign import ecdsa_key, payload, public_pem, push_signature, sign
from tests.support.identity import PASSWORD, Api, oci_as
from tests.support.servers import RunningRegistry
from tests.ui.conftest import check_accessibility, screenshot, sign_in
from tests.ui.data import new_user, push_internal, wait_status

pytestmark = pytest.mark.clients


def test_marks_are_badges_and_filter_chips(page: Page, admin_api: Api, ui_server: RunningRegistry) -> None:
    user = new_user(admin_api, "marked")
    signed, tampered = f"{user}/signed", f"{user}/tampered"
    key = ecdsa_key()
    digests = {name: push_internal(ui_server, user, name, "1.0") for name in (signed, tampered)}
    for name in digests:
        wait_status(ui_server, user, name, "1.0", "available")
    admin_api.call("PUT", f"/workspaces/{user}/mark", json={"mark": "official"})
    with Api.connect(ui_server, user, PASSWORD) as api:
        api.call(
            "POST", f"/workspaces/{user}/trusted-keys", 201, json={"name": "release", "pem": public_pem(key)}
        )
    with oci_as(ui_server, user, PASSWORD) as oci:
        data = payload(f"{ui_server.host}/{signed}", digests[signed])
        push_signature(oci, signed, digests[signed], data, sign(key, data))
        data = payload(f"{ui_server.host}/{tampered}", digests[signed])  # names the other image
        push_signature(oci, tampered, digests[tampered], data, sign(key, data))

    sign_in(page, user, PASSWORD)
    page.goto(f"/repository?workspace={user}")
    table = page.get_by_role("table", name="Image versions")
    expect(table.get_by_role("row")).to_have_count(3)  # the header and two versions
    row = table.get_by_role("row").filter(has_text=signed)
    expect(row.get_by_test_id("marks")).to_contain_text("Official")
    expect(row.get_by_test_id("marks")).to_contain_text("Signed")
    bad = table.get_by_role("row").filter(has_text=tampered)
    expect(bad.get_by_test_id("marks")).to_contain_text("Signature invalid")
    expect(bad.get_by_test_id("marks")).not_to_contain_text("Signed")

    chips = page.get_by_role("group", name="Filter by trust mark")
    chips.get_by_role("button", name="Signed").click()
    expect(chips.get_by_role("button", name="Signed")).to_have_attribute("aria-pressed", "true")
    expect(table.get_by_role("row")).to_have_count(2)
    expect(table.get_by_role("row").nth(1)).to_contain_text(signed)
    screenshot(page, "17-marks-filter")
    check_accessibility(page, "17-marks-filter")

    page.goto(f"/images/{signed}")
    expect(page.get_by_role("heading", name=signed)).to_be_visible()
    card = page.get_by_role("article", name="1.0")
    expect(card.get_by_test_id("marks")).to_contain_text("Signed")
    expect(card.get_by_test_id("attached")).to_have_count(0)  # verified: no "signature attached"
    screenshot(page, "17-marks-image")
    check_accessibility(page, "17-marks-image")
