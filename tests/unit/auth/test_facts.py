"""load_facts on a real database: state made through the services, outcome through decide()."""

from __future__ import annotations

import time

from sqlalchemy import update

from dockyard.auth.facts import allowed, load_facts
from dockyard.auth.policy import ANONYMOUS, Decision, Subject
from dockyard.auth.tables import repository_grants
from tests.unit.auth.factories import Env, new_repository, new_user

ALL = frozenset({"pull", "push", "delete"})
PULL_PUSH = frozenset({"pull", "push"})
PULL = frozenset({"pull"})
NOTHING: frozenset[str] = frozenset()


async def actions_on(env: Env, subject: Subject, repository: str) -> frozenset[str]:
    return (await allowed(env.db, subject, repository)).actions


async def lab(env: Env) -> Subject:
    """Workspace 'lab' (owner olga) with lab/public (public) and lab/private, lab/other (private)."""
    olga = await new_user(env, "olga")
    await env.workspaces.create(olga, "lab")
    await new_repository(env, "lab/public", "public")
    await new_repository(env, "lab/private")
    await new_repository(env, "lab/other")
    return olga


async def robot_login(env: Env, owner: Subject, workspace: str, name: str, scopes: list[str]) -> Subject:
    await env.tokens.create_robot(owner, workspace, name)
    token = await env.tokens.create_robot_token(owner, workspace, name, "ci", scopes)
    return await env.accounts.authenticate(f"{workspace}+{name}", token.secret, "10.0.0.1")


async def test_member_roles(env: Env) -> None:
    olga = await lab(env)
    expected = {"reader": PULL, "developer": PULL_PUSH, "maintainer": ALL, "owner": ALL}
    for role, wanted in expected.items():
        member = await new_user(env, f"m-{role}")
        await env.workspaces.set_member(olga, "lab", member.name, role)
        for repository in ("lab/private", "lab/other", "lab/not-yet-pushed"):
            assert await actions_on(env, member, repository) == wanted, (role, repository)
        assert await actions_on(env, member, "lab/public") == wanted
        assert await actions_on(env, member, "elsewhere/app") == NOTHING
    assert await actions_on(env, olga, "lab/private") == ALL


async def test_new_repositories_start_with_the_workspace_default_visibility(env: Env) -> None:
    olga = await new_user(env, "olga")
    await env.workspaces.create(olga, "open", default_visibility="public")
    await env.workspaces.create(olga, "closed")
    await new_repository(env, "open/app")
    await new_repository(env, "closed/app")
    assert await actions_on(env, ANONYMOUS, "open/app") == PULL
    assert await actions_on(env, ANONYMOUS, "closed/app") == NOTHING


async def test_private_and_missing_repositories_are_identical_for_outsiders(env: Env) -> None:
    olga = await lab(env)
    await env.workspaces.create(olga, "open", default_visibility="public")
    otto = await new_user(env, "otto")
    for subject in (ANONYMOUS, otto):
        private = await allowed(env.db, subject, "lab/private")
        assert private == Decision(NOTHING)
        for missing in ("lab/missing", "nowhere/missing", "open/missing"):
            # a public default applies to new repositories only: no pull on what does not exist
            assert await allowed(env.db, subject, missing) == private, (subject, missing)
        assert await actions_on(env, subject, "lab/public") == PULL


async def test_a_missing_workspace_gives_nothing_but_to_admins(env: Env) -> None:
    root = await new_user(env, "root", admin=True)
    otto = await new_user(env, "otto")
    assert await actions_on(env, otto, "nowhere/app") == NOTHING
    assert await actions_on(env, root, "nowhere/app") == ALL
    async with env.db.read() as conn:
        facts = await load_facts(conn, otto, "nowhere/app", time.time())
    assert (facts.workspace_exists, facts.repository_exists) == (False, False)


async def test_the_personal_workspace_belongs_to_its_user(env: Env) -> None:
    alice = await new_user(env, "alice")
    bob = await new_user(env, "bob")
    await new_repository(env, "alice/app")
    assert await actions_on(env, alice, "alice/app") == ALL
    assert await actions_on(env, alice, "alice/new") == ALL
    assert await actions_on(env, bob, "alice/app") == NOTHING
    assert await actions_on(env, bob, "alice/new") == NOTHING


