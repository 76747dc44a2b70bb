"""Screen 8, Access: a private image that another user requests from its page, a maintainer
approves on /access, and then ``podman pull`` works for that user; a rejection with a note,
and a request withdrawn; notifications on both sides."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.support.archives import entry, tar_of
from tests.support.clients import Podman, containers_login
from tests.support.identity import PASSWORD, Api, oci_as
from tests.support.images import native_architecture
from tests.support.oci import OCI_CONFIG, Blob, encode, oci_manifest, sha256
from tests.support.servers import RunningRegistry
from tests.ui.conftest import check_accessibility, screenshot, sign_in
from tests.ui.data import new_user


@pytest.fixture
def podman(tmp_path: Path) -> Iterator[Podman]:
    tool = Podman(tmp_path / "podman")
    try:
        yield tool
    finally:
        tool.close()


def push_small_image(registry: RunningRegistry, user: str, repository: str, tag: str) -> str:
    """Push a real (pullable) one-file image for this machine's architecture; its config digest."""
    layer = tar_of([entry("hello.txt", b"hello from a private dockyard image\n")])
    config = Blob(
        encode(
            {
                "architecture": native_architecture(),
                "os": "linux",
                "config": {"Cmd": ["/hello.txt"]},
                "rootfs": {"type": "layers", "diff_ids": [sha256(layer)]},
            }
        ),
        OCI_CONFIG,
    )
    manifest = oci_manifest(config, [Blob(gzip.compress(layer, mtime=0))])
    with oci_as(registry, user, PASSWORD) as oci:
        response = oci.push(repository, manifest, tag)
        assert response.status_code == 201, response.text
    return config.digest


def switch_user(page: Page, username: str) -> None:
    page.context.clear_cookies()
    sign_in(page, username, PASSWORD)


