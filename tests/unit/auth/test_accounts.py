"""Users and logins: name rules, passwords, personal access tokens, robot logins, refresh tokens."""

from __future__ import annotations

import base64
import hashlib
import time

import pytest
from sqlalchemy import select, update

from dockyard.auth.errors import AuthenticationFailed
from dockyard.auth.policy import Subject
from dockyard.auth.tables import access_tokens, refresh_tokens
from dockyard.errors import Conflict, Invalid, NotFound
from tests.unit.auth.factories import PASSWORD, Env, audit_log, new_user

IP = "192.0.2.10"


async def login_fails(env: Env, username: str, secret: str) -> None:
    with pytest.raises(AuthenticationFailed, match="wrong username or password"):
        await env.accounts.authenticate(username, secret, IP)


# --- creating users -----------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["Alice", "al ice", "-alice", "alice-", "al..ice", "al+ce", "al/ice", "ålice", "", "a" * 65]
)
async def test_a_username_must_be_a_repository_path_component(env: Env, name: str) -> None:
    with pytest.raises(Invalid) as caught:
        await env.accounts.create_user(None, name, PASSWORD)
    message = str(caught.value)
    assert message.startswith(f"username {name[:80]!r} is not valid")
    assert "lowercase letters and digits" in message
    assert "at most 64 characters" in message
    assert "'genomics-lab'" in message  # an example to follow
    assert await env.accounts.list_users() == []


@pytest.mark.parametrize("name", ["api", "v2", "auth", "anonymous"])
async def test_reserved_usernames_are_refused(env: Env, name: str) -> None:
    with pytest.raises(Invalid, match=f"username '{name}' is reserved; choose another"):
        await env.accounts.create_user(None, name, PASSWORD)


@pytest.mark.parametrize("name", ["a", "x9", "alice.b_c-d", "a" * 64])
async def test_valid_usernames(env: Env, name: str) -> None:
    user = await env.accounts.create_user(None, name, PASSWORD)
    assert user.username == name


async def test_a_user_gets_a_private_personal_workspace_they_own(env: Env) -> None:
    alice = await new_user(env, "alice")
    workspace, role = await env.workspaces.get(alice, "alice")
    assert (workspace.kind, workspace.personal_user_id, workspace.default_visibility, role) == (
        "personal",
        alice.id,
        "private",
        "owner",
    )
    [entry] = await audit_log(env, "user.create")
    assert (entry.actor_kind, entry.target, entry.workspace_id) == ("system", "alice", workspace.id)


async def test_a_taken_name_is_refused_whether_a_user_or_a_workspace_holds_it(env: Env) -> None:
    alice = await new_user(env, "alice")
    await env.workspaces.create(alice, "genomics")
    for name in ("alice", "genomics"):
        with pytest.raises(Conflict, match=f"the name '{name}' is taken by a user or a workspace"):
            await env.accounts.create_user(None, name, PASSWORD)
    with pytest.raises(Conflict, match="the name 'alice' is taken by a user or a workspace"):
        await env.workspaces.create(alice, "alice")
    assert [user.username for user in await env.accounts.list_users()] == ["alice"]


async def test_weak_passwords_are_refused(env: Env) -> None:
    with pytest.raises(Invalid, match="a password needs at least 8 characters"):
        await env.accounts.create_user(None, "alice", "short")
    with pytest.raises(Invalid, match="the password must differ from the username"):
        await env.accounts.create_user(None, "longusername", "LongUserName")
    with pytest.raises(NotFound):
        await env.accounts.get_user("alice")
    alice = await new_user(env, "alice")
    with pytest.raises(Invalid, match="at least 8 characters"):
        await env.accounts.update_user(alice, "alice", password="1234567")


# --- password logins ----------------------------------------------------------------


async def test_password_login(env: Env) -> None:
    alice = await new_user(env, "alice")
    subject = await env.accounts.authenticate("alice", PASSWORD, IP)
    assert subject == Subject("user", alice.id, "alice")
    assert subject.scopes is None
    assert subject.token_id is None
    assert (await env.accounts.get_user("alice")).last_login_at is not None
    # the login name is not case sensitive
    assert await env.accounts.authenticate("ALICE", PASSWORD, IP) == subject


async def test_admins_log_in_as_admins(env: Env) -> None:
    await new_user(env, "root", admin=True)
    assert (await env.accounts.authenticate("root", PASSWORD, IP)).is_admin


