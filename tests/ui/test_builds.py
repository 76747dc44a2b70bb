"""Docker Images (issue 14, screens 6 and 7): the tiles of a workspace's build definitions and
the editor, with real builds. The UI tests' Dockyard builds with its own worker (buildah),
as ``dockyard serve`` does by default; the base image is the busybox test image, pushed to
the workspace first (there is no internet). Screenshots 30-49.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import FilePayload, Locator, Page, expect

from tests.support.builds import Team, new_team
from tests.support.clients import Skopeo
from tests.support.identity import PASSWORD, Api
from tests.support.images import build_test_images
from tests.support.servers import RunningRegistry
from tests.ui.conftest import check_accessibility, screenshot, sign_in

pytestmark = pytest.mark.clients

# A build's wait for its worker, buildah's start and the push, on a loaded machine.
BUILD_TIMEOUT = 240_000


@pytest.fixture(scope="module")
def team(ui_server: RunningRegistry, tmp_path_factory: pytest.TempPathFactory) -> Team:
    """An organisation with an owner, a developer and a reader, and its busybox base image."""
    images = build_test_images(tmp_path_factory.mktemp("images"))
    return new_team(ui_server, images, Skopeo(tmp_path_factory.mktemp("skopeo")))


def open_images(page: Page, user: str, workspace: str) -> None:
    """Sign in, choose ``workspace`` in the header, open Docker Images from the navigation."""
    sign_in(page, user, PASSWORD)
    page.get_by_label("Workspace", exact=True).select_option(workspace)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Docker Images").click()
    expect(page.get_by_role("heading", name="Docker Images", level=1)).to_be_visible()


def tile(page: Page, name: str) -> Locator:
    return page.get_by_role("listitem").filter(has=page.get_by_role("link", name=name, exact=True))


def dockerfile(page: Page) -> Locator:
    return page.get_by_label("Dockerfile", exact=True)


def save(page: Page) -> None:
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("#save-state")).to_have_text("Saved")


def current_status(page: Page) -> Locator:
    return page.locator(".build-current h3 .badge")


def build_log(page: Page) -> Locator:
    return page.get_by_role("log", name=re.compile(r"^Build log of build #\d+$"))


def test_a_build_from_the_editor_streams_its_log_turns_the_tile_green_and_an_edit_turns_it_orange(
    page: Page, team: Team
) -> None:
    open_images(page, team.owner, team.workspace)
    expect(page.get_by_role("heading", name="No Docker images yet")).to_be_visible()
    screenshot(page, "30-builds-empty")
    check_accessibility(page, "30-builds-empty")

    page.get_by_role("button", name="New image").first.click()
    dialog = page.get_by_role("dialog", name="New image")
    dialog.get_by_label("Name").fill("greeter")
    dialog.get_by_label("Description").fill("Says hello from a file")
    screenshot(page, "31-builds-new-image")
    check_accessibility(page, "31-builds-new-image")
    dialog.get_by_role("button", name="Create", exact=True).click()
    name = f"{team.workspace}/greeter"
    expect(page.get_by_role("heading", name=name, level=1)).to_be_visible()
    expect(page).to_have_url(re.compile(f"/builds/{name}$"))
    expect(page.locator(".page-head .badge")).to_have_text("Not built")
    expect(page.get_by_role("button", name="Save", exact=True)).to_be_disabled()  # nothing to save yet

    # The context's files: added, replaced, and one removed after a confirmation.
    added: list[FilePayload] = [
        {"name": "greeting.txt", "mimeType": "text/plain", "buffer": b"hello, first\n"},
        {"name": "extra.txt", "mimeType": "text/plain", "buffer": b"not needed\n"},
    ]
    page.get_by_label("Add files").set_input_files(added)
    files = page.get_by_role("table", name="Files of the build context")
    expect(files.get_by_role("row")).to_have_count(3)
    page.get_by_label("Replace greeting.txt").set_input_files(
        {"name": "greeting.txt", "mimeType": "text/plain", "buffer": b"hello from the uploaded file\n"}
    )
    expect(files.get_by_role("row", name=re.compile("greeting.txt"))).to_contain_text("29 B")
    page.get_by_role("button", name="Remove extra.txt").click()
    page.get_by_role("dialog", name="Remove this file?").get_by_role("button", name="Remove").click()
    expect(files.get_by_role("row")).to_have_count(2)

    # A first build that runs until it is cancelled: its line shows while it runs.
    dockerfile(page).fill(f"FROM {team.base}\nRUN echo sleeping now && /bin/busybox sleep 600\n")
    expect(page.locator(".code-shown .tok-keyword").first).to_have_text("FROM")  # highlighted
    expect(page.locator(".code-gutter span")).to_have_count(3)  # numbered lines
    expect(page.get_by_role("button", name="Build", exact=True)).to_be_disabled()
    expect(page.locator("#build-reason")).to_contain_text("save your changes first")
    screenshot(page, "32-editor-local-folder")
    check_accessibility(page, "32-editor-local-folder")
    save(page)
    page.get_by_role("button", name="Build", exact=True).click()
    expect(build_log(page)).to_contain_text("sleeping now", timeout=BUILD_TIMEOUT)
    expect(current_status(page)).to_have_text("Running")
    screenshot(page, "33-build-running")
    check_accessibility(page, "33-build-running")
    page.get_by_role("button", name="Cancel build").click()
    expect(current_status(page)).to_have_text("Cancelled", timeout=BUILD_TIMEOUT)
    expect(build_log(page)).to_contain_text(f"[dockyard] cancelled by {team.owner}")
    expect(page.locator(".page-head .badge")).to_have_text("Not built")

    # The real build: lines stream in (no reload), coloured output is drawn in colour.
    dockerfile(page).fill(
        f"FROM {team.base}\n"
        "COPY greeting.txt /greeting.txt\n"
        'RUN for i in 1 2 3; do echo "counting $i"; done && c=32 && '
        '/bin/busybox printf "\\033[${c}mgreen%s\\033[0m\\n" " text"\n'
        'CMD ["/bin/cat", "/greeting.txt"]\n'
    )
    save(page)
    page.get_by_role("button", name="Build", exact=True).click()
    log = build_log(page)
    expect(log).to_contain_text("counting 3", timeout=BUILD_TIMEOUT)
    expect(log.locator(".ansi-2", has_text="green text")).to_be_visible()
    expect(log).not_to_contain_text("[32m")
    expect(log).to_contain_text("[dockyard] build succeeded: sha256:", timeout=BUILD_TIMEOUT)
    expect(current_status(page)).to_have_text("Succeeded")
    expect(page.locator(".page-head .badge")).to_have_text("Built")
    expect(page.locator(".facts dd").nth(2)).to_contain_text(team.owner)  # built by
    screenshot(page, "34-build-succeeded")
    page.get_by_role("button", name="Refresh").click()  # reads the log again, from the top
    expect(log).to_contain_text("[dockyard] build succeeded: sha256:")
    expect(log.locator(".log-line").first).to_contain_text("[dockyard]")

    # The history: both builds, newest first; a row opens to its log.
    history = page.get_by_role("table", name="Build history")
    rows = history.locator("tbody > tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("Succeeded")
    expect(rows.nth(1)).to_contain_text("Cancelled")
    rows.nth(1).get_by_role("button", name=re.compile("^Show log")).click()
    expect(page.get_by_role("log", name=re.compile(r"^Log of build #\d+$"))).to_contain_text("sleeping now")
    screenshot(page, "35-build-history")
    check_accessibility(page, "35-build-history")

    page.get_by_role("link", name="← Docker Images").click()
    greeter = tile(page, "greeter")
    expect(greeter.locator(".badge")).to_have_text("Built")
    expect(greeter.locator(".badge")).to_have_class(re.compile("badge-ok"))  # green
    expect(greeter).to_contain_text("Says hello from a file")
    screenshot(page, "36-builds-tile-built")
    check_accessibility(page, "36-builds-tile-built")

    # An edit saved after the build: the definition is modified, the tile turns orange.
    greeter.get_by_role("link", name="greeter").click()
    area = dockerfile(page)
    area.press("Control+End")
    area.type("LABEL edited=yes\n")
    expect(page.locator("#save-state")).to_have_text("Unsaved changes")
    save(page)
    expect(page.locator(".page-head .badge")).to_have_text("Modified")
    # The change history shows the lines the edit added.
    page.get_by_text(re.compile(r"^All changes \(\d+\)$")).click()
    page.get_by_text("Dockerfile changed: show the lines").first.click()
    expect(page.get_by_label("Dockerfile changes").first).to_contain_text("+LABEL edited=yes")
    screenshot(page, "37-editor-modified")
    check_accessibility(page, "37-editor-modified")
    page.get_by_role("link", name="← Docker Images").click()
    expect(tile(page, "greeter").locator(".badge")).to_have_text("Modified")
    expect(tile(page, "greeter").locator(".badge")).to_have_class(re.compile("badge-warn"))  # orange
    screenshot(page, "38-builds-tile-modified")


def test_build_is_disabled_with_the_reason_for_a_developer_who_may_still_save(
    page: Page, team: Team, ui_server: RunningRegistry
) -> None:
    with Api.connect(ui_server, team.owner, PASSWORD) as api:
        body = {"workspace": team.workspace, "name": "notes", "dockerfile": f"FROM {team.base}\n"}
        name = api.call("POST", "/builds", 201, json=body)["name"]
    open_images(page, team.developer, team.workspace)
    notes = tile(page, "notes")
    expect(notes.locator(".badge")).to_have_text("Not built")
    expect(notes.locator(".badge")).to_have_class(re.compile("badge-bad"))  # red
    expect(notes.get_by_role("button", name=f"Delete {name}")).to_be_disabled()  # maintainers delete
    screenshot(page, "40-builds-developer")
    check_accessibility(page, "40-builds-developer")

    notes.get_by_role("link", name="notes").click()
    build = page.get_by_role("button", name="Build", exact=True)
    expect(build).to_be_disabled()
    reason = page.locator("#build-reason")
    expect(reason).to_contain_text(f"only owners of workspace '{team.workspace}'")
    expect(reason).to_contain_text(team.owner)  # whom to ask
    page.get_by_label("Description").fill("Field notes, edited by a developer")
    save(page)
    expect(build).to_be_disabled()
    page.get_by_label("Name", exact=True).fill("field-notes")  # a rename
    save(page)
    renamed = f"{team.workspace}/field-notes"
    expect(page.get_by_role("heading", name=renamed, level=1)).to_be_visible()
    expect(page).to_have_url(re.compile(f"/builds/{renamed}$"))
    expect(page.get_by_label("Description")).to_have_value("Field notes, edited by a developer")
    screenshot(page, "41-editor-developer")
    check_accessibility(page, "41-editor-developer")

    # The Dockerfile editor by keyboard: Tab indents, Escape then Tab moves on.
    area = dockerfile(page)
    area.focus()
    area.press("Control+End")
    area.press("Tab")
    expect(area).to_have_value(f"FROM {team.base}\n  ")
    area.press("Escape")
    area.press("Tab")
    expect(area).not_to_be_focused()

    # The git context's fields, as a developer switches to it (not saved).
    page.get_by_label("Git repository").check()
    expect(page.get_by_label("Repository URL")).to_be_visible()
    page.get_by_label("Repository URL").fill("https://git.example.org/lab/notes.git")
    page.get_by_label("Branch, tag or commit").fill("v1.2")
    page.get_by_label("Folder with the Dockerfile").fill("docker")
    expect(page.locator("#save-state")).to_have_text("Unsaved changes")
    screenshot(page, "42-editor-git-repository")
    check_accessibility(page, "42-editor-git-repository")


def test_a_reader_sees_the_editor_read_only_and_an_owner_deletes_after_confirming(
    page: Page, team: Team, ui_server: RunningRegistry
) -> None:
    with Api.connect(ui_server, team.owner, PASSWORD) as api:
        body = {"workspace": team.workspace, "name": "scratchpad", "dockerfile": f"FROM {team.base}\n"}
        name = api.call("POST", "/builds", 201, json=body)["name"]
    open_images(page, team.reader, team.workspace)
    expect(page.get_by_role("button", name="New image")).to_be_disabled()
    expect(page.locator("#create-reason")).to_contain_text("developer role")
    tile(page, "scratchpad").get_by_role("link", name="scratchpad").click()
    expect(page.get_by_label("Name", exact=True)).not_to_be_editable()
    expect(dockerfile(page)).not_to_be_editable()
    expect(page.get_by_role("button", name="Save", exact=True)).to_be_disabled()
    expect(page.locator("#save-state")).to_contain_text("this needs the developer role")
    expect(page.get_by_label("Add files")).to_have_count(0)
    screenshot(page, "43-editor-reader")
    check_accessibility(page, "43-editor-reader")

    page.context.clear_cookies()
    open_images(page, team.owner, team.workspace)
    tile(page, "scratchpad").get_by_role("button", name=f"Delete {name}").click()
    confirm = page.get_by_role("dialog", name="Delete this image definition?")
    screenshot(page, "44-builds-delete")
    check_accessibility(page, "44-builds-delete")
    confirm.get_by_role("button", name="Delete").click()
    expect(tile(page, "scratchpad")).to_have_count(0)
    with Api.connect(ui_server, team.owner, PASSWORD) as api:
        api.call("GET", f"/builds/{name}", 404)


def test_the_tiles_and_the_editor_fit_a_narrow_window(
    page: Page, team: Team, ui_server: RunningRegistry
) -> None:
    with Api.connect(ui_server, team.owner, PASSWORD) as api:
        body = {"workspace": team.workspace, "name": "pocket", "dockerfile": f"FROM {team.base}\n"}
        api.call("POST", "/builds", 201, json=body)
    page.set_viewport_size({"width": 420, "height": 900})
    open_images(page, team.owner, team.workspace)
    expect(page.get_by_role("button", name="New image")).to_be_visible()
    screenshot(page, "45-builds-narrow")
    check_accessibility(page, "45-builds-narrow")
    tile(page, "pocket").get_by_role("link", name="pocket").click()
    expect(page.get_by_role("button", name="Build", exact=True)).to_be_enabled()
    expect(dockerfile(page)).to_be_visible()
    screenshot(page, "47-editor-narrow")
    check_accessibility(page, "47-editor-narrow")


def test_a_long_log_follows_live_then_shows_its_end_with_a_link_to_the_whole_log(
    page: Page, team: Team, ui_server: RunningRegistry
) -> None:
    loop = 'RUN i=0; while [ $i -lt 30000 ]; do echo "line $i of a long log"; i=$((i+1)); done\n'
    with Api.connect(ui_server, team.owner, PASSWORD) as api:
        body = {"workspace": team.workspace, "name": "chatty", "dockerfile": f"FROM {team.base}\n{loop}"}
        name = api.call("POST", "/builds", 201, json=body)["name"]
        run = api.call("POST", f"/builds/{name}/runs", 202)
    sign_in(page, team.owner, PASSWORD)
    page.goto(f"/builds/{name}")
    log = build_log(page)
    expect(log).to_contain_text("[dockyard] build succeeded", timeout=BUILD_TIMEOUT)
    expect(log).to_contain_text("line 29999 of a long log")
    # Followed live, the page keeps the last 5000 lines and says how many it left out.
    expect(page.get_by_text(re.compile(r"The first [\d,]+ lines are not shown here"))).to_be_visible()
    expect(log.locator(".log-line")).to_have_count(5000)

    # Opened again once ended, only the log's end is read.
    page.reload()
    log = build_log(page)
    expect(log).to_contain_text("line 29999 of a long log")
    expect(page.get_by_text(re.compile(r"Only the last 524 KB of this \d+ KB log"))).to_be_visible()
    whole = page.get_by_role("link", name="Download the whole log")
    expect(whole).to_have_attribute("href", f"/api/v1/build-runs/{run['id']}/log")
    expect(log).not_to_contain_text("line 0 of a long log")
    screenshot(page, "48-build-long-log")
    check_accessibility(page, "48-build-long-log")


def test_an_unknown_definition_says_so(page: Page, team: Team) -> None:
    sign_in(page, team.owner, PASSWORD)
    page.goto(f"/builds/{team.workspace}/no-such-image")
    expect(page.get_by_role("heading", name="No such image definition")).to_be_visible()
    screenshot(page, "46-editor-not-found")
    check_accessibility(page, "46-editor-not-found")