async def test_a_team_repository_role_applies_to_that_repository_only(env: Env) -> None:
    olga = await lab(env)
    tom = await new_user(env, "tom")
    await env.workspaces.create_team(olga, "lab", "auditors")
    await env.workspaces.set_team_member(olga, "lab", "auditors", "tom", True)
    await env.repositories.set_team_role(olga, "lab/private", "auditors", "reader")
    assert await actions_on(env, tom, "lab/private") == PULL
    assert await actions_on(env, tom, "lab/other") == NOTHING
    assert await actions_on(env, tom, "lab/missing") == NOTHING
    await env.repositories.set_team_role(olga, "lab/private", "auditors", "developer")
    assert await actions_on(env, tom, "lab/private") == PULL_PUSH
    await env.repositories.set_team_role(olga, "lab/private", "auditors", None)
    assert await actions_on(env, tom, "lab/private") == NOTHING


async def test_a_team_workspace_role_applies_to_every_repository_of_the_workspace(env: Env) -> None:
    olga = await lab(env)
    await env.workspaces.create(olga, "elsewhere")
    await new_repository(env, "elsewhere/app")
    tina = await new_user(env, "tina")
    await env.workspaces.create_team(olga, "lab", "builders")
    await env.workspaces.set_team_member(olga, "lab", "builders", "tina", True)
    await env.workspaces.set_team_workspace_role(olga, "lab", "builders", "developer")
    for repository in ("lab/private", "lab/other", "lab/missing"):
        assert await actions_on(env, tina, repository) == PULL_PUSH
    assert await actions_on(env, tina, "elsewhere/app") == NOTHING
    # leaving the team (or the workspace) ends the role
    await env.workspaces.set_team_member(olga, "lab", "builders", "tina", False)
    assert await actions_on(env, tina, "lab/private") == NOTHING


async def test_removing_a_member_removes_their_team_roles(env: Env) -> None:
    olga = await lab(env)
    tina = await new_user(env, "tina")
    await env.workspaces.set_member(olga, "lab", "tina", "reader")
    await env.workspaces.create_team(olga, "lab", "builders")
    await env.workspaces.set_team_member(olga, "lab", "builders", "tina", True)
    await env.workspaces.set_team_workspace_role(olga, "lab", "builders", "maintainer")
    assert await actions_on(env, tina, "lab/private") == ALL
    await env.workspaces.remove_member(olga, "lab", "tina")
    assert await actions_on(env, tina, "lab/private") == NOTHING


async def test_robot_permissions_stay_in_their_workspace(env: Env) -> None:
    olga = await lab(env)
    oscar = await new_user(env, "oscar")
    await env.workspaces.create(oscar, "other")
    await new_repository(env, "other/app")
    # a developer on the whole 'other' workspace
    outside = await robot_login(env, oscar, "other", "ci", ["pull", "push"])
    await env.tokens.set_robot_permission(oscar, "other", "ci", None, "developer")
    # a developer on lab/private only
    inside = await robot_login(env, olga, "lab", "pusher", ["pull", "push", "delete"])
    await env.tokens.set_robot_permission(olga, "lab", "pusher", "lab/private", "developer")

    assert await actions_on(env, outside, "other/app") == PULL_PUSH
    assert await actions_on(env, outside, "other/missing") == PULL_PUSH
    for repository in ("lab/private", "lab/other", "lab/missing"):
        assert await allowed(env.db, outside, repository) == Decision(NOTHING), repository
    assert await actions_on(env, outside, "lab/public") == PULL

    assert await actions_on(env, inside, "lab/private") == PULL_PUSH
    assert await actions_on(env, inside, "lab/other") == NOTHING
    assert await actions_on(env, inside, "lab/missing") == NOTHING
    assert await actions_on(env, inside, "other/app") == NOTHING


async def test_a_robot_token_caps_the_robots_role(env: Env) -> None:
    olga = await lab(env)
    puller = await robot_login(env, olga, "lab", "puller", ["pull"])
    await env.tokens.set_robot_permission(olga, "lab", "puller", None, "maintainer")
    assert await actions_on(env, puller, "lab/private") == PULL