async def test_wrong_password_and_unknown_user_are_refused_alike(env: Env) -> None:
    await new_user(env, "alice")
    before = env.passwords.verified
    await login_fails(env, "alice", "not the password")
    await login_fails(env, "mallory", PASSWORD)
    # an unknown user costs a password check too (a dummy hash)
    assert env.passwords.verified == before + 2
    failed = await audit_log(env, "login.failed")
    assert [(entry.target, entry.client_ip, entry.actor_kind) for entry in failed] == [
        ("alice", IP, "system"),
        ("mallory", IP, "system"),
    ]


async def test_a_user_without_a_password_cannot_log_in_with_one(env: Env) -> None:
    await env.accounts.create_user(None, "sso-only", None)
    await login_fails(env, "sso-only", "")
    await login_fails(env, "sso-only", PASSWORD)


async def test_a_disabled_user_is_refused_until_enabled(env: Env) -> None:
    root = await new_user(env, "root", admin=True)
    alice = await new_user(env, "alice")
    token = await env.tokens.create_personal(alice, "laptop", ["pull"])
    user = await env.accounts.update_user(root, "alice", disabled=True)
    assert user.disabled
    await login_fails(env, "alice", PASSWORD)
    await login_fails(env, "alice", token.secret)
    assert await env.accounts.from_access_token(token.secret) is None
    await env.accounts.update_user(root, "alice", disabled=False)
    assert (await env.accounts.authenticate("alice", PASSWORD, IP)).id == alice.id
    assert (await env.accounts.authenticate("alice", token.secret, IP)).token_id == token.info.id


async def test_a_new_password_replaces_the_old_one(env: Env) -> None:
    alice = await new_user(env, "alice")
    await env.accounts.update_user(alice, "alice", password="a brand new secret")
    await login_fails(env, "alice", PASSWORD)
    assert (await env.accounts.authenticate("alice", "a brand new secret", IP)).id == alice.id
    [entry] = await audit_log(env, "user.update")
    assert entry.detail == {"changed": ["password"]}


# --- personal access tokens ---------------------------------------------------------


async def test_a_personal_access_token_works_as_the_password_and_carries_its_scopes(env: Env) -> None:
    alice = await new_user(env, "alice")
    token = await env.tokens.create_personal(alice, "laptop", ["push", "pull"], expires_in_days=7)
    assert token.secret.startswith("dyk_")
    assert token.info.prefix == token.secret[:10]
    assert token.info.scopes == ["pull", "push"]
    assert token.info.expires_at is not None
    before = env.passwords.verified
    subject = await env.accounts.authenticate("alice", token.secret, IP)
    assert env.passwords.verified == before  # tokens are looked up by hash, not checked like passwords
    assert subject == Subject(
        "user", alice.id, "alice", False, frozenset({"pull", "push"}), token.info.id, token.info.expires_at
    )
    assert not subject.may_use_api()
    [info] = await env.tokens.list_personal(alice)
    assert info.last_used_at is not None


async def test_a_tokens_last_use_is_recorded_to_the_minute(env: Env) -> None:
    alice = await new_user(env, "alice")
    token = await env.tokens.create_personal(alice, "laptop", ["pull"])

    async def set_last_use(value: float) -> None:
        async with env.db.write() as conn:
            await conn.execute(update(access_tokens).values(last_used_at=value))

    async def last_use() -> float | None:
        [info] = await env.tokens.list_personal(alice)
        return info.last_used_at

    await set_last_use(time.time() - 10)
    recent = await last_use()
    await env.accounts.authenticate("alice", token.secret, IP)
    assert await last_use() == recent  # used 10 s ago: not written again
    await set_last_use(time.time() - 120)
    started = time.time()
    await env.accounts.authenticate("alice", token.secret, IP)
    assert (await last_use() or 0) >= started  # two minutes ago: now
    await set_last_use(time.time() + 3600)  # a clock that went back
    await env.accounts.authenticate("alice", token.secret, IP)
    assert (await last_use() or 0) <= time.time()


async def test_a_token_is_stored_as_the_sha256_of_its_secret_and_checked_without_argon2(env: Env) -> None:
    alice = await new_user(env, "alice")
    token = await env.tokens.create_personal(alice, "laptop", ["pull"])
    assert token.secret.startswith("dyk_")
    assert len(base64.urlsafe_b64decode(token.secret[4:] + "=")) == 32
    async with env.db.read() as conn:
        stored = (await conn.execute(select(access_tokens.c.token_hash, access_tokens.c.prefix))).one()
    assert stored.token_hash == hashlib.sha256(token.secret.encode()).hexdigest()
    assert stored.prefix == token.secret[:10]  # the rest of the secret is nowhere
    checked = env.passwords.verified
    for _ in range(3):
        assert (await env.accounts.authenticate("alice", token.secret, IP)).token_id == token.info.id
    assert env.passwords.verified == checked
    await login_fails(env, "alice", token.secret[:-1] + ("A" if token.secret[-1] != "A" else "B"))


