"""Access requests and notifications page newest first with ``before=`` and ``limit=``, in the
database: a maintainer reads a long queue a page at a time and every request appears exactly
once, with who decided it; a requester pages their notifications the same way."""

from __future__ import annotations

from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api, oci_as, unique
from tests.support.oci import oci_manifest
from tests.support.servers import RunningRegistry

REPOSITORIES = 5


def test_a_long_queue_and_the_notifications_page_newest_first(token_registry: RunningRegistry) -> None:
    owner, asker = unique("owner"), unique("asker")
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as admin:
        admin.create_user(owner)
        admin.create_user(asker)
    names = [f"{owner}/tool-{i}" for i in range(REPOSITORIES)]
    with oci_as(token_registry, owner, PASSWORD) as oci:
        for name in names:
            assert oci.push(name, oci_manifest(), "v1").status_code == 201
    with Api.connect(token_registry, asker, PASSWORD) as api:
        asked = [
            api.call("POST", "/access-requests", 201, json={"repository": name, "message": "please"})["id"]
            for name in names
        ]
    with Api.connect(token_registry, owner, PASSWORD) as api:
        for request_id in asked[:3]:
            api.call("POST", f"/access-requests/{request_id}/approve", json={"expires_in_days": 1})

        seen: list[dict[str, object]] = []
        before = None
        while True:
            params = {"workspace": owner, "limit": 2} | ({"before": before} if before else {})
            page = api.call("GET", "/access-requests", params=params)
            seen.extend(page)
            if len(page) < 2:
                break
            before = page[-1]["id"]
        assert [r["id"] for r in seen] == sorted(asked, reverse=True)
        decided = {r["id"]: r["decided_by"] for r in seen}
        assert [decided[i] for i in asked] == [owner, owner, owner, None, None]
        assert [r["repository"] for r in seen] == list(reversed(names))

    with Api.connect(token_registry, asker, PASSWORD) as api:
        newest = api.call("GET", "/notifications", params={"limit": 2})
        older = api.call("GET", "/notifications", params={"limit": 2, "before": newest[-1]["id"]})
        everything = api.call("GET", "/notifications")
        assert [n["id"] for n in newest + older] == [n["id"] for n in everything][:4]
        assert len(everything) == 3  # one per approval
        assert len(older) == 1
        mine = api.call("GET", "/access-requests", params={"mine": "true", "limit": 500})
        assert [r["id"] for r in mine] == sorted(asked, reverse=True)
        for bad in ({"limit": 0}, {"limit": 501}, {"before": 0}, {"before": "nan"}):
            refused = api.http.get("/notifications", params=bad)
            assert refused.status_code == 422, (bad, refused.text)
            refused = api.http.get("/access-requests", params=bad)
            assert refused.status_code == 422, (bad, refused.text)
