"""Deleting an image from its page as a user would: the Delete action asks first, the image is
gone afterwards (from its page and the Docker Repository table) and its history stays; a
member who may not delete is not offered the action."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.support.identity import PASSWORD, Api, unique
from tests.support.servers import RunningRegistry
from tests.ui.conftest import check_accessibility, screenshot, sign_in
from tests.ui.data import new_user, push_internal


def test_an_owner_deletes_an_image_and_sees_it_gone(
    page: Page, admin_api: Api, ui_server: RunningRegistry
) -> None:
    user = new_user(admin_api, "deleter")
    name = f"{user}/doomed"
    push_internal(ui_server, user, name, "1.0")
    sign_in(page, user, PASSWORD)
    page.goto(f"/images/{name}")
    expect(page.get_by_role("heading", name=name)).to_be_visible()

    page.get_by_role("button", name="Delete image").click()
    dialog = page.get_by_role("dialog", name=f"Delete {name}?")
    expect(dialog).to_contain_text("1.0")
    screenshot(page, "40-image-delete")
    check_accessibility(page, "40-image-delete")
    dialog.get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("heading", name=name)).to_be_visible()  # nothing happened

    page.get_by_role("button", name="Delete image").click()
    page.get_by_role("dialog", name=f"Delete {name}?").get_by_role("button", name="Delete image").click()

    expect(page).to_have_url(f"{ui_server.url}/repository")
    page.goto(f"/repository?q={user}")
    expect(page.get_by_role("link", name=name)).to_have_count(0)
    page.goto(f"/images/{name}")
    expect(page.get_by_text("You cannot see this image")).to_be_visible()
    with Api.connect(ui_server, user, PASSWORD) as api:
        assert api.http.get(f"/images/{name}").status_code == 404
        assert api.call("GET", f"/images/{name}/events")[0]["kind"] == "image.deleted"


def test_a_reader_is_not_offered_delete(page: Page, admin_api: Api, ui_server: RunningRegistry) -> None:
    owner, reader = new_user(admin_api, "owns"), new_user(admin_api, "onlyreads")
    workspace = unique("shared")
    with Api.connect(ui_server, owner, PASSWORD) as api:
        api.create_workspace(workspace)
        api.set_member(workspace, reader, "reader")
    name = f"{workspace}/kept"
    push_internal(ui_server, owner, name, "1.0")
    sign_in(page, reader, PASSWORD)
    page.goto(f"/images/{name}")

    expect(page.get_by_role("article", name="1.0")).to_be_visible()
    expect(page.get_by_role("button", name="Delete image")).to_have_count(0)
    expect(page.get_by_role("button", name="Delete version 1.0")).to_have_count(0)
