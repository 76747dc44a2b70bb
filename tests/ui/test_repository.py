"""The Docker Repository table: what a user sees of the versions they may see, and how they
filter, sort, page, choose columns, select and manage rows; Create > External image with the
name and version filled from the URL as it is typed, then verified from the table."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.support.catalog import Upstreams, start_upstreams
from tests.support.identity import PASSWORD, Api
from tests.support.servers import RunningRegistry
from tests.support.upstreams import build_upstream_images
from tests.ui.conftest import check_accessibility, screenshot, sign_in
from tests.ui.data import new_user, push_internal, register_external, wait_status

pytestmark = pytest.mark.clients


@pytest.fixture(scope="module")
def upstreams(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstreams]:
    images = build_upstream_images(tmp_path_factory.mktemp("ui-upstream-images"))
    with start_upstreams(tmp_path_factory.mktemp("ui-upstreams"), images) as found:
        yield found


def showing(first: int, last: int, total: int) -> str:
    """The pager's text, e.g. "1-50 of 53" written with an en dash."""
    return f"{first}\u2013{last} of {total}"


def expect_rows(page: Page, expected: list[str]) -> None:
    """Wait until the table shows exactly these rows (Name:Version), top to bottom."""
    names = [row.rsplit(":", 1)[0] for row in expected]
    versions = [row.rsplit(":", 1)[1] for row in expected]
    expect(page.locator("table.data tbody tr td:nth-child(2)")).to_have_text(names)
    expect(page.locator("table.data tbody tr td:nth-child(3)")).to_have_text(versions)


def expect_first_row(page: Page, expected: str) -> None:
    name, version = expected.rsplit(":", 1)
    expect(page.locator("table.data tbody tr").first.locator("td").nth(1)).to_have_text(name)
    expect(page.locator("table.data tbody tr").first.locator("td").nth(2)).to_have_text(version)


def test_a_new_user_sees_the_empty_state_with_what_to_do(page: Page, admin_api: Api) -> None:
    user = new_user(admin_api, "empty")
    sign_in(page, user, PASSWORD)
    expect(page.get_by_role("heading", name="No images yet")).to_be_visible()
    expect(page.get_by_text(f"/{user}/IMAGE:VERSION")).to_be_visible()
    screenshot(page, "10-repository-empty")
    check_accessibility(page, "10-repository-empty")


def test_the_table_filters_sorts_pages_and_remembers_columns(
    page: Page, admin_api: Api, ui_server: RunningRegistry
) -> None:
    user = new_user(admin_api, "table")
    for i in range(52):
        register_external(
            ui_server, user, f"quay.io/biocontainers/tool{i:02d}:1.{i}", description=f"tool number {i}"
        )
    push_internal(ui_server, user, f"{user}/pushed", "v1")
    wait_status(ui_server, user, f"{user}/pushed", "v1", "available")
    sign_in(page, user, PASSWORD)

    for header in ("Name", "Version", "Source", "Type", "Status", "Regions", "Platforms", "Size", "Modified"):
        expect(page.get_by_role("columnheader", name=header)).to_be_visible()
    expect(page.get_by_text(showing(1, 50, 53))).to_be_visible()
    expect_first_row(page, f"{user}/pushed:v1")
    screenshot(page, "11-repository")
    check_accessibility(page, "11-repository")

    page.get_by_role("button", name="Next").click()
    expect(page.get_by_text(showing(51, 53, 53))).to_be_visible()
    expect_rows(page, [f"{user}/tool49:1.49", f"{user}/tool50:1.50", f"{user}/tool51:1.51"])

    # Sorting by name, descending, goes back to the first page.
    page.get_by_role("button", name="Name", exact=True).click()  # sorted by name already: now descending
    expect(page.get_by_role("columnheader", name="Name")).to_have_attribute("aria-sort", "descending")
    expect(page.get_by_text(showing(1, 50, 53))).to_be_visible()
    expect_first_row(page, f"{user}/tool51:1.51")

    # Filters: internal only, then a search.
    page.get_by_label("Source").select_option("internal")
    expect(page.get_by_text(showing(1, 1, 1))).to_be_visible()
    expect_rows(page, [f"{user}/pushed:v1"])
    row = page.locator("table.data tbody tr").first
    expect(row.get_by_text("Internal")).to_be_visible()
    expect(row.get_by_text("Available")).to_be_visible()
    expect(row.get_by_text("linux/amd64")).to_be_visible()
    page.get_by_label("Source").select_option("")
    page.get_by_role("searchbox", name="Search images").fill("number 17")
    expect(page.get_by_text(showing(1, 1, 1))).to_be_visible()
    expect_rows(page, [f"{user}/tool17:1.17"])
    screenshot(page, "12-repository-filtered")

    # The column chooser hides Source; the choice survives a reload.
    page.get_by_role("button", name="Columns").click()
    page.get_by_role("checkbox", name="Source").uncheck()
    expect(page.get_by_role("columnheader", name="Source")).to_have_count(0)
    page.reload()
    expect(page.get_by_role("columnheader", name="Type")).to_be_visible()
    expect(page.get_by_role("columnheader", name="Source")).to_have_count(0)
    page.get_by_role("button", name="Columns").click()
    page.get_by_role("checkbox", name="Source").check()
    expect(page.get_by_role("columnheader", name="Source")).to_be_visible()


