"""Workspace settings, Webhooks (#18): a maintainer adds a receiver (its secret shown once),
tests it, sees a push arrive in the delivery log with the receiver's status code, switches it
off and removes it; a developer is told why the section is closed to them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.support.identity import PASSWORD, Api, unique
from tests.support.servers import RunningRegistry
from tests.support.webhooks import Receiver
from tests.ui.conftest import check_accessibility, screenshot, sign_in
from tests.ui.data import new_user, push_internal
from tests.ui.test_settings import open_section


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver().start()
    yield found
    found.stop()


def test_a_maintainer_adds_tests_reads_the_log_of_and_removes_a_webhook(
    page: Page, admin_api: Api, ui_server: RunningRegistry, receiver: Receiver
) -> None:
    owner = new_user(admin_api, "hooker")
    developer = new_user(admin_api, "devhook")
    workspace = unique("hooks")
    with Api.connect(ui_server, owner, PASSWORD) as api:
        api.create_workspace(workspace)
        api.set_member(workspace, developer, "developer")
    sign_in(page, owner, PASSWORD)
    page.get_by_label("Workspace", exact=True).select_option(workspace)
    page.get_by_role("link", name="Workspace settings").click()
    open_section(page, "Webhooks")
    expect(page.get_by_text("No webhooks yet")).to_be_visible()

    page.get_by_label("Receiver URL").fill(receiver.url)
    page.get_by_label("Description").fill("CI pipeline")
    page.get_by_label("Image pushed").check()
    page.get_by_role("button", name="Add webhook").click()
    dialog = page.get_by_role("dialog", name="Webhook added")
    expect(dialog).to_contain_text("not shown again")
    secret = dialog.locator(".copy code").inner_text()
    assert secret.startswith("whsec_")
    with Api.connect(ui_server, owner, PASSWORD) as api:
        (hook,) = api.call("GET", f"/workspaces/{workspace}/webhooks")
    assert "secret" not in hook  # shown once: never again
    check_accessibility(page, "69a-settings-webhook-added")
    screenshot(page, "69a-settings-webhook-added")
    dialog.get_by_role("button", name="Done").click()

    card = page.get_by_role("article", name=receiver.url)
    expect(card).to_contain_text("image.pushed")
    card.get_by_role("button", name="Test CI pipeline").click()
    expect(card.get_by_role("status")).to_contain_text("Test delivered: the receiver answered 204")
    push_internal(ui_server, owner, f"{workspace}/tool", "v1")
    receiver.wait_for(lambda r: any(x.event["subject"] == f"{workspace}/tool:v1" for x in r))
    card.get_by_role("button", name="Show deliveries").click()
    log = card.get_by_role("table", name="Deliveries, newest first")
    expect(log.get_by_role("row").filter(has_text=f"{workspace}/tool:v1")).to_contain_text("204")
    expect(log.get_by_role("row").filter(has_text="webhook.ping")).to_contain_text("delivered")
    check_accessibility(page, "69b-settings-webhook-log")
    screenshot(page, "69b-settings-webhook-log")

    # The secret is rotated: the new one is shown once, the old one signs too for the hours chosen.
    card.get_by_role("button", name="Rotate secret of CI pipeline").click()
    rotation = page.get_by_role("dialog", name="Rotate the signing secret?")
    rotation.get_by_label("Hours the old secret keeps signing (0 to 168)").fill("2")
    rotation.get_by_role("button", name="Rotate secret").click()
    shown = page.get_by_role("dialog", name="New signing secret")
    expect(shown).to_contain_text("each event is signed with the old secret too")
    new_secret = shown.locator(".copy code").inner_text()
    assert new_secret.startswith("whsec_")
    assert new_secret != secret
    check_accessibility(page, "69d-settings-webhook-rotated")
    screenshot(page, "69d-settings-webhook-rotated")
    shown.get_by_role("button", name="Done").click()
    expect(card).to_contain_text("the old secret signs too until")

    # A receiver that fails: the test says so, with the status code.
    receiver.status = 503
    card.get_by_role("button", name="Test CI pipeline").click()
    expect(card.get_by_role("status").first).to_contain_text("Test not delivered: 503")
    card.get_by_role("button", name="Disable CI pipeline").click()
    expect(card).to_contain_text("Disabled")
    card.get_by_role("button", name="Remove CI pipeline").click()
    page.get_by_role("dialog").get_by_role("button", name="Remove webhook").click()
    expect(page.get_by_text("No webhooks yet")).to_be_visible()

    # A developer is told why they cannot see the section.
    page.context.clear_cookies()
    sign_in(page, developer, PASSWORD)
    page.get_by_label("Workspace", exact=True).select_option(workspace)
    page.get_by_role("link", name="Workspace settings").click()
    open_section(page, "Webhooks")
    expect(
        page.get_by_text("Only maintainers and owners see and manage webhooks; you are a developer here.")
    ).to_be_visible()
    check_accessibility(page, "69c-settings-webhooks-developer")
