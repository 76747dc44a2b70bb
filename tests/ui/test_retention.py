"""Workspace settings, Retention: an owner adds a keep-the-latest-2 rule, a dry run lists the
two oldest tags and deletes nothing, a real run is followed to its end and deletes them, and
the history shows both runs."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.support.identity import PASSWORD, Api, oci_as
from tests.support.servers import RunningRegistry
from tests.ui.conftest import check_accessibility, screenshot, sign_in
from tests.ui.data import new_user, push_internal


def tags_of(registry: RunningRegistry, user: str, repository: str) -> list[str]:
    with oci_as(registry, user, PASSWORD) as oci:
        return sorted(oci.tags(repository).json()["tags"])


def test_an_owner_adds_a_rule_dry_runs_it_and_runs_it(
    page: Page, admin_api: Api, ui_server: RunningRegistry
) -> None:
    owner = new_user(admin_api, "keeper")
    repository = f"{owner}/tool"
    for tag in ("1.0", "1.1", "1.2", "1.3"):  # pushed in this order: 1.0 is the oldest
        push_internal(ui_server, owner, repository, tag)
    sign_in(page, owner, PASSWORD)
    page.get_by_role("link", name="Workspace settings").click()
    page.get_by_role("navigation", name="Workspace settings sections").get_by_role(
        "link", name="Retention"
    ).click()
    expect(page.get_by_role("heading", name="Retention", level=2)).to_be_visible()
    expect(page.get_by_text("No retention rules")).to_be_visible()

    page.get_by_label("The rule").select_option("keep_last")
    page.get_by_label("Tags to keep per repository (1 to 10000)").fill("2")
    page.get_by_label("Runs", exact=True).select_option("manual")
    page.get_by_role("button", name="Add rule").click()
    rules = page.get_by_role("table", name="Retention rules")
    expect(rules).to_contain_text("every repository: keep the latest 2 tags (by push time)")
    check_accessibility(page, "69-settings-retention")
    screenshot(page, "69-settings-retention")

    rules.get_by_role("button", name="Dry run of rule").click()
    expect(page.get_by_text("Would delete 2 (succeeded).")).to_be_visible()
    doomed = page.get_by_role("table", name="would delete and kept")
    expect(doomed.get_by_role("row")).to_have_count(3)
    expect(doomed).to_contain_text("1.0")
    expect(doomed).to_contain_text("1.1")
    assert tags_of(ui_server, owner, repository) == ["1.0", "1.1", "1.2", "1.3"]  # nothing went
    check_accessibility(page, "69b-settings-retention-dry-run")
    screenshot(page, "69b-settings-retention-dry-run")

    rules.get_by_role("button", name="now").click()
    expect(page.get_by_text("Deleted 2 (succeeded).")).to_be_visible(timeout=30_000)
    assert tags_of(ui_server, owner, repository) == ["1.2", "1.3"]
    history = page.get_by_role("table", name="Retention runs, newest first")
    expect(history.get_by_role("row")).to_have_count(3)
    expect(history.get_by_role("row").nth(1)).to_contain_text("Real")
    expect(history.get_by_role("row").nth(2)).to_contain_text("Dry run")
    check_accessibility(page, "69c-settings-retention-run")
    screenshot(page, "69c-settings-retention-run")
