"""Search from the header: the box opens the results page, best match first, with facet counts
that narrow the query when followed; each result shows its trust marks and, for a package
query, the packages (with versions) that made it match; a query the server cannot read says
why; the page passes axe and is saved as a screenshot."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.support.identity import PASSWORD, Api, unique
from tests.support.package_dbs import conda_record
from tests.support.servers import RunningRegistry
from tests.ui.conftest import check_accessibility, screenshot, sign_in
from tests.ui.data import new_user, push_internal, register_external, wait_packages, wait_status


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


def test_results_show_marks_and_the_packages_that_matched(
    page: Page, admin_api: Api, ui_server: RunningRegistry
) -> None:
    user = new_user(admin_api, "trusted")  # their workspace becomes official
    lab = unique("lab")  # a second workspace of theirs, nobody's designation: a user's
    with Api.connect(ui_server, user, PASSWORD) as api:
        api.create_workspace(lab)
    kit = unique("kit")
    conda = "opt/conda/conda-meta"
    images = {
        f"{user}/{kit}": {
            f"{conda}/samtools-1.19.2-h50ea8bc_0.json": conda_record("samtools", "1.19.2"),
            f"{conda}/zlib-1.3.1-h4ab18f5_1.json": conda_record("zlib", "1.3.1"),
        },
        f"{lab}/{kit}": {f"{conda}/samtools-1.20-h50ea8bc_0.json": conda_record("samtools", "1.20")},
        f"{lab}/{kit}-old": {f"{conda}/samtools-1.17-h50ea8bc_0.json": conda_record("samtools", "1.17")},
    }
    for image, files in images.items():
        push_internal(ui_server, user, image, "1.0", files)
    for image in images:
        wait_status(ui_server, user, image, "1.0", "available")
        assert wait_packages(ui_server, user, image, "1.0")
    admin_api.call("PUT", f"/workspaces/{user}/mark", json={"mark": "official"})

    sign_in(page, user, PASSWORD)
    box = page.get_by_role("searchbox", name="Search the catalog")
    box.fill(f"samtools>=1.19 {kit}")
    box.press("Enter")
    expect(page.get_by_role("status").filter(has_text="of 2 images")).to_be_visible()
    results = page.locator(".results .result")
    expect(results).to_have_count(2)  # not the one with samtools 1.17
    official = results.filter(has=page.get_by_role("link", name=f"{user}/{kit}", exact=True))
    expect(official.get_by_test_id("marks")).to_have_text("Official")
    matched = official.get_by_role("list", name="Matched packages").get_by_role("listitem")
    expect(matched).to_have_text(["samtools 1.19.2 (conda)"])  # zlib is no term of the query
    theirs = results.filter(has=page.get_by_role("link", name=f"{lab}/{kit}", exact=True))
    expect(theirs.get_by_test_id("marks")).to_have_text("User")
    expect(theirs.get_by_role("list", name="Matched packages").get_by_role("listitem")).to_have_text(
        ["samtools 1.20 (conda)"]
    )
    check_accessibility(page, "search-marks-packages")
    screenshot(page, "search-marks-packages")
    # Words alone: the marks, and no packages to explain.
    box.fill(kit)
    box.press("Enter")
    expect(page.get_by_role("status").filter(has_text="of 3 images")).to_be_visible()
    expect(results.get_by_test_id("marks")).to_have_count(3)
    expect(page.get_by_role("list", name="Matched packages")).to_have_count(0)
