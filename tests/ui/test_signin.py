"""Signing in and out, the header every page shares, and a narrow window."""

from __future__ import annotations

import pytest
from playwright._impl._api_structures import SetCookieParam
from playwright.sync_api import Page, expect

from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api
from tests.support.servers import RunningRegistry
from tests.ui.conftest import check_accessibility, screenshot, sign_in
from tests.ui.data import new_user


def test_a_wrong_password_is_refused_next_to_the_form_and_the_right_one_signs_in(page: Page) -> None:
    page.goto("/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    check_accessibility(page, "01-sign-in")
    screenshot(page, "01-sign-in")
    page.get_by_label("Username").fill(ADMIN)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    screenshot(page, "01-sign-in-refused")

    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Docker Repository")).to_be_visible()
    expect(page.get_by_role("button", name=ADMIN)).to_be_visible()
    # A page opened by its address after signing in stays signed in (the session is a cookie).
    page.goto("/account/tokens")
    expect(page.get_by_role("heading", name="Access tokens")).to_be_visible()
    # Other tests sign the admin in too, so this session is one web session among several.
    expect(page.get_by_role("button", name="Revoke web session").first).to_be_visible()


def test_signing_out_ends_the_session_for_good(page: Page, admin_api: Api) -> None:
    user = new_user(admin_api, "signout")
    sign_in(page, user, PASSWORD)
    cookie = next(c for c in page.context.cookies() if c["name"] == "dockyard_session")
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Strict"
    page.get_by_role("button", name=user).click()
    page.get_by_role("menuitem", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    # The old cookie no longer works, even if a copy of it was kept.
    kept: SetCookieParam = {
        "name": cookie["name"],
        "value": cookie["value"],
        "domain": cookie["domain"],
        "path": "/",
    }
    page.context.add_cookies([kept])
    page.goto("/repository")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_the_header_has_the_workspace_switcher_and_it_is_remembered(
    page: Page, admin_api: Api, ui_server: RunningRegistry
) -> None:
    user = new_user(admin_api, "switch")
    lab = f"{user}-lab"
    with Api.connect(ui_server, user, PASSWORD) as api:
        api.create_workspace(lab)
    sign_in(page, user, PASSWORD)
    switcher = page.get_by_label("Workspace", exact=True)
    expect(switcher).to_have_value(user)  # a new user starts in their own workspace
    switcher.select_option(lab)
    page.reload()
    expect(page.get_by_label("Workspace", exact=True)).to_have_value(lab)
    check_accessibility(page, "02-header")


def test_a_narrow_window_keeps_every_control_reachable(page: Page, admin_api: Api) -> None:
    user = new_user(admin_api, "narrow")
    page.set_viewport_size({"width": 420, "height": 900})
    sign_in(page, user, PASSWORD)
    for name in ("Docker Repository",):
        expect(page.get_by_role("link", name=name)).to_be_visible()
    expect(page.get_by_role("button", name="Create", exact=True)).to_be_visible()
    screenshot(page, "03-narrow-window")
    check_accessibility(page, "03-narrow-window")


def test_a_personal_access_token_is_created_shown_once_and_revoked(
    page: Page, admin_api: Api, ui_server: RunningRegistry
) -> None:
    user = new_user(admin_api, "tokens")
    sign_in(page, user, PASSWORD)
    page.goto("/account/tokens")
    page.get_by_role("button", name="New token").click()
    dialog = page.get_by_role("dialog", name="New access token")
    dialog.get_by_label("Name").fill("laptop")
    dialog.get_by_label("Delete images").check()
    dialog.get_by_role("button", name="Create token").click()
    created = page.get_by_role("dialog", name="Token created")
    expect(created.get_by_text("it is not shown again")).to_be_visible()
    secret = created.locator("code").first.inner_text()
    assert secret.startswith("dyk_")
    screenshot(page, "04-token-created")
    check_accessibility(page, "04-token-created")
    created.get_by_role("button", name="Done").click()
    row = page.get_by_role("row", name="laptop")
    expect(row).to_contain_text("api, delete, pull, push")
    # Made in a 12-hour browser session, the token still lives its 90 days.
    expect(row).not_to_contain_text("never")
    with Api.connect(ui_server, user, PASSWORD) as api:
        (made,) = [t for t in api.call("GET", "/user/tokens") if t["name"] == "laptop"]
        assert made["expires_at"] - made["created_at"] == pytest.approx(90 * 86400, abs=60)
    with Api.connect(ui_server, user, secret) as api:  # the secret works
        assert api.call("GET", "/user")["username"] == user
    row.get_by_role("button", name="Revoke laptop").click()
    expect(page.get_by_role("row", name="laptop")).to_have_count(0)
