"""Search from the header: the box opens the results page, best match first, with facet counts
that narrow the query when followed; a query the server cannot read says why; the page passes
axe and is saved as a screenshot."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.support.identity import PASSWORD, Api
from tests.support.servers import RunningRegistry
from tests.ui.conftest import check_accessibility, screenshot, sign_in
from tests.ui.data import new_user, push_internal, register_external, wait_status


def test_search_from_the_header_with_facets(page: Page, admin_api: Api, ui_server: RunningRegistry) -> None:
    user = new_user(admin_api, "seeker")
    push_internal(ui_server, user, f"{user}/variant-caller", "1.0")
    wait_status(ui_server, user, f"{user}/variant-caller", "1.0", "available")
    register_external(
        ui_server,
        user,
        "quay.io/biocontainers/gatk:4.5",
        name="gatk",
        version="4.5",
        description="Genome analysis toolkit, a variant caller",
    )
    sign_in(page, user, PASSWORD)
    box = page.get_by_role("searchbox", name="Search the catalog")
    box.fill(f"variant workspace:{user}")
    box.press("Enter")
    expect(page.get_by_role("heading", name="Search", exact=True)).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="of 2 images")).to_be_visible()
    results = page.locator(".results .result h2")
    expect(results).to_have_text([f"{user}/variant-caller", f"{user}/gatk"])  # the name first
    facets = page.get_by_role("complementary", name="Narrow the results")
    expect(facets.get_by_role("listitem").filter(has_text="external")).to_contain_text("1")
    check_accessibility(page, "search results")
    screenshot(page, "search-results")
    # A facet narrows the query.
    facets.get_by_role("link", name="external").click()
    expect(page.get_by_role("status").filter(has_text="of 1 image")).to_be_visible()
    expect(results).to_have_text([f"{user}/gatk"])
    expect(box).to_have_value(f"variant workspace:{user} source:external")
    # A result opens its image.
    page.get_by_role("link", name=f"{user}/gatk").click()
    expect(page.get_by_role("heading", name=f"{user}/gatk")).to_be_visible()
    # A query the server cannot read says why.
    box.fill("color:red")
    box.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("unknown filter")
    screenshot(page, "search-invalid")
