"""The image page shows what is attached to a version (#18): a badge on the version ("signature attached ·
2 attestations") and, in the version's details, each signature and attestation with the tag
cosign pushed it as or "OCI referrer"; none of them is listed as a version."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.support.identity import PASSWORD, Api, oci_as
from tests.support.oci import Blob, artifact, oci_manifest
from tests.support.servers import RunningRegistry
from tests.ui.conftest import check_accessibility, screenshot, sign_in
from tests.ui.data import new_user, push_internal, wait_status

pytestmark = pytest.mark.clients

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
IN_TOTO = "application/vnd.in-toto+json"


def test_a_signed_and_attested_version_shows_a_badge_and_the_list(
    page: Page, admin_api: Api, ui_server: RunningRegistry
) -> None:
    user = new_user(admin_api, "signed")
    name = f"{user}/pipeline"
    digest = push_internal(ui_server, user, name, "3.0")
    wait_status(ui_server, user, name, "3.0", "available")
    with oci_as(ui_server, user, PASSWORD) as oci:
        served = oci.get_manifest(name, "3.0")
        subject = {
            "mediaType": served.headers["content-type"].split(";", 1)[0],
            "digest": digest,
            "size": len(served.content),
        }
        signature = oci_manifest(layers=[Blob(b'{"critical": {}}', SIMPLE_SIGNING)])
        tag = f"sha256-{digest.split(':', 1)[1]}.sig"
        assert oci.push(name, signature, tag).status_code == 201
        for n in range(2):
            attestation = artifact(subject, IN_TOTO, annotations={"n": str(n)})
            assert oci.push(name, attestation).status_code == 201
    sign_in(page, user, PASSWORD)
    page.goto(f"/images/{name}")
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    card = page.get_by_role("article", name="3.0")
    expect(card.get_by_test_id("attached")).to_have_text("signature attached · 2 attestations")
    attached = card.locator("ul.attached > li")
    expect(attached).to_have_count(3)
    expect(attached.filter(has_text="signature")).to_contain_text(f"tag {tag}")
    expect(attached.filter(has_text="attestation")).to_have_count(2)
    expect(attached.filter(has_text="attestation").first).to_contain_text("OCI referrer")
    expect(page.get_by_role("article")).to_have_count(1)  # the signature is no version
    screenshot(page, "18-image-signed")
    check_accessibility(page, "18-image-signed")
