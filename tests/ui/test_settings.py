"""Screen 9, Workspace settings: an owner creates an organisation and manages its members,
teams and a robot whose token is shown once and works; repository visibility and
permissions, the amd64 policy and registry credentials (the secret never comes back); and a
reader who sees every control they may not use disabled, with the reason."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from tests.support.identity import PASSWORD, Api, oci_as, unique
from tests.support.oci import oci_manifest
from tests.support.servers import RunningRegistry
from tests.ui.conftest import check_accessibility, screenshot, sign_in
from tests.ui.data import new_user, push_internal


def open_section(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Workspace settings sections").get_by_role("link", name=name).click()
    expect(page.get_by_role("heading", name=name, level=2, exact=True)).to_be_visible()


def test_an_owner_creates_an_organisation_and_manages_members_teams_and_a_robot(
    page: Page, admin_api: Api, ui_server: RunningRegistry
) -> None:
    owner = new_user(admin_api, "founder")
    colleague = new_user(admin_api, "colleague")
    workspace = unique("lab")
    sign_in(page, owner, PASSWORD)
    page.get_by_role("link", name="Workspace settings").click()
    expect(page.get_by_role("heading", name="Workspace settings")).to_be_visible()
    page.get_by_role("button", name="New organisation workspace").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Name").fill(workspace)
    dialog.get_by_label("Description").fill("The imaging lab")
    check_accessibility(page, "60-settings-new-workspace")
    screenshot(page, "60-settings-new-workspace")
    dialog.get_by_role("button", name="Create workspace").click()
    # The new workspace is chosen in the header, and the page shows it.
    expect(page.get_by_label("Workspace", exact=True)).to_have_value(workspace)
    expect(page.locator(".page-head")).to_contain_text(f"{workspace} · organisation · your role: Owner")

    # Members: add, change the role, see the owner cannot be left without one.
    page.get_by_label("Username").fill(colleague)
    page.get_by_label("Role", exact=True).select_option("developer")
    page.get_by_role("button", name="Add member").click()
    members = page.get_by_role("table", name=f"Members of {workspace}")
    expect(members.get_by_role("row").filter(has_text=colleague)).to_be_visible()
    expect(members.get_by_label(f"Role of {colleague}")).to_have_value("developer")
    members.get_by_label(f"Role of {colleague}").select_option("maintainer")
    expect(members.get_by_role("row").filter(has_text=colleague).get_by_role("status")).to_have_text("Saved")
    members.get_by_label(f"Role of {owner}").select_option("reader")
    expect(members.get_by_role("alert")).to_contain_text("at least one owner")
    expect(members.get_by_label(f"Role of {owner}")).to_have_value("owner")  # what the server kept
    check_accessibility(page, "61-settings-members")
    screenshot(page, "61-settings-members")
    with Api.connect(ui_server, owner, PASSWORD) as api:
        roles = {m["username"]: m["role"] for m in api.call("GET", f"/workspaces/{workspace}/members")}
    assert roles == {owner: "owner", colleague: "maintainer"}

    # Teams: create one, add a member, give it a role on the whole workspace.
    open_section(page, "Teams")
    expect(page.get_by_text("No teams yet")).to_be_visible()
    page.get_by_label("Team name").fill("builders")
    page.get_by_label("Description").fill("Build the tools")
    page.get_by_role("button", name="Create team").click()
    team = page.get_by_role("article", name="builders")
    team.get_by_label("Username").fill(colleague)
    team.get_by_role("button", name="Add to team builders").click()
    expect(team.get_by_role("list", name="Members of team builders")).to_contain_text(colleague)
    team.get_by_label("Role on the whole workspace").select_option("developer")
    expect(team.get_by_role("status")).to_have_text("Saved")
    check_accessibility(page, "62-settings-teams")
    screenshot(page, "62-settings-teams")

    # Robots: create one, give it reader, make a token: shown once, and it works.
    repository = f"{workspace}/tool"
    push_internal(ui_server, owner, repository, "v1")
    open_section(page, "Robot accounts")
    page.get_by_label("Robot name").fill("ci")
    page.get_by_role("button", name="Create robot").click()
    robot = page.get_by_role("article", name="ci")
    expect(robot).to_contain_text(f"{workspace}+ci")
    expect(robot).to_contain_text("none yet: it can do nothing")
    robot.get_by_label("Role", exact=True).select_option("reader")
    expect(robot).to_contain_text("Reader on the whole workspace")
    robot.get_by_role("button", name="New token for ci").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Name").fill("pipeline")
    dialog.get_by_role("button", name="Create token").click()
    expect(dialog.get_by_role("heading", name="Robot token created")).to_be_visible()
    secret = dialog.locator(".copy code").inner_text()
    assert secret
    expect(dialog.get_by_role("button", name="Copy robot token")).to_be_enabled()
    check_accessibility(page, "63-settings-robot-token")
    screenshot(page, "63-settings-robot-token")
    dialog.get_by_role("button", name="Done").click()
    expect(robot.get_by_role("table", name=f"Tokens of {workspace}+ci")).to_contain_text("pipeline")
    expect(page.get_by_text(secret)).to_have_count(0)  # never shown again
    screenshot(page, "64-settings-robots")
    check_accessibility(page, "64-settings-robots")
    with oci_as(ui_server, f"{workspace}+ci", secret) as oci:
        assert oci.get_manifest(repository, "v1").status_code == 200


def test_repository_visibility_permissions_policy_and_credentials(
    page: Page, admin_api: Api, ui_server: RunningRegistry
) -> None:
    owner = new_user(admin_api, "keeper")
    guest = new_user(admin_api, "guest")
    repository = f"{owner}/aligner"
    push_internal(ui_server, owner, repository, "v1")
    sign_in(page, owner, PASSWORD)
    page.goto("/workspaces?section=repositories")
    expect(page.get_by_role("heading", name="Repositories", level=2, exact=True)).to_be_visible()
    expect(page.get_by_label("New repositories are")).to_have_value("private")
    visibility = page.get_by_label(f"Visibility of {repository}")
    expect(visibility).to_have_value("private")
    with oci_as(ui_server, None) as anonymous:
        assert anonymous.get_manifest(repository, "v1").status_code in (401, 404)
        visibility.select_option("public")
        row = page.get_by_role("row").filter(has_text=repository)
        expect(row.get_by_role("status")).to_have_text("Saved")
        expect(row).to_contain_text("Anyone may pull")
        assert anonymous.get_manifest(repository, "v1").status_code == 200
    # The repository's visibility is its image's: the catalog shows it to anonymous callers too.
    shown = httpx.get(f"{ui_server.url}/api/v1/images/{repository}", timeout=30)
    assert shown.json()["visibility"] == "public", shown.text
    screenshot(page, "65-settings-repositories")
    check_accessibility(page, "65-settings-repositories")
    visibility.select_option("private")
    expect(page.get_by_role("row").filter(has_text=repository)).to_contain_text(
        "Members and people given access"
    )

    # A user's grant on one repository, for some days; then revoked.
    page.get_by_role("button", name=f"Permissions on {repository}").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("The workspace has no teams")).to_be_visible()
    dialog.get_by_label("Username").fill(guest)
    dialog.get_by_label("May").select_option("pull")
    dialog.get_by_label("For (days)").fill("3")
    dialog.get_by_role("button", name="Give access").click()
    grants = dialog.get_by_role("table", name=f"Users' grants on {repository}")
    expect(grants.get_by_role("row").filter(has_text=guest)).to_contain_text("Pull")
    with oci_as(ui_server, guest, PASSWORD) as oci:
        assert oci.get_manifest(repository, "v1").status_code == 200
    check_accessibility(page, "66-settings-permissions")
    screenshot(page, "66-settings-permissions")
    grants.get_by_role("button", name=f"Revoke the grant of {guest}").click()
    expect(dialog.get_by_text("No user holds a grant")).to_be_visible()
    dialog.get_by_role("button", name="Close", exact=True).last.click()

    # The amd64 policy.
    open_section(page, "Catalog policy")
    policy = page.get_by_label("Require linux/amd64 in every new version")
    expect(policy).not_to_be_checked()
    policy.check()
    expect(page.get_by_role("status")).to_contain_text("versions without linux/amd64 are refused")
    with Api.connect(ui_server, owner, PASSWORD) as api:
        assert api.call("GET", f"/workspaces/{owner}/catalog-policy") == {"require_amd64": True}
    screenshot(page, "67-settings-policy")
    check_accessibility(page, "67-settings-policy")

    # Immutable tags: a bad pattern is shown next to its field; then v* except v*-dev is kept.
    open_section(page, "Immutable tags")
    patterns = page.get_by_label("Immutable tags (patterns, separated by commas)")
    patterns.fill("v/1")
    page.get_by_role("button", name="Save rules").click()
    expect(page.locator("#tags-patterns-error")).to_contain_text("tag pattern 'v/1'")
    patterns.fill("v*")
    page.get_by_label("Exceptions (stay movable)").fill("v*-dev")
    page.get_by_role("button", name="Save rules").click()
    expect(page.get_by_role("status")).to_contain_text("tags matching v* are immutable except v*-dev")
    with oci_as(ui_server, owner, PASSWORD) as oci:
        other = oci_manifest()
        oci.push_blobs(repository, other.blobs)
        moved = oci.put_manifest(repository, "v1", other)
        assert moved.status_code == 403, moved.text
        assert oci.put_manifest(repository, "v1-dev", other).status_code == 201
    screenshot(page, "67b-settings-immutable-tags")
    check_accessibility(page, "67b-settings-immutable-tags")

    # Registry credentials: set, listed without the secret, deleted.
    open_section(page, "Registry credentials")
    expect(page.get_by_text("No registry credentials")).to_be_visible()
    page.get_by_label("Registry", exact=True).fill("quay.io")
    page.get_by_label("Kind").select_option("quay")
    page.get_by_label("Username").fill("robot$lab")
    page.get_by_label("Password or token").fill("s3cret-never-shown")
    page.get_by_role("button", name="Save credentials").click()
    expect(page.get_by_role("status")).to_contain_text("Saved for quay.io")
    table = page.get_by_role("table", name=f"Registry credentials of {owner}")
    expect(table.get_by_role("row").nth(1)).to_contain_text("robot$lab")
    expect(table.get_by_role("row").nth(1)).to_contain_text("Quay")
    expect(table.get_by_role("row").nth(1)).to_contain_text("kept, never shown")
    expect(page.get_by_label("Password or token")).to_have_value("")
    assert "s3cret-never-shown" not in page.content()
    check_accessibility(page, "68-settings-credentials")
    screenshot(page, "68-settings-credentials")

    # A registry profile with its kind and TLS settings: ECR names the key pair's fields; a CA
    # bundle that is not PEM is refused at the field; unchecked TLS shows in the table.
    page.get_by_label("Registry", exact=True).fill("reg.lab.example.org:5000")
    page.get_by_label("Kind").select_option("ecr")
    expect(page.get_by_label("Access key id")).to_be_visible()
    expect(page.get_by_label("AWS region")).to_be_visible()
    check_accessibility(page, "68b-settings-registry-profile-ecr")
    page.get_by_label("Kind").select_option("distribution")
    page.get_by_label("CA bundle (PEM, optional)").fill("not a certificate")
    page.get_by_role("button", name="Save credentials").click()
    expect(page.get_by_text("not PEM certificates")).to_be_visible()
    page.get_by_label("CA bundle (PEM, optional)").fill("")
    page.get_by_label("Check the registry's TLS certificate").uncheck()
    page.get_by_role("button", name="Save credentials").click()
    expect(page.get_by_role("status")).to_contain_text("Saved for reg.lab.example.org:5000")
    row = table.get_by_role("row", name="reg.lab.example.org:5000")
    expect(row).to_contain_text("HTTPS, certificate not checked")
    expect(row).to_contain_text("anonymous")
    check_accessibility(page, "68b-settings-registry-profiles")
    screenshot(page, "68b-settings-registry-profiles")
    row.get_by_role("button", name="Delete the credentials for reg.lab.example.org:5000").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(table.get_by_role("row", name="reg.lab.example.org:5000")).to_have_count(0)
    table.get_by_role("button", name="Delete the credentials for quay.io").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page.get_by_text("No registry credentials")).to_be_visible()


def test_a_reader_sees_what_they_may_not_change_disabled_with_the_reason(
    page: Page, admin_api: Api, ui_server: RunningRegistry
) -> None:
    owner = new_user(admin_api, "head")
    reader = new_user(admin_api, "reader")
    workspace = unique("shared")
    with Api.connect(ui_server, owner, PASSWORD) as api:
        api.create_workspace(workspace)
        api.call("PUT", f"/workspaces/{workspace}/members/{reader}", json={"role": "reader"})
    sign_in(page, reader, PASSWORD)
    page.get_by_label("Workspace", exact=True).select_option(workspace)
    page.get_by_role("link", name="Workspace settings").click()
    expect(page.locator(".page-head")).to_contain_text("your role: Reader")
    expect(
        page.get_by_text("Only owners add, change and remove members; you are a reader here.")
    ).to_be_visible()
    expect(page.get_by_role("button", name="Add member")).to_be_disabled()
    expect(page.get_by_label("Username")).to_be_disabled()
    expect(page.get_by_label(f"Role of {owner}")).to_be_disabled()
    expect(page.get_by_role("button", name=f"Remove {owner}")).to_be_disabled()
    expect(page.get_by_role("button", name="Leave")).to_be_enabled()  # anyone may leave
    check_accessibility(page, "69-settings-reader")
    screenshot(page, "69-settings-reader")

    open_section(page, "Teams")
    expect(
        page.get_by_text("Only owners create, change and delete teams; you are a reader here.")
    ).to_be_visible()
    expect(page.get_by_role("button", name="Create team")).to_be_disabled()
    open_section(page, "Robot accounts")
    expect(
        page.get_by_text("Only maintainers and owners see robot accounts; you are a reader here.")
    ).to_be_visible()
    open_section(page, "Catalog policy")
    expect(page.get_by_label("Require linux/amd64 in every new version")).to_be_disabled()
    expect(page.get_by_text("Only owners change the catalog policy; you are a reader here.")).to_be_visible()
    open_section(page, "Immutable tags")
    expect(page.get_by_label("Immutable tags (patterns, separated by commas)")).to_be_disabled()
    expect(page.get_by_role("button", name="Save rules")).to_be_disabled()
    expect(
        page.get_by_text("Only owners change which tags are immutable; you are a reader here.")
    ).to_be_visible()
    open_section(page, "Registry credentials")
    expect(page.get_by_text("Only maintainers and owners see and set registry credentials")).to_be_visible()
    open_section(page, "Repositories")
    expect(page.get_by_label("New repositories are")).to_be_disabled()
    screenshot(page, "70-settings-reader-repositories")
    check_accessibility(page, "70-settings-reader-repositories")

    # A narrow window: the sections stack, every control stays reachable.
    open_section(page, "Members")
    page.set_viewport_size({"width": 420, "height": 900})
    expect(page.get_by_role("button", name="Leave")).to_be_visible()
    expect(page.get_by_role("link", name="Registry credentials")).to_be_visible()
    screenshot(page, "76-settings-narrow")
    check_accessibility(page, "76-settings-narrow")

    # Leaving takes the user back to their own workspace.
    page.get_by_role("button", name="Leave").click()
    page.get_by_role("dialog").get_by_role("button", name="Leave").click()
    expect(page.get_by_label("Workspace", exact=True)).to_have_value(reader)
    expect(page.locator(".page-head")).to_contain_text("your role: Owner")