async def test_a_token_with_the_api_scope_may_use_the_api(env: Env) -> None:
    alice = await new_user(env, "alice")
    token = await env.tokens.create_personal(alice, "script", ["api"])
    subject = await env.accounts.authenticate("alice", token.secret, IP)
    assert subject.scopes == frozenset({"api"})
    assert subject.may_use_api()
    assert subject.expires_at is None


async def test_a_token_only_logs_in_its_own_user(env: Env) -> None:
    alice = await new_user(env, "alice")
    await new_user(env, "bob")
    token = await env.tokens.create_personal(alice, "laptop", ["pull"])
    await login_fails(env, "bob", token.secret)
    await login_fails(env, "alice+laptop", token.secret)
    await login_fails(env, "alice", token.secret[:-1] + ("A" if token.secret[-1] != "A" else "B"))


async def test_revoked_and_expired_tokens_are_refused(env: Env) -> None:
    alice = await new_user(env, "alice")
    revoked = await env.tokens.create_personal(alice, "old laptop", ["pull"])
    expired = await env.tokens.create_personal(alice, "ci", ["pull"], expires_in_days=1)
    await env.tokens.revoke_personal(alice, revoked.info.id)
    async with env.db.write() as conn:
        await conn.execute(
            update(access_tokens)
            .where(access_tokens.c.id == expired.info.id)
            .values(expires_at=time.time() - 1)
        )
    # Whoever holds the secret learns why it stopped working (not "wrong username or password").
    for token, why in ((revoked, "this token was revoked on "), (expired, "this token expired on ")):
        for failed in (
            env.accounts.authenticate("alice", token.secret, IP),
            env.accounts.from_access_token(token.secret),
        ):
            with pytest.raises(AuthenticationFailed, match=why):
                await failed
    # Presented with another name, they are just wrong.
    await login_fails(env, "bob", expired.secret)
    assert [info.revoked for info in await env.tokens.list_personal(alice)] == [True, False]


# --- robots -------------------------------------------------------------------------


async def test_robot_login_is_workspace_plus_name_with_a_robot_token(env: Env) -> None:
    olga = await new_user(env, "olga")
    await env.workspaces.create(olga, "lab")
    robot = await env.tokens.create_robot(olga, "lab", "ci")
    assert robot.login == "lab+ci"
    token = await env.tokens.create_robot_token(olga, "lab", "ci", "deploy", ["pull", "push"])
    subject = await env.accounts.authenticate("lab+ci", token.secret, IP)
    assert subject == Subject("robot", robot.id, "lab+ci", False, frozenset({"pull", "push"}), token.info.id)
    await login_fails(env, "olga+ci", token.secret)
    await login_fails(env, "ci", token.secret)
    await login_fails(env, "lab", token.secret)
    user_token = await env.tokens.create_personal(olga, "laptop", ["pull"])
    await login_fails(env, "lab+ci", user_token.secret)
    await login_fails(env, "lab+ci", PASSWORD)


async def test_robot_tokens_never_get_the_api_scope(env: Env) -> None:
    olga = await new_user(env, "olga")
    await env.workspaces.create(olga, "lab")
    await env.tokens.create_robot(olga, "lab", "ci")
    with pytest.raises(Invalid, match="robot tokens are for the registry; they cannot have the 'api' scope"):
        await env.tokens.create_robot_token(olga, "lab", "ci", "deploy", ["pull", "api"])


async def test_disabled_robots_and_revoked_robot_tokens_are_refused(env: Env) -> None:
    olga = await new_user(env, "olga")
    await env.workspaces.create(olga, "lab")
    await env.tokens.create_robot(olga, "lab", "ci")
    first = await env.tokens.create_robot_token(olga, "lab", "ci", "one", ["pull"])
    second = await env.tokens.create_robot_token(olga, "lab", "ci", "two", ["pull"])
    await env.tokens.update_robot(olga, "lab", "ci", disabled=True)
    await login_fails(env, "lab+ci", first.secret)
    await env.tokens.update_robot(olga, "lab", "ci", disabled=False)
    assert (await env.accounts.authenticate("lab+ci", first.secret, IP)).kind == "robot"
    await env.tokens.revoke_robot_token(olga, "lab", "ci", first.info.id)
    with pytest.raises(AuthenticationFailed, match="this token was revoked on "):
        await env.accounts.authenticate("lab+ci", first.secret, IP)
    assert (await env.accounts.authenticate("lab+ci", second.secret, IP)).token_id == second.info.id
    await env.tokens.delete_robot(olga, "lab", "ci")
    await login_fails(env, "lab+ci", second.secret)


# --- refresh tokens -----------------------------------------------------------------