def test_manage_is_enabled_by_a_selection_and_says_why_an_action_is_not_possible(
    page: Page, admin_api: Api, ui_server: RunningRegistry
) -> None:
    user = new_user(admin_api, "manage")
    register_external(ui_server, user, "docker.io/library/alpine:3.20")
    push_internal(ui_server, user, f"{user}/pushed", "v1")
    wait_status(ui_server, user, f"{user}/pushed", "v1", "available")
    sign_in(page, user, PASSWORD)
    manage = page.get_by_role("button", name="Manage", exact=True)
    expect(manage).to_be_disabled()

    # Keyboard only: select the external row, open Manage, read the reasons.
    page.get_by_label(f"Select {user}/alpine:3.20").focus()
    page.keyboard.press("Space")
    expect(manage).to_be_enabled()
    manage.focus()
    page.keyboard.press("Enter")
    download = page.get_by_role("menuitem", name="Download (docker load)")
    expect(download).to_be_disabled()
    expect(download).to_contain_text("external images live in another registry")
    screenshot(page, "13-repository-manage")
    check_accessibility(page, "13-repository-manage")
    page.keyboard.press("Escape")

    # Delete the external version, confirmed in a dialog.
    manage.click()
    page.get_by_role("menuitem", name="Delete").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(f"{user}/alpine:3.20")
    dialog.get_by_role("button", name="Delete").click()
    expect(page.locator("table.data tbody tr")).to_have_count(1)
    expect_rows(page, [f"{user}/pushed:v1"])

    # An internal version downloads as a tar.
    page.get_by_label(f"Select {user}/pushed:v1").check()
    manage.click()
    with page.expect_download() as started:
        page.get_by_role("menuitem", name="Download (docker load)").click()
    saved = started.value.path()
    assert saved.stat().st_size > 1024
    with saved.open("rb") as tar:
        assert tar.read(512)[257:262] == b"ustar"  # a tar header


def test_create_external_fills_name_and_version_as_the_url_is_typed_and_verifies(
    page: Page, admin_api: Api, upstreams: Upstreams, ui_server: RunningRegistry
) -> None:
    user = new_user(admin_api, "create")
    sign_in(page, user, PASSWORD)
    page.get_by_role("button", name="Create", exact=True).click()
    page.get_by_role("menuitem", name="External image").click()
    dialog = page.get_by_role("dialog", name="Create external image")
    url = dialog.get_by_label("Image URL")

    # A URL with a scheme is explained, and corrected in one click.
    url.fill("https://quay.io/biocontainers/samtools:1.19--h50ea8bc_0")
    expect(dialog.get_by_role("alert")).to_contain_text("'https://' is not part of an image reference")
    dialog.get_by_role("button", name="Use quay.io/biocontainers/samtools:1.19--h50ea8bc_0").click()
    expect(dialog.get_by_label("Name")).to_have_value("samtools")
    expect(dialog.get_by_label("Version")).to_have_value("1.19--h50ea8bc_0")
    screenshot(page, "14-create-external")
    check_accessibility(page, "14-create-external")

    # A moving tag is warned about.
    url.fill(f"{upstreams.ref('library/amd')}:latest")
    expect(dialog.get_by_role("note")).to_contain_text("tag 'latest' moves")
    screenshot(page, "15-create-external-moving-tag")

    # The real one: an image on a local upstream registry.
    url.fill(f"{upstreams.ref('library/amd')}:v1")
    expect(dialog.get_by_label("Name")).to_have_value("amd")
    expect(dialog.get_by_label("Version")).to_have_value("v1")
    dialog.get_by_label("Description").fill("the amd64 test image")
    # One visibility for the new image: the workspace's default (private) until chosen.
    expect(dialog.get_by_label("Visibility")).to_have_value("private")
    dialog.get_by_label("Visibility").select_option("public")
    dialog.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text(f"Created {user}/amd:v1")
    shown = httpx.get(f"{ui_server.url}/api/v1/images/{user}/amd", timeout=30)  # anonymous
    assert (shown.json()["visibility"], [v["version"] for v in shown.json()["versions"]]) == (
        "public",
        ["v1"],
    )
    row = page.locator("table.data tbody tr", has_text=f"{user}/amd")
    expect(row.get_by_text("External")).to_be_visible()
    expect(row.get_by_text("Unverified")).to_be_visible()
    row.get_by_role("button", name=f"Verify {user}/amd:v1").click()
    expect(row.get_by_text("Reachable", exact=True)).to_be_visible()
    expect(row).to_contain_text("linux/amd64")
    screenshot(page, "16-create-external-verified")
    with Api.connect(ui_server, user, PASSWORD) as api:  # the UI server is shared: private again
        api.set_visibility(f"{user}/amd", "private")


def test_a_name_that_is_taken_is_refused_next_to_the_field(
    page: Page, admin_api: Api, ui_server: RunningRegistry
) -> None:
    user = new_user(admin_api, "taken")
    register_external(ui_server, user, "docker.io/library/busybox:1.36")
    sign_in(page, user, PASSWORD)
    page.get_by_role("button", name="Create", exact=True).click()
    page.get_by_role("menuitem", name="External image").click()
    dialog = page.get_by_role("dialog", name="Create external image")
    dialog.get_by_label("Image URL").fill("docker.io/library/busybox:1.37")
    expect(dialog.get_by_label("Name")).to_have_value("busybox")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog.get_by_role("alert")).to_contain_text("busybox")
    expect(dialog).to_be_visible()  # nothing lost: the form stays as it was
    expect(dialog.get_by_label("Image URL")).to_have_value("docker.io/library/busybox:1.37")
    screenshot(page, "17-create-external-refused")
