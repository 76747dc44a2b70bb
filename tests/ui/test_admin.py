"""Screen 10, Admin: an admin creates users, makes one an admin and disables another (who
can then no longer sign in); the audit log filtered by user, action and time, paged; and a
non-admin sees no Admin entry and is refused at /admin, by the page and by the API."""

from __future__ import annotations

import datetime
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api, unique
from tests.support.servers import RunningRegistry
from tests.ui.conftest import check_accessibility, screenshot, sign_in
from tests.ui.data import new_user


@pytest.fixture
def admin_page(page: Page) -> Iterator[Page]:
    """The page signed in as the admin; signed out afterwards, even when the test fails
    (other tests count the admin's web sessions on their tokens page)."""
    sign_in(page, ADMIN, ADMIN_PASSWORD)
    yield page
    page.request.delete("/api/v1/session", headers={"X-Dockyard-Web": "1"})


def test_an_admin_creates_promotes_and_disables_users(admin_page: Page, ui_server: RunningRegistry) -> None:
    page = admin_page
    newcomer = unique("newcomer")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin").click()
    expect(page.get_by_role("heading", name="Users", level=2)).to_be_visible()
    page.get_by_role("button", name="New user").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Username").fill(newcomer)
    dialog.get_by_label("Password").fill("short")
    dialog.get_by_label("Full name (optional)").fill("Nia Newcomer")
    check_accessibility(page, "71-admin-new-user")
    dialog.get_by_role("button", name="Create user").click()
    # The server's own words, next to the field that caused them.
    expect(dialog.locator("#user-password-error")).to_be_visible()
    dialog.get_by_label("Password").fill(PASSWORD)
    dialog.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("status")).to_contain_text(f"Created {newcomer}")

    page.get_by_label("Search users").fill(newcomer)
    users = page.get_by_role("table", name="Users")
    row = users.get_by_role("row").filter(has_text=newcomer)
    expect(row).to_contain_text("Nia Newcomer")
    expect(row).to_contain_text("Active")
    expect(row).to_contain_text("never")
    row.get_by_role("button", name=f"Make admin {newcomer}").click()
    expect(row).to_contain_text("Admin")
    expect(row.get_by_role("button", name=f"Remove admin rights from {newcomer}")).to_be_visible()
    row.get_by_role("button", name=f"Disable {newcomer}").click()
    expect(row).to_contain_text("Disabled")
    screenshot(page, "72-admin-users")
    check_accessibility(page, "72-admin-users")

    # A disabled account cannot sign in.
    refused = httpx.post(f"{ui_server.url}/api/v1/session", json={"username": newcomer, "password": PASSWORD})
    assert refused.status_code == 401
    row.get_by_role("button", name=f"Enable {newcomer}").click()
    expect(row).to_contain_text("Active")
    accepted = httpx.post(
        f"{ui_server.url}/api/v1/session", json={"username": newcomer, "password": PASSWORD}
    )
    assert accepted.status_code in (200, 201), accepted.text

    # An admin may not disable themselves: the control says so.
    page.get_by_label("Search users").fill(ADMIN)
    me = users.get_by_role("row").filter(has_text="(you)")
    expect(me.get_by_role("button", name=f"Disable {ADMIN}")).to_be_disabled()
    expect(me).to_contain_text("you cannot disable your own account")


def test_users_are_searched_and_paged_by_the_server(admin_page: Page, admin_api: Api) -> None:
    """A platform with many accounts shows a page of 100 and reads the next on demand."""
    page = admin_page
    prefix = unique("crowd")
    names = [f"{prefix}-{i:03d}" for i in range(101)]
    for name in names:
        admin_api.create_user(name)
    page.goto("/admin")
    page.get_by_label("Search users").fill(prefix.upper())  # any case
    users = page.get_by_role("table", name="Users")
    expect(users.get_by_role("row")).to_have_count(101)  # the header and the first 100, in name order
    expect(users.get_by_role("row").nth(1)).to_contain_text(names[0])
    expect(users.get_by_role("row").last).to_contain_text(names[99])
    expect(page.get_by_text(f"100 users matching “{prefix.upper()}” shown, more to come.")).to_be_visible()
    page.get_by_role("button", name="Show more").click()
    expect(users.get_by_role("row")).to_have_count(102)
    expect(users.get_by_role("row").last).to_contain_text(names[100])
    expect(page.get_by_text(f"101 users matching “{prefix.upper()}”.")).to_be_visible()
    expect(page.get_by_role("button", name="Show more")).to_have_count(0)
    # A change on a later page stays where it is.
    row = users.get_by_role("row").filter(has_text=names[100])
    row.get_by_role("button", name=f"Disable {names[100]}").click()
    expect(row).to_contain_text("Disabled")
    expect(users.get_by_role("row")).to_have_count(102)
    screenshot(page, "72-admin-users-paged")
    check_accessibility(page, "72-admin-users-paged")

    page.get_by_label("Search users").fill(f"{prefix}-no-such")
    expect(page.get_by_text(f"No user matches “{prefix}-no-such”")).to_be_visible()


