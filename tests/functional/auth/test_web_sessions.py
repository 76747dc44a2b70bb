"""Browser sessions of the web UI, as the API sees them: ``POST /api/v1/session`` signs in with
a password and sets an HttpOnly, SameSite=Strict cookie; the cookie authenticates reads; a
change needs the ``X-Dockyard-Web`` header too (a cross-site form cannot send it); signing out
revokes the session; the session is one of the user's tokens, revocable there."""

from __future__ import annotations

import httpx
import pytest

from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, Api, unique
from tests.support.servers import RunningRegistry

WEB = {"X-Dockyard-Web": "1"}


@pytest.fixture
def user(token_registry: RunningRegistry) -> str:
    with Api.connect(token_registry, ADMIN, ADMIN_PASSWORD) as admin:
        name = unique("web")
        admin.create_user(name)
    return name


def _browser(registry: RunningRegistry) -> httpx.Client:
    return httpx.Client(base_url=f"{registry.url}/api/v1", timeout=30)


def test_signing_in_sets_a_session_cookie_that_authenticates(
    token_registry: RunningRegistry, user: str
) -> None:
    with _browser(token_registry) as browser:
        signed = browser.post("/session", json={"username": user, "password": PASSWORD}, headers=WEB)
        assert signed.status_code == 201, signed.text
        assert signed.json()["user"]["username"] == user
        cookie = signed.headers["set-cookie"]
        assert cookie.startswith("dockyard_session=")
        for attribute in ("HttpOnly", "SameSite=strict", "Path=/"):
            assert attribute.lower() in cookie.lower(), cookie
        assert "secure" not in cookie.lower()  # plain HTTP here; set over HTTPS
        assert browser.get("/session").json()["user"]["username"] == user
        assert browser.get("/user").json()["username"] == user
        # The session is one of the user's tokens, listed like the others.
        assert [t["name"] for t in browser.get("/user/tokens").json()] == ["web session"]


def test_a_wrong_password_is_refused_without_a_cookie_or_a_browser_dialog(
    token_registry: RunningRegistry, user: str
) -> None:
    with _browser(token_registry) as browser:
        refused = browser.post("/session", json={"username": user, "password": "wrong-password"}, headers=WEB)
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"
        assert "set-cookie" not in refused.headers
        # No Basic challenge for the UI's own calls: the browser would open its password dialog.
        assert "www-authenticate" not in refused.headers
        anonymous = browser.get("/session", headers=WEB)
        assert anonymous.status_code == 401
        assert "www-authenticate" not in anonymous.headers
        # Scripts still get the challenge that tells them how to authenticate.
        assert browser.get("/session").headers["www-authenticate"] == 'Basic realm="dockyard"'


def test_a_change_by_cookie_needs_the_web_header(token_registry: RunningRegistry, user: str) -> None:
    with _browser(token_registry) as browser:
        browser.post(
            "/session", json={"username": user, "password": PASSWORD}, headers=WEB
        ).raise_for_status()
        forged = browser.post("/user/tokens", json={"name": "forged", "scopes": ["pull"]})
        assert forged.status_code == 403
        assert "X-Dockyard-Web".lower() in forged.json()["detail"].lower()
        made = browser.post("/user/tokens", json={"name": "mine", "scopes": ["pull"]}, headers=WEB)
        assert made.status_code == 201, made.text
        names = sorted(t["name"] for t in browser.get("/user/tokens").json())
        assert names == ["mine", "web session"]


def test_signing_out_revokes_the_session(token_registry: RunningRegistry, user: str) -> None:
    with _browser(token_registry) as browser:
        browser.post(
            "/session", json={"username": user, "password": PASSWORD}, headers=WEB
        ).raise_for_status()
        secret = browser.cookies["dockyard_session"]
        out = browser.delete("/session", headers=WEB)
        assert out.status_code == 204
        assert 'dockyard_session=""' in out.headers["set-cookie"] or "Max-Age=0" in out.headers["set-cookie"]
    with _browser(token_registry) as replay:
        replay.cookies.set("dockyard_session", secret)
        ended = replay.get("/session", headers=WEB)
        assert ended.status_code == 401
        assert ended.json()["detail"] == "your session has ended; sign in again"
    with Api.connect(token_registry, user, PASSWORD) as api:
        (session,) = api.call("GET", "/user/tokens")
        assert session["revoked"] is True


def test_signing_out_with_a_token_does_not_revoke_that_token(
    token_registry: RunningRegistry, user: str
) -> None:
    with Api.connect(token_registry, user, PASSWORD) as api:
        secret = api.call("POST", "/user/tokens", 201, json={"name": "cli", "scopes": ["api"]})["secret"]
    with httpx.Client(base_url=f"{token_registry.url}/api/v1", timeout=30) as cli:
        headers = {"Authorization": f"Bearer {secret}"}
        assert cli.delete("/session", headers=headers).status_code == 204
        assert cli.get("/user", headers=headers).status_code == 200


def test_a_token_made_in_a_session_is_not_capped_at_the_session(
    token_registry: RunningRegistry, user: str
) -> None:
    with _browser(token_registry) as browser:
        signed = browser.post("/session", json={"username": user, "password": PASSWORD}, headers=WEB).json()
        made = browser.post(
            "/user/tokens", json={"name": "ci", "scopes": ["pull"], "expires_in_days": 30}, headers=WEB
        ).json()
        assert made["info"]["expires_at"] - made["info"]["created_at"] == pytest.approx(30 * 86400, abs=60)
        # The session itself still ends when it was said to.
        assert browser.get("/session", headers=WEB).json()["expires_at"] == pytest.approx(
            signed["expires_at"]
        )