def test_a_private_image_is_requested_approved_and_then_pulled_with_podman(
    page: Page, admin_api: Api, ui_server: RunningRegistry, podman: Podman
) -> None:
    owner = new_user(admin_api, "owner")
    requester = new_user(admin_api, "asker")
    repository = f"{owner}/secret-tool"
    config_digest = push_small_image(ui_server, owner, repository, "v1")
    reference = f"{ui_server.host}/{repository}:v1"
    assert "Login Succeeded" in containers_login(podman, ui_server.host, requester, PASSWORD).stdout
    refused = podman("pull", "--quiet", "--tls-verify=false", reference, check=False)
    assert not refused.ok, "a private image was pulled before access was given"

    # The requester finds the image's page and asks for access with a message.
    sign_in(page, requester, PASSWORD)
    page.goto(f"/images/{repository}")
    expect(page.get_by_role("heading", name="You cannot see this image")).to_be_visible()
    page.get_by_label("Message to the maintainers").fill("For the benchmark run next week.")
    page.get_by_role("button", name="Request access").click()
    expect(page.get_by_role("status")).to_contain_text("Request sent")
    screenshot(page, "50-access-request-sent")

    page.get_by_role("link", name="Access").click()
    expect(page.get_by_role("heading", name="Access", exact=True)).to_be_visible()
    mine = page.get_by_role("table", name="Your access requests")
    expect(mine.get_by_role("row").nth(1)).to_contain_text(repository)
    expect(mine.get_by_role("row").nth(1)).to_contain_text("Pending")
    # Everyone maintains their personal workspace: nobody has asked for anything there.
    expect(page.get_by_text("No requests waiting.")).to_be_visible()
    check_accessibility(page, "51-access-requester")
    screenshot(page, "51-access-requester")

    # The owner is notified; the header's notifications lead to the Access page.
    switch_user(page, owner)
    page.get_by_role("button", name="Notifications, 1 unread").click()
    expect(page.get_by_role("region", name="Notifications")).to_contain_text(
        f"New access request for {repository}"
    )
    page.get_by_role("link", name="All requests and notifications").click()
    expect(page).to_have_url(f"{ui_server.url}/access")
    queue = page.get_by_role("table", name="Access requests to answer")
    row = queue.get_by_role("row").filter(has_text=requester)
    expect(row).to_contain_text("For the benchmark run next week.")
    expect(row).to_contain_text("Pull")
    check_accessibility(page, "52-access-queue")
    screenshot(page, "52-access-queue")

    row.get_by_role("button", name=f"Approve {requester} on {repository}").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_label("For (days)")).to_have_value("30")
    dialog.get_by_label("For (days)").fill("7")
    dialog.get_by_label("Note to the requester (optional)").fill("Until the run is over.")
    check_accessibility(page, "53-access-approve")
    screenshot(page, "53-access-approve")
    dialog.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("status")).to_contain_text(f"Approved: {requester} may pull {repository} until")
    expect(page.get_by_text("No requests waiting.")).to_be_visible()
    screenshot(page, "54-access-approved")

    # The requester sees the answer and its note, and marks the notification read.
    switch_user(page, requester)
    page.goto("/access")
    answer = page.get_by_role("table", name="Your access requests").get_by_role("row").nth(1)
    expect(answer).to_contain_text("Approved")
    expect(answer).to_contain_text(f"by {owner}")
    expect(answer).to_contain_text("Until the run is over.")
    notes = page.locator(".note-list li")
    expect(notes.first).to_contain_text(f"Your request for {repository} was approved until")
    expect(page.get_by_role("heading", name="Notifications 1 unread")).to_be_visible()
    screenshot(page, "55-access-answered")
    notes.first.get_by_role("button", name="Mark read").click()
    expect(page.get_by_role("heading", name="Notifications", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Mark all read")).to_be_disabled()
    check_accessibility(page, "55-access-answered")

    # And now the real client pulls it.
    image_id = podman.pull(reference)
    assert image_id == config_digest.removeprefix("sha256:")


def test_a_rejection_carries_its_note_and_a_pending_request_can_be_withdrawn(
    page: Page, admin_api: Api, ui_server: RunningRegistry
) -> None:
    owner = new_user(admin_api, "keeper")
    requester = new_user(admin_api, "hopeful")
    for name in ("alpha", "beta"):
        push_small_image(ui_server, owner, f"{owner}/{name}", "v1")
    with Api.connect(ui_server, requester, PASSWORD) as api:
        api.call("POST", "/access-requests", 201, json={"repository": f"{owner}/alpha", "action": "push"})
        api.call("POST", "/access-requests", 201, json={"repository": f"{owner}/beta", "message": "please"})

    sign_in(page, owner, PASSWORD)
    page.goto("/access")
    queue = page.get_by_role("table", name="Access requests to answer")
    expect(queue.get_by_role("row")).to_have_count(3)
    queue.get_by_role("button", name=f"Reject {requester} on {owner}/alpha").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Why (the requester reads this)").fill("Push is for the lab's members only.")
    check_accessibility(page, "56-access-reject")
    screenshot(page, "56-access-reject")
    dialog.get_by_role("button", name="Reject").click()
    expect(page.get_by_role("status")).to_contain_text(f"Rejected {requester}'s request for {owner}/alpha")
    expect(queue.get_by_role("row")).to_have_count(2)
    # The decided ones are one filter away.
    page.get_by_label("Show").select_option("rejected")
    expect(queue.get_by_role("row").nth(1)).to_contain_text("Rejected")
    expect(queue.get_by_role("row").nth(1)).to_contain_text("Push is for the lab's members only.")

    switch_user(page, requester)
    page.goto("/access")
    mine = page.get_by_role("table", name="Your access requests")
    alpha = mine.get_by_role("row").filter(has_text=f"{owner}/alpha")
    expect(alpha).to_contain_text("Rejected")
    expect(alpha).to_contain_text("Push is for the lab's members only.")
    expect(alpha.get_by_role("button")).to_have_count(0)
    beta = mine.get_by_role("row").filter(has_text=f"{owner}/beta")
    beta.get_by_role("button", name=f"Withdraw the request for {owner}/beta").click()
    expect(beta).to_contain_text("Cancelled")
    expect(beta).to_contain_text("withdrawn")
    expect(page.locator(".note-list li").first).to_contain_text(
        f"Your request for {owner}/alpha was rejected"
    )
    page.get_by_role("button", name="Mark all read").click()
    expect(page.get_by_role("button", name="Mark all read")).to_be_disabled()
    screenshot(page, "57-access-rejected-and-withdrawn")
    check_accessibility(page, "57-access-rejected-and-withdrawn")
