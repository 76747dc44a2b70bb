"""``GET /api/v1/users`` (admins) pages in name order after ``last=`` and searches name, full
name and email with ``q=``, any case, in the database; its numbers are bounded; others are
refused. ``dockyard user list`` reads every page."""

from __future__ import annotations

import pytest

from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api, unique
from tests.support.servers import RunningRegistry


def test_users_page_in_name_order_and_search_name_full_name_and_email(
    token_registry: RunningRegistry,
) -> None:
    prefix = unique("pager")
    names = sorted(f"{prefix}-{i:02d}" for i in range(7))
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as admin:
        for name in names:
            admin.create_user(name)
        admin.call("PATCH", f"/users/{names[3]}", json={"full_name": "Rosalind Franklin"})
        admin.call("PATCH", f"/users/{names[5]}", json={"email": "RFranklin@example.org"})

        first = admin.call("GET", "/users", params={"q": prefix, "limit": 3})
        assert [u["username"] for u in first] == names[:3]
        second = admin.call("GET", "/users", params={"q": prefix, "limit": 3, "last": first[-1]["username"]})
        assert [u["username"] for u in second] == names[3:6]
        third = admin.call("GET", "/users", params={"q": prefix, "limit": 3, "last": second[-1]["username"]})
        assert [u["username"] for u in third] == names[6:]  # shorter than limit: the last page

        # Any case, in the username, the full name or the email; LIKE wildcards are literal.
        found = admin.call("GET", "/users", params={"q": "FRANKLIN"})
        assert {u["username"] for u in found} >= {names[3], names[5]}
        assert all(
            "franklin" in " ".join([u["username"], u["full_name"] or "", u["email"] or ""]).lower()
            for u in found
        )
        assert admin.call("GET", "/users", params={"q": prefix.upper()[:-1] + "%"}) == []
        # Without a search, the admin and the new users are all there, in name order.
        everyone = [u["username"] for u in admin.call("GET", "/users", params={"limit": 1000})]
        assert everyone == sorted(everyone)
        assert set(names) | {ADMIN} <= set(everyone)


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "1001"},
        {"limit": "NaN"},
        {"limit": "1e3"},
        {"q": "x" * 300},
        {"last": "a\x00b"},
    ],
)
def test_out_of_bounds_paging_is_a_clear_problem(
    token_registry: RunningRegistry, params: dict[str, str]
) -> None:
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as admin:
        response = admin.http.get("/users", params=params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["detail"]


def test_only_admins_list_users(token_registry: RunningRegistry) -> None:
    someone = unique("someone")
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as admin:
        admin.create_user(someone)
    with Api.connect(token_registry, someone, PASSWORD) as api:
        response = api.http.get("/users", params={"q": ADMIN})
    assert response.status_code == 403
    assert "admins" in response.json()["detail"]
