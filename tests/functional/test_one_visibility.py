"""One access model, end to end against ``dockyard serve`` on SQLite and PostgreSQL: an image's
visibility is its repository's, for its internal versions (pulled over ``/v2`` by skopeo) and
its external ones (read over ``/api/v1``) alike; grants and approved access requests open a
private external image as they open a private repository."""

from __future__ import annotations

import json

import httpx

from tests.support.catalog import CatalogUser, new_user, problem
from tests.support.clients import Skopeo
from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api
from tests.support.images import TestImages
from tests.support.servers import RunningRegistry

DENIED = "denied: requested access to the resource is denied"


def anonymous_get(registry: RunningRegistry, path: str, **params: str) -> httpx.Response:
    return httpx.get(f"{registry.url}/api/v1{path}", params=params, timeout=30)


def test_a_private_external_image_is_seen_after_a_grant_or_an_approved_request(
    token_registry: RunningRegistry,
) -> None:
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as admin:
        owner, outsider = new_user(admin, "owner"), new_user(admin, "outsider")
    with (
        CatalogUser.connect(token_registry, owner) as own,
        CatalogUser.connect(token_registry, outsider) as other,
    ):
        workspace = own.new_workspace("ext")  # private by default
        image = own.register(workspace, "quay.io/lab/tool:1")["image"]
        assert own.image(image)["visibility"] == "private"

        def unseen() -> None:
            assert problem(other.http.get(f"/images/{image}"), 404) == f"image {image!r} not found"
            assert problem(other.http.get(f"/images/{image}/versions/1"), 404) == f"image {image!r} not found"
            assert image not in {row["image"] for row in other.api.call("GET", "/versions")["items"]}
            assert image not in {i["name"] for i in other.images(limit=500)["items"]}

        def seen() -> None:
            assert [v["version"] for v in other.image(image)["versions"]] == ["1"]
            assert other.version(image, "1")["external_reference"] == "quay.io/lab/tool:1"
            rows = other.api.call("GET", "/versions", params={"workspace": workspace})["items"]
            assert [(row["image"], row["version"], row["visibility"]) for row in rows] == [
                (image, "1", "private")
            ]

        unseen()
        own.api.grant(image, outsider)  # a repository grant, as for any private repository
        seen()
        own.api.call("DELETE", "/repository/permissions/users/" + outsider, 204, params={"name": image})
        unseen()

        # An access request, approved by a maintainer, is a grant too.
        asked = other.api.call("POST", "/access-requests", 201, json={"repository": image, "action": "pull"})
        own.api.call("POST", f"/access-requests/{asked['id']}/approve", json={"expires_in_days": 1})
        seen()
        assert anonymous_get(token_registry, f"/images/{image}").status_code == 404


def test_making_an_image_public_opens_skopeo_pulls_and_its_external_versions_to_anonymous_callers(
    token_registry: RunningRegistry, skopeo: Skopeo, test_images: TestImages
) -> None:
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as admin:
        owner = new_user(admin, "owner")
    with CatalogUser.connect(token_registry, owner) as own:
        workspace = own.new_workspace("open")
        image = f"{workspace}/tool"
        ref = f"docker://{token_registry.host}/{image}:v1"
        skopeo.copy(test_images.image_ref, ref, extra=["--dest-creds", f"{owner}:{PASSWORD}"])
        own.wait_inspected(image, "v1")
        own.add_version(image, "quay.io/lab/tool:2", version="ext")

        # Private (the workspace's default): anonymous pulls and reads are refused.
        refused = skopeo("inspect", "--tls-verify=false", ref, check=False)
        assert not refused.ok
        assert DENIED in refused.stderr, refused.stderr
        assert anonymous_get(token_registry, f"/images/{image}").status_code == 404

        # The image's switch: public for /v2 pulls and for the catalog, in one change.
        own.api.call("PUT", f"/images/{image}/visibility", json={"visibility": "public"})
        pulled = skopeo.copy(ref, f"dir:{skopeo.workdir / 'pulled'}")  # no credentials
        assert pulled.ok
        assert json.loads((skopeo.workdir / "pulled" / "manifest.json").read_bytes()) == json.loads(
            test_images.blob(test_images.image.manifest.digest)
        )
        shown = anonymous_get(token_registry, f"/images/{image}").json()
        assert (shown["visibility"], [v["version"] for v in shown["versions"]]) == ("public", ["v1", "ext"])
        listed = anonymous_get(token_registry, "/versions", workspace=workspace).json()["items"]
        assert [(row["version"], row["source"]) for row in listed] == [
            ("ext", "external"),
            ("v1", "internal"),
        ]
        runnable = anonymous_get(token_registry, "/runnable", workspace=workspace).json()
        assert {row["version"] for row in runnable} == {"v1", "ext"}

        # The repository's switch is the same one: private again, for both.
        own.api.set_visibility(image, "private")
        refused = skopeo("inspect", "--tls-verify=false", ref, check=False)
        assert not refused.ok
        assert DENIED in refused.stderr, refused.stderr
        assert anonymous_get(token_registry, f"/images/{image}").status_code == 404
        changes = [e["detail"]["changes"] for e in own.events(image) if e["kind"] == "modified"]
        assert changes == [
            {"visibility": {"before": "private", "after": "public"}},
            {"visibility": {"before": "public", "after": "private"}},
        ]
