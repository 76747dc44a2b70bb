"""The image page: its one visibility (changed there by maintainers, the repository's too);
versions with status, platforms, digest and sizes; the digest-pinned pull command; storage
used; history; downloads allowed or refused with the reason; pinning a moving tag's digest;
and, for an image the user may not see, a request for access."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.support.catalog import Upstreams, start_upstreams
from tests.support.clients import Skopeo
from tests.support.identity import PASSWORD, Api, oci_as, unique
from tests.support.servers import RunningRegistry
from tests.support.upstreams import build_upstream_images
from tests.ui.conftest import check_accessibility, screenshot, sign_in
from tests.ui.data import new_user, push_internal, register_external, wait_status

pytestmark = pytest.mark.clients


@pytest.fixture(scope="module")
def upstreams(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstreams]:
    images = build_upstream_images(tmp_path_factory.mktemp("ui-image-upstream-images"))
    with start_upstreams(tmp_path_factory.mktemp("ui-image-upstreams"), images) as found:
        # A moving tag upstream: "latest" is the amd64 image today.
        Skopeo(tmp_path_factory.mktemp("ui-image-skopeo")).copy(
            f"docker://{found.ref('library/amd')}:v1",
            f"docker://{found.ref('library/amd')}:latest",
            extra=["--preserve-digests"],
        )
        yield found


def test_an_internal_image_shows_its_version_pull_command_history_and_downloads(
    page: Page, admin_api: Api, ui_server: RunningRegistry
) -> None:
    user = new_user(admin_api, "imgpage")
    digest = push_internal(ui_server, user, f"{user}/pipeline", "2.1")
    wait_status(ui_server, user, f"{user}/pipeline", "2.1", "available")
    with Api.connect(ui_server, user, PASSWORD) as api:
        api.call("PATCH", f"/images/{user}/pipeline/versions/2.1", json={"regions": ["eu-west", "us-east"]})
    sign_in(page, user, PASSWORD)
    page.goto(f"/images/{user}/pipeline")
    expect(page.get_by_role("heading", name=f"{user}/pipeline")).to_be_visible()
    card = page.get_by_role("article", name="2.1")
    expect(card.get_by_text("Available")).to_be_visible()
    expect(card.get_by_text("Internal (stored here)")).to_be_visible()
    expect(card.get_by_text("linux/amd64")).to_be_visible()
    expect(card.get_by_text(digest, exact=True)).to_be_visible()
    expect(card.get_by_text(f"docker pull {ui_server.host}/{user}/pipeline@{digest}")).to_be_visible()
    expect(page.get_by_role("list").filter(has_text="Pushed")).to_be_visible()
    # The history says what a change was and what it became.
    modified = page.get_by_role("listitem").filter(has_text="Modified")
    expect(modified).to_contain_text(f"by {user}")
    change = modified.get_by_role("listitem")
    expect(change).to_contain_text("regions:")
    expect(change.locator("del")).to_have_text("none")
    expect(change.locator("ins")).to_have_text("eu-west, us-east")
    download = card.get_by_role("link", name="Download for docker load")
    expect(download).to_be_visible()
    screenshot(page, "18-image-internal")
    check_accessibility(page, "18-image-internal")
    with page.expect_download() as started:
        download.click()
    assert started.value.suggested_filename.endswith(".tar")


def test_an_external_image_refuses_downloads_with_the_reason_and_pins_a_moving_tag(
    page: Page, admin_api: Api, ui_server: RunningRegistry, upstreams: Upstreams
) -> None:
    user = new_user(admin_api, "extpage")
    register_external(ui_server, user, f"{upstreams.ref('library/amd')}:latest")
    sign_in(page, user, PASSWORD)
    page.goto(f"/images/{user}/amd")
    card = page.get_by_role("article", name="latest")
    expect(card.get_by_role("note")).to_contain_text("tag 'latest' moves")
    expect(card.get_by_role("button", name="Download for docker load")).to_be_disabled()
    expect(card.get_by_text("Downloads: external images are pulled from their own registry.")).to_be_visible()
    expect(card.get_by_role("button", name="Pin the digest")).to_have_count(0)  # not verified yet
    screenshot(page, "19-image-external")
    check_accessibility(page, "19-image-external")

    card.get_by_role("button", name=f"Verify {user}/amd:latest").click()
    expect(card.get_by_text("Reachable", exact=True)).to_be_visible()
    page.reload()  # the page shows what the server recorded
    card = page.get_by_role("article", name="latest")
    expect(card.get_by_text("Reachable", exact=True)).to_be_visible()
    screenshot(page, "1b-image-external-verified")
    card.get_by_role("button", name="Pin the digest").click()
    dialog = page.get_by_role("dialog", name="Pin the digest")
    name = dialog.get_by_label("New version name").input_value()
    assert name.startswith("latest-")
    dialog.get_by_role("button", name="Pin").click()
    pinned = page.get_by_role("article", name=name)
    expect(pinned).to_contain_text(f"{upstreams.ref('library/amd')}@sha256:")
    expect(pinned.get_by_role("note")).to_have_count(0)  # a digest does not move


def test_an_image_the_user_may_not_see_offers_a_request_for_access(
    page: Page, admin_api: Api, ui_server: RunningRegistry
) -> None:
    owner = new_user(admin_api, "owner")
    push_internal(ui_server, owner, f"{owner}/secret", "v1")
    stranger = new_user(admin_api, "stranger")
    sign_in(page, stranger, PASSWORD)
    page.goto(f"/images/{owner}/secret")
    expect(page.get_by_role("heading", name="You cannot see this image")).to_be_visible()
    page.get_by_label("Message to the maintainers").fill("for the variant-calling course")
    page.get_by_role("button", name="Request access").click()
    expect(page.get_by_role("status")).to_contain_text("Request sent")
    screenshot(page, "1a-image-request-access")
    check_accessibility(page, "1a-image-request-access")
    with Api.connect(ui_server, owner, PASSWORD) as api:
        (request,) = api.call("GET", "/access-requests", params={"workspace": owner})
    assert request["requester"] == stranger
    assert request["repository"] == f"{owner}/secret"
    assert request["message"] == "for the variant-calling course"


def test_a_maintainer_makes_an_image_and_all_its_versions_public_on_its_page(
    page: Page, admin_api: Api, ui_server: RunningRegistry
) -> None:
    owner, reader = new_user(admin_api, "vis"), new_user(admin_api, "visreader")
    workspace = unique("lab")
    with Api.connect(ui_server, owner, PASSWORD) as api:
        api.create_workspace(workspace)
    image = f"{workspace}/mixed"
    push_internal(ui_server, owner, image, "v1")
    with Api.connect(ui_server, owner, PASSWORD) as api:
        api.call(
            "POST",
            f"/images/{image}/versions",
            201,
            json={"reference": "quay.io/lab/mixed:2", "version": "ext"},
        )
        api.set_member(workspace, reader, "reader")
    anonymous = f"{ui_server.url}/api/v1/images/{image}"
    assert httpx.get(anonymous, timeout=30).status_code == 404

    sign_in(page, owner, PASSWORD)
    page.goto(f"/images/{image}")
    visibility = page.get_by_label("Visibility", exact=True)
    expect(visibility).to_have_value("private")
    expect(page.locator("#image-visibility-means")).to_contain_text(
        "Members of the workspace and people given access"
    )
    expect(page.locator("#image-visibility-means")).to_contain_text("every version, internal and external")
    visibility.select_option("public")
    expect(page.locator(".field-inline").get_by_role("status")).to_have_text("Saved")
    expect(page.locator("#image-visibility-means")).to_contain_text("Anyone may see it and pull it")
    change = page.get_by_role("listitem").filter(has_text="Modified").get_by_role("listitem")
    expect(change).to_contain_text("visibility:")
    expect(change.locator("del")).to_have_text("private")
    expect(change.locator("ins")).to_have_text("public")
    screenshot(page, "1c-image-visibility")
    check_accessibility(page, "1c-image-visibility")
    # Both versions, internal (a /v2 pull) and external (the catalog), are open to anyone now.
    shown = httpx.get(anonymous, timeout=30).json()
    assert (shown["visibility"], [v["version"] for v in shown["versions"]]) == ("public", ["v1", "ext"])
    with oci_as(ui_server, None) as pulling:
        assert pulling.get_manifest(image, "v1").status_code == 200
    # The repository has the same setting (its settings page shows it: tests/ui/test_settings.py).
    with Api.connect(ui_server, owner, PASSWORD) as api:
        assert api.call("GET", "/repository", params={"name": image})["visibility"] == "public"

    # Private again (the UI server is shared: other tests count what anyone sees).
    visibility.select_option("private")
    expect(page.locator("#image-visibility-means")).to_contain_text("Members of the workspace")
    assert httpx.get(anonymous, timeout=30).status_code == 404

    # A reader sees the visibility, with no control to change it.
    page.context.clear_cookies()
    sign_in(page, reader, PASSWORD)
    page.goto(f"/images/{image}")
    expect(page.get_by_text("Visibility: Private", exact=True)).to_be_visible()
    expect(page.get_by_label("Visibility", exact=True)).to_have_count(0)
