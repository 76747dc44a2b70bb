"""Create > Image from a TAR: an archive picked or dropped into the page uploads in chunks
with its progress shown, survives a dropped connection, going offline and a reload (it goes
on from the server's offset, with the same file picked again), and becomes an available
version; a file that is not an image archive is refused in words.

The archives are real ones, built by the tests (tests.support.archives): docker-save and
OCI layouts of random (incompressible) layers, plain, gzip and zstd. Connections are cut by
Playwright's routing (a chunk request fails as a dropped connection does) and by taking the
browser offline; the page's first chunk is 1 MiB, so every archive here takes several.
"""

from __future__ import annotations

import base64
import gzip
import re
from pathlib import Path
from typing import Any

import httpx
import zstandard
from playwright.sync_api import Page, Route, expect

from tests.support.archives import SavedImage, docker_save, oci_archive, random_layer
from tests.support.identity import PASSWORD, Api
from tests.support.servers import RunningRegistry
from tests.ui.conftest import check_accessibility, screenshot, sign_in
from tests.ui.data import new_user

FIRST_CHUNK = 1 << 20  # the page's first chunk: the second starts there
ARCHIVE_CHUNKS = re.compile(r"/api/v1/archives/[0-9a-f-]{36}$")


class ChunkGate:
    """Every chunk (PATCH) of an archive upload the page sends passes here: while ``cut_from``
    is set, a chunk starting at or past it fails as a dropped connection does. Records where
    each chunk that went through started."""

    def __init__(self, page: Page, cut_from: int | None = None) -> None:
        self.cut_from = cut_from
        self.passed: list[int] = []
        self.cut: list[int] = []
        page.route(ARCHIVE_CHUNKS, self._handle)

    def _handle(self, route: Route) -> None:
        request = route.request
        if request.method != "PATCH":
            route.continue_()
            return
        start = int(request.headers["content-range"].split()[1].split("-")[0])
        if self.cut_from is not None and start >= self.cut_from:
            self.cut.append(start)
            route.abort("connectionreset")
            return
        self.passed.append(start)
        route.continue_()


def uploads_of(registry: RunningRegistry, user: str) -> list[dict[str, Any]]:
    with Api.connect(registry, user, PASSWORD) as api:
        found: list[dict[str, Any]] = api.call("GET", "/archives")
        return found


def saved_archive(tag: str, size: int) -> bytes:
    """A docker-save archive of one amd64 image with a random layer of ``size`` bytes."""
    return docker_save([SavedImage([random_layer(size)], [tag])])


