"""Workspace settings, "Storage and quota": a platform admin sees what a workspace stores as a
bar against its quota, sets the quota as a human size, lowers it below the usage (the page says
pushes are now refused), and goes back to the default; a member sees the same numbers with the
control disabled and the reason."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api, unique
from tests.support.servers import RunningRegistry
from tests.ui.conftest import check_accessibility, screenshot, sign_in
from tests.ui.data import new_user, push_internal
from tests.ui.test_settings import open_section


def choose(page: Page, workspace: str) -> None:
    page.get_by_role("link", name="Workspace settings").click()
    page.get_by_label("Workspace", exact=True).select_option(workspace)
    open_section(page, "Storage and quota")


def test_an_admin_sets_the_quota_and_a_member_sees_it(
    page: Page, admin_api: Api, ui_server: RunningRegistry
) -> None:
    member = new_user(admin_api, "storer")
    lab = unique("store")
    admin_api.create_workspace(lab)
    admin_api.set_member(lab, member, "developer")
    push_internal(ui_server, member, f"{lab}/tool", "v1")
    used = admin_api.call("GET", f"/workspaces/{lab}/quota")["used_bytes"]
    assert used > 0

    sign_in(page, ADMIN, ADMIN_PASSWORD)
    choose(page, lab)
    summary = page.locator("#quota-summary")
    expect(summary).to_contain_text("stored · quota: no quota: unlimited")
    page.get_by_label("Quota", exact=True).fill("1MiB")
    page.get_by_role("button", name="Save quota").click()
    expect(page.get_by_role("status").filter(has_text="Saved")).to_contain_text("a quota of 1.0 MB")
    expect(summary).to_contain_text("set for this workspace")
    expect(page.locator("meter.quota-bar")).to_have_attribute("max", str(1 << 20))
    check_accessibility(page, "69-settings-quota")
    screenshot(page, "69-settings-quota")
    assert admin_api.call("GET", f"/workspaces/{lab}/quota")["limit_bytes"] == 1 << 20

    # A bad size is refused at its field; a quota below the usage is allowed, and says so.
    page.get_by_label("Quota", exact=True).fill("lots")
    page.get_by_role("button", name="Save quota").click()
    expect(page.get_by_text("is not a size")).to_be_visible()
    page.get_by_label("Quota", exact=True).fill("10")
    page.get_by_role("button", name="Save quota").click()
    expect(page.get_by_text("pushes of new layers are refused")).to_be_visible()
    screenshot(page, "69-settings-quota-over")

    # Back to the platform default (none here: unlimited).
    page.get_by_role("button", name="Use the default").click()
    expect(summary).to_contain_text("no quota: unlimited")
    assert admin_api.call("GET", f"/workspaces/{lab}/quota")["own_limit_bytes"] is None

    admin_api.call("PUT", f"/workspaces/{lab}/quota", json={"limit_bytes": "2MiB"})
    page.context.clear_cookies()
    sign_in(page, member, PASSWORD)
    choose(page, lab)
    expect(summary).to_contain_text("set for this workspace")
    expect(page.get_by_label("Quota", exact=True)).to_be_disabled()
    expect(page.get_by_text("Only platform administrators set quotas.")).to_be_visible()
    check_accessibility(page, "69-settings-quota-member")