async def refresh_row_expiry(env: Env, secret_owner_id: int | None) -> list[float]:
    async with env.db.read() as conn:
        rows = (
            await conn.execute(
                select(refresh_tokens.c.expires_at).where(refresh_tokens.c.user_id == secret_owner_id)
            )
        ).all()
    return [float(row[0]) for row in rows]


async def test_a_refresh_token_stands_for_its_user(env: Env) -> None:
    alice = await new_user(env, "alice")
    subject = await env.accounts.authenticate("alice", PASSWORD, IP)
    before = time.time()
    secret = await env.accounts.issue_refresh_token(subject, "docker")
    after = time.time()
    assert secret.startswith("dyr_")
    assert await env.accounts.from_refresh_token(secret) == Subject("user", alice.id, "alice")
    [expires_at] = await refresh_row_expiry(env, alice.id)
    assert before + 3600 <= expires_at <= after + 3600  # the env's refresh_token_seconds
    assert await env.accounts.from_refresh_token("dyr_" + "x" * 43) is None
    assert await env.accounts.from_refresh_token(secret[:-2]) is None


async def test_refresh_tokens_end_with_a_password_change(env: Env) -> None:
    alice = await new_user(env, "alice")
    secret = await env.accounts.issue_refresh_token(alice, "docker")
    await env.accounts.update_user(alice, "alice", email="alice@example.org")
    assert await env.accounts.from_refresh_token(secret) is not None
    await env.accounts.update_user(alice, "alice", password="a brand new secret")
    assert await env.accounts.from_refresh_token(secret) is None
    # a new login gets a new one
    assert await env.accounts.from_refresh_token(await env.accounts.issue_refresh_token(alice, "docker"))


async def test_refresh_tokens_end_when_the_user_is_disabled(env: Env) -> None:
    root = await new_user(env, "root", admin=True)
    alice = await new_user(env, "alice")
    secret = await env.accounts.issue_refresh_token(alice, "docker")
    await env.accounts.update_user(root, "alice", disabled=True)
    assert await env.accounts.from_refresh_token(secret) is None
    await env.accounts.update_user(root, "alice", disabled=False)
    assert await env.accounts.from_refresh_token(secret) is None  # revoked, not just refused


async def test_refresh_tokens_expire(env: Env) -> None:
    alice = await new_user(env, "alice")
    secret = await env.accounts.issue_refresh_token(alice, "docker")
    async with env.db.write() as conn:
        await conn.execute(update(refresh_tokens).values(expires_at=time.time() - 1))
    assert await env.accounts.from_refresh_token(secret) is None


async def test_a_refresh_token_from_an_access_token_keeps_its_scopes_and_ends_with_it(env: Env) -> None:
    alice = await new_user(env, "alice")
    # it lasts 864 s, less than the env's refresh token lifetime (an hour)
    token = await env.tokens.create_personal(alice, "laptop", ["pull"], expires_in_days=0.01)
    subject = await env.accounts.authenticate("alice", token.secret, IP)
    secret = await env.accounts.issue_refresh_token(subject, "docker")
    refreshed = await env.accounts.from_refresh_token(secret)
    assert refreshed == subject
    assert refreshed is not None
    assert refreshed.scopes == frozenset({"pull"})
    # it cannot outlive the access token
    assert await refresh_row_expiry(env, alice.id) == [token.info.expires_at]
    await env.tokens.revoke_personal(alice, token.info.id)
    assert await env.accounts.from_refresh_token(secret) is None


async def test_a_robots_refresh_token(env: Env) -> None:
    olga = await new_user(env, "olga")
    await env.workspaces.create(olga, "lab")
    await env.tokens.create_robot(olga, "lab", "ci")
    token = await env.tokens.create_robot_token(olga, "lab", "ci", "deploy", ["pull"])
    subject = await env.accounts.authenticate("lab+ci", token.secret, IP)
    secret = await env.accounts.issue_refresh_token(subject, "containerd")
    assert await env.accounts.from_refresh_token(secret) == subject
    await env.tokens.update_robot(olga, "lab", "ci", disabled=True)
    assert await env.accounts.from_refresh_token(secret) is None


# --- the first admin ----------------------------------------------------------------


async def test_ensure_admin_is_idempotent(env: Env) -> None:
    assert await env.accounts.ensure_admin("admin", PASSWORD)
    assert not await env.accounts.ensure_admin("admin", "another password")
    assert await env.accounts.count_admins() == 1
    assert (await env.accounts.authenticate("admin", PASSWORD, IP)).is_admin
    await login_fails(env, "admin", "another password")
    assert [entry.target for entry in await audit_log(env, "user.create")] == ["admin"]