def open_upload_page(page: Page) -> None:
    page.get_by_role("button", name="Create", exact=True).click()
    page.get_by_role("menuitem", name="Image from a TAR").click()
    expect(page.get_by_role("heading", name="Image from a TAR")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/repository/upload$"))


def expect_available(page: Page, repository: str, version: str) -> None:
    """The page follows the new version until Dockyard has inspected it: no reload."""
    expect(page.get_by_role("heading", name=f"{repository}:{version}")).to_be_visible()
    expect(page.locator(".saved .badge")).to_have_text("Available", timeout=60_000)
    expect(page.get_by_text("Available: anyone who may see it can pull it now.")).to_be_visible()
    expect(page.locator(".saved .facts")).to_contain_text("linux/amd64")


def test_a_picked_archive_uploads_through_a_dropped_connection_and_becomes_available(
    page: Page, admin_api: Api, ui_server: RunningRegistry, tmp_path: Path
) -> None:
    user = new_user(admin_api, "upload")
    archive = tmp_path / "samtools.tar"
    samtools = SavedImage([random_layer(5 << 20)], ["biocontainers/samtools:1.19"])
    htslib = SavedImage([random_layer(10_000)], ["biocontainers/htslib:1.19.1"])
    archive.write_bytes(docker_save([samtools, htslib]))
    sign_in(page, user, PASSWORD)
    open_upload_page(page)
    expect(page.get_by_label("Upload to workspace")).to_have_value(user)
    page.get_by_label("Upload to workspace").focus()  # the file picker is the next stop
    page.keyboard.press("Tab")
    expect(page.get_by_label("Choose a file")).to_be_focused()
    screenshot(page, "20-upload-start")
    check_accessibility(page, "20-upload-start")

    # The second chunk's connection drops: the page says so, keeps what the server has, and
    # goes on from the server's offset once it can reach it again.
    gate = ChunkGate(page, cut_from=FIRST_CHUNK)
    page.get_by_label("Choose a file").set_input_files(archive)
    lost = page.get_by_role("alert").filter(has_text="Connection lost")
    expect(lost).to_be_visible()
    expect(page.get_by_role("heading", name="samtools.tar")).to_be_visible()
    expect(page.locator(".upload-figures")).to_contain_text(re.compile(r"^1\.0 MB of 5\.3 MB \(19%\)"))
    expect(page.get_by_role("progressbar", name="Upload progress")).to_have_attribute(
        "value", str(FIRST_CHUNK)
    )
    (session,) = uploads_of(ui_server, user)
    assert (session["state"], session["offset"]) == ("receiving", FIRST_CHUNK)
    screenshot(page, "22-upload-connection-lost")
    check_accessibility(page, "22-upload-connection-lost")

    # The page tries again by itself (waiting longer each time, at most 15 s).
    expect(lost.get_by_role("button", name=re.compile("Retry now|Retrying"))).to_be_visible()
    gate.cut_from = None
    expect(page.get_by_role("heading", name="Describe the version")).to_be_visible(timeout=45_000)
    assert gate.passed[0] == 0
    assert gate.cut[0] == FIRST_CHUNK
    assert gate.passed[1] == FIRST_CHUNK, "the upload went on from the server's offset"
    # The archive holds two images: the user picks one, its tag gives the name and version.
    expect(page.get_by_role("group", name=re.compile("It holds 2 images"))).to_be_visible()
    expect(page.get_by_label("Name", exact=True)).to_have_value("samtools")
    expect(page.get_by_label("Version", exact=True)).to_have_value("1.19")
    page.get_by_role("radio", name="biocontainers/htslib:1.19.1").check()
    expect(page.get_by_label("Name", exact=True)).to_have_value("htslib")
    expect(page.get_by_label("Version", exact=True)).to_have_value("1.19.1")
    page.get_by_role("radio", name="biocontainers/samtools:1.19").check()
    expect(page.get_by_label("Name", exact=True)).to_have_value("samtools")
    expect(page.get_by_label("Cluster compatibility")).to_have_count(0)  # tools have none
    screenshot(page, "26-upload-describe")
    check_accessibility(page, "26-upload-describe")

    page.get_by_role("button", name="Save").click()
    expect_available(page, f"{user}/samtools", "1.19")
    screenshot(page, "27-upload-available")
    check_accessibility(page, "27-upload-available")
    assert uploads_of(ui_server, user) == []  # the session has done its work
    page.get_by_role("link", name="Open the image").click()
    expect(page.get_by_role("heading", name=f"{user}/samtools")).to_be_visible()


def drop_files(page: Page, *files: tuple[bytes, str]) -> None:
    """Drop files (data, name) onto the drop zone, as files dragged from the desktop are."""
    transfer = page.evaluate_handle(
        """(files) => {
            const transfer = new DataTransfer();
            for (const [data, name] of files) {
                const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
                transfer.items.add(new File([bytes], name, { type: "application/x-tar" }));
            }
            return transfer;
        }""",
        [[base64.b64encode(data).decode(), name] for data, name in files],
    )
    zone = page.get_by_test_id("dropzone")
    for event in ("dragenter", "dragover", "drop"):
        zone.dispatch_event(event, {"dataTransfer": transfer})


def throttle_uploads(page: Page, bytes_per_second: int) -> None:
    """Chromium sends at most this fast (until the next change of network conditions)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    conditions = {
        "offline": False,
        "latency": 0,
        "downloadThroughput": -1,
        "uploadThroughput": bytes_per_second,
    }
    cdp.send("Network.emulateNetworkConditions", conditions)


def test_a_dropped_archive_waits_while_offline_and_goes_on_when_back_online(
    page: Page, admin_api: Api, ui_server: RunningRegistry
) -> None:
    user = new_user(admin_api, "drop")
    tag = "bench/stream:2024.1"
    layout = gzip.compress(oci_archive([random_layer(4 << 20)], tag), compresslevel=1)
    sign_in(page, user, PASSWORD)
    page.goto("/repository/upload")
    gate = ChunkGate(page, cut_from=3 * FIRST_CHUNK)
    throttle_uploads(page, 1_500_000)
    drop_files(page, (layout, "stream.oci.tar.gz"))

    # While it goes: bytes, speed and the time left.
    expect(page.get_by_role("heading", name="stream.oci.tar.gz")).to_be_visible()
    expect(page.locator(".upload-figures")).to_contain_text(re.compile(r"[0-9.]+ [KM]B/s"))
    expect(page.locator(".upload-figures")).to_contain_text(re.compile(r"about \d+ s left"))
    screenshot(page, "21-upload-progress")
    check_accessibility(page, "21-upload-progress")

    expect(page.get_by_role("alert").filter(has_text="Connection lost")).to_be_visible()
    page.context.set_offline(True)
    page.get_by_role("button", name="Retry now").click()
    expect(page.get_by_role("alert")).to_contain_text("This computer is offline.")
    (session,) = uploads_of(ui_server, user)
    assert session["state"] == "receiving"
    assert session["offset"] == gate.cut[0] >= 3 * FIRST_CHUNK
    screenshot(page, "23-upload-offline")
    check_accessibility(page, "23-upload-offline")

    # Back online, the page goes on by itself from the server's offset.
    gate.cut_from = None
    page.context.set_offline(False)
    expect(page.get_by_role("heading", name="Describe the version")).to_be_visible()
    assert gate.passed[-1] >= session["offset"]
    assert session["offset"] in gate.passed
    expect(page.get_by_text("An OCI archive, gzip-compressed.")).to_be_visible()
    expect(page.get_by_label("Name", exact=True)).to_have_value("stream")
    page.get_by_label("Bench").check()
    page.get_by_label("Cluster compatibility").fill("hpc-a, hpc-b")
    page.get_by_label("Visibility of a new image").select_option("public")
    version_field = page.get_by_label("Version", exact=True)
    version_field.fill("2024.1 oci")  # the server's refusal shows under the field
    page.get_by_role("button", name="Save").click()
    expect(version_field).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#version-error")).to_contain_text("invalid tag '2024.1 oci'")
    version_field.fill("2024.1-oci")
    page.get_by_role("button", name="Save").click()
    expect_available(page, f"{user}/stream", "2024.1-oci")
    expect(page.locator(".saved .facts")).to_contain_text("Bench (hpc-a, hpc-b)")
    with Api.connect(ui_server, user, PASSWORD) as api:
        version = api.call("GET", f"/images/{user}/stream/versions/2024.1-oci")
        shown = api.call("GET", f"/images/{user}/stream")
    assert (version["kind"], version["cluster_compatibility"]) == ("bench", ["hpc-a", "hpc-b"])
    # The new image (and its repository) are public, as chosen: anyone may see it.
    assert shown["visibility"] == "public"
    assert httpx.get(f"{ui_server.url}/api/v1/images/{user}/stream", timeout=30).status_code == 200
    with Api.connect(ui_server, user, PASSWORD) as api:  # the UI server is shared: private again
        api.set_visibility(f"{user}/stream", "private")


def test_a_reload_mid_upload_asks_for_the_same_file_and_goes_on_from_the_server_offset(
    page: Page, admin_api: Api, ui_server: RunningRegistry, tmp_path: Path
) -> None:
    user = new_user(admin_api, "reload")
    data = zstandard.ZstdCompressor(level=1).compress(saved_archive("pipeline:3.2", 5 << 20))
    archive = tmp_path / "pipeline.tar.zst"
    archive.write_bytes(data)
    (tmp_path / "other").mkdir()
    impostor = tmp_path / "other" / "pipeline.tar.zst"  # the same name and size, other bytes
    impostor.write_bytes(data[:-100] + bytes(b ^ 0xFF for b in data[-100:]))
    smaller = tmp_path / "pipeline-old.tar"
    smaller.write_bytes(saved_archive("pipeline:3.1", 2 << 20))
    sign_in(page, user, PASSWORD)
    page.goto("/repository/upload")
    gate = ChunkGate(page)
    throttle_uploads(page, 1_000_000)
    page.get_by_label("Choose a file").set_input_files(archive)

    # A reload while a chunk is on its way: the connection drops in the middle of the chunk's
    # body, and the page loses the file. It finds the upload again and asks for the file.
    figures = page.locator(".upload-figures")
    expect(figures).to_contain_text(re.compile(r"^(1\.[1-9]|[234]\.\d) MB of 5\.\d MB"))
    page.reload()
    expect(page.get_by_role("heading", name="Continue the upload")).to_be_visible()
    (session,) = uploads_of(ui_server, user)
    offset = session["offset"]
    assert session["state"] == "receiving"
    assert FIRST_CHUNK <= offset < len(data)
    shown = page.get_by_role("progressbar", name="Received so far")
    expect(shown).to_have_attribute("value", str(offset))
    expect(
        page.get_by_text(re.compile(r"Dockyard has [\d.]+ MB of it: choose pipeline\.tar\.zst again"))
    ).to_be_visible()
    screenshot(page, "24-upload-pick-again")
    check_accessibility(page, "24-upload-pick-again")

    # Without the address, the upload page lists it among the user's unfinished uploads.
    # (Reached with the keyboard this time.)
    page.get_by_role("link", name="Docker Repository").first.click()
    page.get_by_role("button", name="Create", exact=True).focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("menuitem", name="External image")).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(page.get_by_role("menuitem", name="Image from a TAR")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Image from a TAR")).to_be_visible()
    unfinished = page.get_by_role("listitem").filter(has_text="pipeline.tar.zst")
    expect(unfinished).to_contain_text(re.compile(r"Uploading\s*[\d.]+ MB of 5\.\d MB received"))
    screenshot(page, "29-upload-unfinished")
    check_accessibility(page, "29-upload-unfinished")
    unfinished.get_by_role("link", name="Continue").click()
    expect(page.get_by_role("heading", name="Continue the upload")).to_be_visible()

    # Another file is refused, saying why; the same file goes on from the server's offset.
    sent_before = len(gate.passed)
    picker = page.get_by_label("Choose pipeline.tar.zst")
    picker.set_input_files(smaller)
    expect(page.get_by_role("alert")).to_contain_text("pipeline-old.tar has 2,")
    picker.set_input_files(impostor)
    expect(page.get_by_role("alert")).to_contain_text(
        "pipeline.tar.zst has the name and size of the file you started uploading, but other content"
    )
    screenshot(page, "25-upload-not-the-same-file")
    check_accessibility(page, "25-upload-not-the-same-file")
    assert len(gate.passed) == sent_before  # nothing of the other files was sent
    picker.set_input_files(archive)
    expect(page.get_by_role("heading", name="Describe the version")).to_be_visible()
    assert gate.passed[sent_before] == offset, "the upload went on from the server's offset"
    expect(page.get_by_text("A docker save archive, zstd-compressed.")).to_be_visible()
    page.get_by_role("button", name="Save").click()
    expect_available(page, f"{user}/pipeline", "3.2")


def test_a_file_that_is_not_an_image_archive_is_refused_in_words(
    page: Page, admin_api: Api, ui_server: RunningRegistry
) -> None:
    user = new_user(admin_api, "refused")
    sign_in(page, user, PASSWORD)
    page.goto("/repository/upload")
    drop_files(page, (b"a", "one.tar"), (b"b", "two.tar"))
    expect(page.get_by_role("alert")).to_have_text("Drop one archive at a time.")

    drop_files(page, (b"these are my notes, not an image\n" * 4000, "notes.tar"))
    refusal = page.get_by_role("alert").filter(has_text="Dockyard cannot make an image of this file")
    expect(refusal).to_be_visible()
    expect(page.get_by_text("Dockyard accepts the archives that docker save")).to_be_visible()
    screenshot(page, "28-upload-refused")
    check_accessibility(page, "28-upload-refused")
    page.get_by_role("button", name="Upload another file").click()
    expect(page.get_by_text("Drop a docker save or OCI archive here")).to_be_visible()
    expect(page.get_by_role("heading", name="Unfinished uploads")).to_have_count(0)
    assert uploads_of(ui_server, user) == []