def test_the_audit_log_filters_by_user_action_and_time_and_pages(
    admin_page: Page, admin_api: Api, ui_server: RunningRegistry
) -> None:
    page = admin_page
    user = new_user(admin_api, "audited")
    with Api.connect(ui_server, user, PASSWORD) as api:
        for n in range(53):
            api.call("POST", "/user/tokens", 201, json={"name": f"token-{n}", "scopes": ["pull"]})
        api.create_workspace(f"{user}-lab")
    page.goto("/admin?section=audit")
    expect(page.get_by_role("heading", name="Audit log", level=2)).to_be_visible()
    events = page.get_by_role("table", name="Audit events, newest first")
    expect(events.get_by_role("row").nth(1)).to_be_visible()

    page.get_by_label("User", exact=True).fill(user)
    page.get_by_label("Action").fill("token.create")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(f"{ui_server.url}/admin?section=audit&actor={user}&action=token.create")
    expect(events.get_by_role("row")).to_have_count(51)  # the header and a page of 50
    expect(events.get_by_role("row").nth(1)).to_contain_text(f"{user}:token-52")
    expect(page.get_by_role("button", name="Newer")).to_be_disabled()
    check_accessibility(page, "73-admin-audit")
    screenshot(page, "73-admin-audit")
    page.get_by_role("button", name="Older").click()
    expect(events.get_by_role("row")).to_have_count(4)
    expect(events.get_by_role("row").nth(3)).to_contain_text(f"{user}:token-0")
    expect(page.get_by_role("button", name="Older")).to_be_disabled()
    page.get_by_role("button", name="Newer").click()
    expect(events.get_by_role("row").nth(1)).to_contain_text(f"{user}:token-52")

    # Another action by the same user, with the workspace it happened in.
    page.get_by_label("Action").fill("workspace.create")
    page.get_by_role("button", name="Apply").click()
    expect(events.get_by_role("row")).to_have_count(2)
    expect(events.get_by_role("row").nth(1)).to_contain_text(f"{user}-lab")

    # A time range that ends before anything happened shows nothing.
    yesterday = datetime.datetime.now() - datetime.timedelta(days=1)
    page.get_by_label("Until (local time)").fill(yesterday.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_role("heading", name="No event matches these filters")).to_be_visible()
    page.get_by_label("Until (local time)").fill("")
    page.get_by_label("From (local time)").fill(yesterday.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Apply").click()
    expect(events.get_by_role("row")).to_have_count(2)
    screenshot(page, "74-admin-audit-filtered")
    check_accessibility(page, "74-admin-audit-filtered")
    page.get_by_role("button", name="Clear").click()
    expect(page.get_by_label("User", exact=True)).to_have_value("")


def test_a_non_admin_has_no_admin_entry_and_is_refused_at_admin(
    page: Page, admin_api: Api, ui_server: RunningRegistry
) -> None:
    user = new_user(admin_api, "plain")
    sign_in(page, user, PASSWORD)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Access")).to_be_visible()
    expect(nav.get_by_role("link", name="Admin")).to_have_count(0)
    page.goto("/admin")
    expect(page.get_by_role("heading", name="Only administrators may open this page")).to_be_visible()
    expect(page.get_by_text(f"You are signed in as {user}, who is not an administrator")).to_be_visible()
    expect(page.get_by_role("table")).to_have_count(0)
    screenshot(page, "75-admin-refused")
    check_accessibility(page, "75-admin-refused")
    with Api.connect(ui_server, user, PASSWORD) as api:
        assert api.http.get("/users").status_code == 403
        assert api.http.get("/audit").status_code == 403