async def test_a_robot_never_holds_the_roles_of_the_user_with_the_same_id(env: Env) -> None:
    """Robot and user ids come from different tables: the first of each is 1 in a fresh database."""
    olga = await lab(env)
    ci = await robot_login(env, olga, "lab", "ci", ["pull", "push"])
    assert (ci.kind, ci.id) == ("robot", olga.id)
    assert await actions_on(env, ci, "lab/private") == NOTHING
    assert await actions_on(env, ci, "olga/app") == NOTHING
    assert await actions_on(env, ci, "lab/public") == PULL


async def test_user_grants(env: Env) -> None:
    olga = await lab(env)
    gina = await new_user(env, "gina")
    gus = await new_user(env, "gus")
    until = time.time() + 3600
    await env.repositories.grant_user(olga, "lab/private", "gina", "pull", until)
    await env.repositories.grant_user(olga, "lab/private", "gus", "push", None)
    assert await allowed(env.db, gina, "lab/private") == Decision(PULL, until)
    assert await allowed(env.db, gus, "lab/private") == Decision(PULL_PUSH, None)
    assert await actions_on(env, gina, "lab/other") == NOTHING
    # a new grant replaces the old one
    await env.repositories.grant_user(olga, "lab/private", "gus", "pull", None)
    assert await actions_on(env, gus, "lab/private") == PULL


async def test_revoked_and_expired_grants_are_ignored(env: Env) -> None:
    olga = await lab(env)
    gina = await new_user(env, "gina")
    gus = await new_user(env, "gus")
    await env.repositories.grant_user(olga, "lab/private", "gina", "push", time.time() + 3600)
    await env.repositories.grant_user(olga, "lab/private", "gus", "push", time.time() + 3600)
    assert await actions_on(env, gina, "lab/private") == PULL_PUSH

    await env.repositories.revoke_user(olga, "lab/private", "gina")
    # time passes for gus's grant
    async with env.db.write() as conn:
        await conn.execute(
            update(repository_grants)
            .where(repository_grants.c.user_id == gus.id)
            .values(expires_at=time.time() - 1)
        )
    now = time.time()
    for subject in (gina, gus):
        async with env.db.read() as conn:
            facts = await load_facts(conn, subject, "lab/private", now)
        assert facts.grants == ()
        assert await allowed(env.db, subject, "lab/private") == Decision(NOTHING)
    assert (await env.repositories.permissions(olga, "lab/private")).users == []


async def test_a_grant_ends_for_the_decision_at_its_expiry(env: Env) -> None:
    olga = await lab(env)
    gina = await new_user(env, "gina")
    until = time.time() + 3600
    await env.repositories.grant_user(olga, "lab/private", "gina", "pull", until)
    assert await allowed(env.db, gina, "lab/private", now=until - 1) == Decision(PULL, until)
    assert await allowed(env.db, gina, "lab/private", now=until) == Decision(NOTHING)


async def test_admins_may_do_everything_and_a_pat_caps_them(env: Env) -> None:
    root = await new_user(env, "root", admin=True)
    await lab(env)
    for repository in ("lab/private", "lab/missing", "nowhere/app"):
        assert await actions_on(env, root, repository) == ALL
    token = await env.tokens.create_personal(root, "laptop", ["pull"])
    capped = await env.accounts.authenticate("root", token.secret, None)
    assert capped.is_admin
    assert await actions_on(env, capped, "lab/private") == PULL


async def test_an_approved_access_request_lets_the_requester_pull_until_it_ends(env: Env) -> None:
    olga = await lab(env)
    otto = await new_user(env, "otto")
    request = await env.requests.create(otto, "lab/private", "pull", "for the course")
    assert await actions_on(env, otto, "lab/private") == NOTHING
    _, grant = await env.requests.approve(olga, request.id, expires_in_days=1)
    assert await allowed(env.db, otto, "lab/private") == Decision(PULL, grant.expires_at)
    assert await actions_on(env, otto, "lab/other") == NOTHING
    assert grant.expires_at is not None
    assert await allowed(env.db, otto, "lab/private", now=grant.expires_at) == Decision(NOTHING)
