"""Who may manage what: workspaces, members, teams, robots, tokens, repositories, access requests."""

from __future__ import annotations

import dataclasses
import math
import re
import time

import pytest

from dockyard.auth.errors import AuthenticationFailed
from dockyard.auth.facts import allowed
from dockyard.auth.policy import ANONYMOUS, Subject
from dockyard.errors import Conflict, Forbidden, Invalid, NotFound
from dockyard.tenancy.requests import AccessRequest
from tests.unit.auth.factories import Env, audit_log, new_repository, new_user, visibility_of

OWNER_NEEDED = re.escape("this needs the owner role (or higher) in workspace 'lab'")
MAINTAINER_NEEDED = re.escape("this needs the maintainer role (or higher) in workspace 'lab'")


@dataclasses.dataclass
class Lab:
    """Workspace 'lab' with one member per role, an outsider, an admin and two repositories."""

    owner: Subject
    maintainer: Subject
    developer: Subject
    reader: Subject
    outsider: Subject
    admin: Subject


async def lab(env: Env) -> Lab:
    people = Lab(
        owner=await new_user(env, "olga"),
        maintainer=await new_user(env, "mia"),
        developer=await new_user(env, "dev"),
        reader=await new_user(env, "rita"),
        outsider=await new_user(env, "otto"),
        admin=await new_user(env, "root", admin=True),
    )
    await env.workspaces.create(people.owner, "lab")
    for member, role in (
        (people.maintainer, "maintainer"),
        (people.developer, "developer"),
        (people.reader, "reader"),
    ):
        await env.workspaces.set_member(people.owner, "lab", member.name, role)
    await new_repository(env, "lab/private")
    await new_repository(env, "lab/public", "public")
    return people


async def registry_only(env: Env, user: Subject) -> Subject:
    """The user, logged in with a token that lacks the 'api' scope."""
    token = await env.tokens.create_personal(user, "registry only", ["pull", "push", "delete"])
    return await env.accounts.authenticate(user.name, token.secret, None)


async def robot(env: Env, owner: Subject) -> Subject:
    await env.tokens.create_robot(owner, "lab", "ci")
    await env.tokens.set_robot_permission(owner, "lab", "ci", None, "maintainer")
    token = await env.tokens.create_robot_token(owner, "lab", "ci", "deploy", ["pull", "push", "delete"])
    return await env.accounts.authenticate("lab+ci", token.secret, None)


# --- workspaces and members ---------------------------------------------------------


async def test_owners_and_admins_set_members(env: Env) -> None:
    people = await lab(env)
    newcomer = await new_user(env, "nina")
    for actor in (people.maintainer, people.developer, people.reader, people.outsider):
        with pytest.raises(Forbidden, match=OWNER_NEEDED):
            await env.workspaces.set_member(actor, "lab", "nina", "reader")
    member = await env.workspaces.set_member(people.owner, "lab", "nina", "reader")
    assert (member.username, member.role) == ("nina", "reader")
    await env.workspaces.set_member(people.admin, "lab", "nina", "developer")
    assert (await allowed(env.db, newcomer, "lab/private")).actions == {"pull", "push"}
    members = await env.workspaces.members(people.reader, "lab")
    assert [(m.username, m.role) for m in members] == [
        ("dev", "developer"),
        ("mia", "maintainer"),
        ("nina", "developer"),
        ("olga", "owner"),
        ("rita", "reader"),
    ]
    with pytest.raises(Forbidden, match="this needs the reader role"):
        await env.workspaces.members(people.outsider, "lab")


async def test_member_changes_check_their_input(env: Env) -> None:
    people = await lab(env)
    with pytest.raises(
        Invalid, match="unknown role 'admin'; use one of reader, developer, maintainer, owner"
    ):
        await env.workspaces.set_member(people.owner, "lab", "otto", "admin")
    with pytest.raises(NotFound, match="user 'nobody' not found"):
        await env.workspaces.set_member(people.owner, "lab", "nobody", "reader")
    with pytest.raises(NotFound, match="workspace 'nowhere' not found"):
        await env.workspaces.set_member(people.owner, "nowhere", "otto", "reader")
    with pytest.raises(NotFound, match="'otto' is not a member of 'lab'"):
        await env.workspaces.remove_member(people.owner, "lab", "otto")


async def test_the_last_owner_can_be_neither_removed_nor_demoted(env: Env) -> None:
    people = await lab(env)
    last_owner = "a workspace needs at least one owner; make someone else owner first"
    with pytest.raises(Conflict, match=last_owner):
        await env.workspaces.set_member(people.owner, "lab", "olga", "maintainer")
    with pytest.raises(Conflict, match=last_owner):
        await env.workspaces.remove_member(people.owner, "lab", "olga")
    with pytest.raises(Conflict, match=last_owner):
        await env.workspaces.remove_member(people.admin, "lab", "olga")
    await env.workspaces.set_member(people.owner, "lab", "mia", "owner")
    await env.workspaces.set_member(people.owner, "lab", "olga", "maintainer")
    with pytest.raises(Conflict, match=last_owner):
        await env.workspaces.remove_member(people.maintainer, "lab", "mia")
    roles = {m.username: m.role for m in await env.workspaces.members(people.maintainer, "lab")}
    assert (roles["olga"], roles["mia"]) == ("maintainer", "owner")


async def test_members_may_leave_without_a_role(env: Env) -> None:
    people = await lab(env)
    await env.workspaces.remove_member(people.reader, "lab", "rita")
    assert (await allowed(env.db, people.reader, "lab/private")).actions == frozenset()
    with pytest.raises(Forbidden, match=OWNER_NEEDED):
        await env.workspaces.remove_member(people.developer, "lab", "mia")


async def test_a_personal_workspace_gets_no_members(env: Env) -> None:
    people = await lab(env)
    for actor in (people.owner, people.admin):
        with pytest.raises(
            Conflict, match="a personal workspace has one member, its user; create an organisation"
        ):
            await env.workspaces.set_member(actor, "olga", "otto", "reader")
    with pytest.raises(Forbidden, match="this needs the owner role"):
        await env.workspaces.set_member(people.outsider, "olga", "otto", "reader")


async def test_a_workspace_with_repositories_cannot_be_deleted(env: Env) -> None:
    people = await lab(env)
    with pytest.raises(Conflict, match="workspace 'lab' still holds 2 item"):
        await env.workspaces.delete(people.owner, "lab")
    await env.workspaces.create(people.owner, "empty")
    with pytest.raises(Forbidden, match="this needs the owner role"):
        await env.workspaces.delete(people.outsider, "empty")
    await env.workspaces.delete(people.owner, "empty")
    with pytest.raises(NotFound, match="workspace 'empty' not found"):
        await env.workspaces.get(people.owner, "empty")
    with pytest.raises(Conflict, match="a personal workspace goes with its user"):
        await env.workspaces.delete(people.owner, "olga")


async def test_only_owners_change_workspace_settings(env: Env) -> None:
    people = await lab(env)
    with pytest.raises(Forbidden, match=OWNER_NEEDED):
        await env.workspaces.update(people.maintainer, "lab", default_visibility="public")
    with pytest.raises(Invalid, match="unknown visibility 'secret'; use 'private' or 'public'"):
        await env.workspaces.update(people.owner, "lab", default_visibility="secret")
    updated = await env.workspaces.update(
        people.owner, "lab", description="the lab", default_visibility="public"
    )
    assert (updated.description, updated.default_visibility) == ("the lab", "public")


async def test_workspace_names_follow_the_name_rules(env: Env) -> None:
    people = await lab(env)
    with pytest.raises(Invalid, match="workspace name 'Genomics Lab' is not valid"):
        await env.workspaces.create(people.outsider, "Genomics Lab")
    with pytest.raises(Conflict, match="the name 'lab' is taken"):
        await env.workspaces.create(people.outsider, "lab")
    workspace = await env.workspaces.create(people.outsider, "otto-lab")
    assert workspace.kind == "org"
    assert (await env.workspaces.get(people.outsider, "otto-lab"))[1] == "owner"


async def test_teams_are_managed_by_owners(env: Env) -> None:
    people = await lab(env)
    with pytest.raises(Forbidden, match=OWNER_NEEDED):
        await env.workspaces.create_team(people.maintainer, "lab", "builders")
    team = await env.workspaces.create_team(people.owner, "lab", "builders", "CI people")
    assert (team.name, team.members, team.permissions) == ("builders", [], [])
    with pytest.raises(Conflict, match="workspace 'lab' already has a team 'builders'"):
        await env.workspaces.create_team(people.owner, "lab", "builders")
    with pytest.raises(Invalid, match="teams may hold reader, developer or maintainer; owners are members"):
        await env.workspaces.set_team_workspace_role(people.owner, "lab", "builders", "owner")
    with pytest.raises(NotFound, match="workspace 'lab' has no team 'testers'"):
        await env.workspaces.set_team_member(people.owner, "lab", "testers", "otto", True)
    team = await env.workspaces.set_team_member(people.owner, "lab", "builders", "otto", True)
    team = await env.workspaces.set_team_workspace_role(people.owner, "lab", "builders", "developer")
    assert (team.members, team.permissions) == (["otto"], [(None, "developer")])
    assert [t.name for t in await env.workspaces.teams(people.reader, "lab")] == ["builders"]
    # a team member holds the team's role (without being a member of the workspace)
    assert [t.name for t in await env.workspaces.teams(people.outsider, "lab")] == ["builders"]
    stranger = await new_user(env, "zoe")
    with pytest.raises(Forbidden, match="this needs the reader role"):
        await env.workspaces.teams(stranger, "lab")
    await env.workspaces.delete_team(people.owner, "lab", "builders")
    assert (await allowed(env.db, people.outsider, "lab/private")).actions == frozenset()


# --- who may use the API at all -----------------------------------------------------


async def test_robots_cannot_use_the_api(env: Env) -> None:
    people = await lab(env)
    ci = await robot(env, people.owner)
    assert (await allowed(env.db, ci, "lab/private")).actions == {"pull", "push", "delete"}
    refused = "robot accounts may only pull and push"
    with pytest.raises(Forbidden, match=refused):
        await env.workspaces.create(ci, "robots-own")
    with pytest.raises(Forbidden, match=refused):
        await env.workspaces.set_member(ci, "lab", "otto", "reader")
    with pytest.raises(Forbidden, match=refused):
        await env.tokens.create_personal(ci, "more", ["pull"])
    with pytest.raises(Forbidden, match=refused):
        await env.tokens.create_robot(ci, "lab", "another")
    with pytest.raises(Forbidden, match=refused):
        await env.repositories.set_visibility(ci, "lab/private", "public")
    with pytest.raises(Forbidden, match=refused):
        await env.requests.create(ci, "lab/private", "pull")
    assert await visibility_of(env, "lab/private") == "private"


async def test_a_token_without_the_api_scope_cannot_manage(env: Env) -> None:
    people = await lab(env)
    owner = await registry_only(env, people.owner)
    refused = "this token is limited to the registry; create one with the 'api' scope"
    with pytest.raises(Forbidden, match=refused):
        await env.workspaces.set_member(owner, "lab", "otto", "reader")
    with pytest.raises(Forbidden, match=refused):
        await env.workspaces.delete_team(owner, "lab", "any")
    with pytest.raises(Forbidden, match=refused):
        await env.tokens.create_personal(owner, "more", ["api"])
    with pytest.raises(Forbidden, match=refused):
        await env.tokens.create_robot(owner, "lab", "ci")
    with pytest.raises(Forbidden, match=refused):
        await env.repositories.set_visibility(owner, "lab/private", "public")
    with pytest.raises(Forbidden, match=refused):
        await env.requests.find(owner, workspace="lab")
    # it still pulls, pushes and deletes
    assert (await allowed(env.db, owner, "lab/private")).actions == {"pull", "push", "delete"}

    admin = await registry_only(env, people.admin)
    with pytest.raises(Forbidden, match=refused):
        await env.workspaces.update(admin, "lab", description="changed")


async def test_anonymous_callers_must_sign_in(env: Env) -> None:
    await lab(env)
    with pytest.raises(AuthenticationFailed, match="sign in first"):
        await env.workspaces.create(ANONYMOUS, "mine")
    with pytest.raises(AuthenticationFailed, match="sign in first"):
        await env.requests.create(ANONYMOUS, "lab/private", "pull")


async def test_a_token_cannot_make_a_wider_token(env: Env) -> None:
    people = await lab(env)
    token = await env.tokens.create_personal(people.owner, "api", ["api", "pull"], expires_in_days=2)
    scoped = await env.accounts.authenticate("olga", token.secret, None)
    with pytest.raises(Forbidden, match="a token cannot create a token with more scopes than its own"):
        await env.tokens.create_personal(scoped, "wider", ["pull", "push"])
    narrower = await env.tokens.create_personal(scoped, "narrower", ["pull"], expires_in_days=30)
    # nor one that outlives it
    assert narrower.info.expires_at == token.info.expires_at


async def test_token_input_is_checked(env: Env) -> None:
    people = await lab(env)
    with pytest.raises(
        Invalid, match="token scopes must be among api, delete, pull, push; got \\['admin'\\]"
    ):
        await env.tokens.create_personal(people.owner, "x", ["pull", "admin"])
    with pytest.raises(Invalid, match="got none"):
        await env.tokens.create_personal(people.owner, "x", [])
    with pytest.raises(Invalid, match="a token needs a name of 1 to 100 characters"):
        await env.tokens.create_personal(people.owner, " ", ["pull"])
    # NaN and infinity are refused, and so is a token too short to outlast a registry token.
    for days in (0, 0.001, math.nan, math.inf, 3651):
        with pytest.raises(Invalid, match=r"expires_in_days must be between 0.0014 \(two minutes\) and 3650"):
            await env.tokens.create_personal(people.owner, "x", ["pull"], expires_in_days=days)


async def test_users_manage_only_their_own_tokens(env: Env) -> None:
    people = await lab(env)
    token = await env.tokens.create_personal(people.owner, "laptop", ["pull"])
    with pytest.raises(NotFound, match=f"you have no token {token.info.id}"):
        await env.tokens.revoke_personal(people.outsider, token.info.id)
    assert await env.tokens.list_personal(people.outsider) == []
    assert [info.name for info in await env.tokens.list_personal(people.owner)] == ["laptop"]
    assert (await env.accounts.authenticate("olga", token.secret, None)).token_id == token.info.id


# --- robots -------------------------------------------------------------------------


async def test_owners_manage_robots_and_maintainers_see_them(env: Env) -> None:
    people = await lab(env)
    with pytest.raises(Forbidden, match=OWNER_NEEDED):
        await env.tokens.create_robot(people.maintainer, "lab", "ci")
    created = await env.tokens.create_robot(people.owner, "lab", "ci", "builds")
    with pytest.raises(Conflict, match="workspace 'lab' already has a robot 'ci'"):
        await env.tokens.create_robot(people.owner, "lab", "ci")
    assert [r.login for r in await env.tokens.robots(people.maintainer, "lab")] == ["lab+ci"]
    with pytest.raises(Forbidden, match=MAINTAINER_NEEDED):
        await env.tokens.robots(people.developer, "lab")
    with pytest.raises(Forbidden, match=OWNER_NEEDED):
        await env.tokens.set_robot_permission(people.maintainer, "lab", "ci", None, "reader")
    with pytest.raises(Forbidden, match=OWNER_NEEDED):
        await env.tokens.create_robot_token(people.maintainer, "lab", "ci", "t", ["pull"])
    with pytest.raises(Invalid, match="a robot may hold reader, developer, maintainer; not 'owner'"):
        await env.tokens.set_robot_permission(people.owner, "lab", "ci", None, "owner")
    robot_info = await env.tokens.set_robot_permission(people.owner, "lab", "ci", "lab/private", "developer")
    assert robot_info.permissions == [("lab/private", "developer")]
    assert robot_info.id == created.id


async def test_a_robot_cannot_get_rights_on_another_workspace(env: Env) -> None:
    people = await lab(env)
    await env.workspaces.create(people.outsider, "other")
    await new_repository(env, "other/app")
    await env.tokens.create_robot(people.owner, "lab", "ci")
    with pytest.raises(NotFound, match="workspace 'lab' has no repository 'other/app'"):
        await env.tokens.set_robot_permission(people.owner, "lab", "ci", "other/app", "reader")
    # nor can the other workspace's owner hand out rights to lab's robot
    with pytest.raises(NotFound, match="workspace 'other' has no robot 'ci'"):
        await env.tokens.set_robot_permission(people.outsider, "other", "ci", None, "developer")


# --- repositories -------------------------------------------------------------------


async def test_maintainers_set_visibility_and_others_learn_nothing(env: Env) -> None:
    people = await lab(env)
    with pytest.raises(Forbidden, match=MAINTAINER_NEEDED):
        await env.repositories.set_visibility(people.developer, "lab/private", "public")
    for name in ("lab/private", "lab/missing", "nowhere/app"):
        with pytest.raises(NotFound) as caught:
            await env.repositories.set_visibility(people.outsider, name, "public")
        assert str(caught.value) == f"repository {name!r} not found"
    with pytest.raises(Invalid, match="unknown visibility 'hidden'"):
        await env.repositories.set_visibility(people.maintainer, "lab/private", "hidden")
    info = await env.repositories.set_visibility(people.maintainer, "lab/private", "public")
    assert (info.visibility, info.actions) == ("public", ["delete", "pull", "push"])
    assert (await allowed(env.db, ANONYMOUS, "lab/private")).actions == {"pull"}


async def test_repository_listing_shows_what_the_caller_may_pull(env: Env) -> None:
    people = await lab(env)
    assert [r.name for r in await env.repositories.visible(people.outsider)] == ["lab/public"]
    assert [r.name for r in await env.repositories.visible(people.reader)] == ["lab/private", "lab/public"]
    with pytest.raises(NotFound, match="repository 'lab/private' not found"):
        await env.repositories.get(people.outsider, "lab/private")
    assert (await env.repositories.get(people.reader, "lab/private")).actions == ["pull"]


async def test_repository_permissions_are_for_maintainers(env: Env) -> None:
    people = await lab(env)
    await env.workspaces.create_team(people.owner, "lab", "auditors")
    with pytest.raises(Forbidden, match=MAINTAINER_NEEDED):
        await env.repositories.set_team_role(people.developer, "lab/private", "auditors", "reader")
    with pytest.raises(Forbidden, match=MAINTAINER_NEEDED):
        await env.repositories.grant_user(people.developer, "lab/private", "otto", "pull", None)
    with pytest.raises(NotFound, match="repository 'lab/private' not found"):
        await env.repositories.permissions(people.outsider, "lab/private")
    with pytest.raises(Invalid, match="a team may hold reader, developer or maintainer on a repository"):
        await env.repositories.set_team_role(people.maintainer, "lab/private", "auditors", "owner")
    with pytest.raises(Invalid, match="a grant gives 'pull' or 'push'"):
        await env.repositories.grant_user(people.maintainer, "lab/private", "otto", "delete", None)
    # A grant that ends within a minute would be left out of every token: refused, not confirmed.
    for ends in (time.time() - 1, time.time() + 30):
        with pytest.raises(Invalid, match="the grant must last more than 60 seconds"):
            await env.repositories.grant_user(people.maintainer, "lab/private", "otto", "pull", ends)
    for ends in (math.inf, math.nan):
        with pytest.raises(Invalid, match="omit it for a permanent grant"):
            await env.repositories.grant_user(people.maintainer, "lab/private", "otto", "pull", ends)
    await env.repositories.set_team_role(people.maintainer, "lab/private", "auditors", "reader")
    grant = await env.repositories.grant_user(people.maintainer, "lab/private", "otto", "pull", None)
    listed = await env.repositories.permissions(people.maintainer, "lab/private")
    assert listed.teams == [("auditors", "reader")]
    assert listed.users == [grant]
    await env.repositories.revoke_user(people.maintainer, "lab/private", "otto")
    with pytest.raises(NotFound, match="'otto' holds no grant on 'lab/private'"):
        await env.repositories.revoke_user(people.maintainer, "lab/private", "otto")


# --- access requests ------------------------------------------------------------------


def as_seen(request: AccessRequest) -> AccessRequest:
    """A request without what necessarily differs between two of them."""
    return dataclasses.replace(request, id=0, repository="", created_at=0.0)


async def test_a_request_for_a_missing_repository_looks_like_one_for_a_private_repository(env: Env) -> None:
    people = await lab(env)
    private = await env.requests.create(people.outsider, "lab/private", "pull", "for the course")
    missing = await env.requests.create(people.outsider, "lab/ghost", "pull", "for the course")
    assert as_seen(private) == as_seen(missing)
    assert (private.status, private.workspace, private.requester, private.decided_by) == (
        "pending",
        "lab",
        "otto",
        None,
    )
    assert [as_seen(r) for r in await env.requests.find(people.outsider, mine=True)] == [as_seen(private)] * 2
    assert as_seen(await env.requests.get(people.outsider, missing.id)) == as_seen(private)
    # asking twice is refused alike
    for name, first in (("lab/private", private), ("lab/ghost", missing)):
        with pytest.raises(
            Conflict, match=f"you already have a pending request \\({first.id}\\) for '{name}'"
        ):
            await env.requests.create(people.outsider, name, "pull")
    # workspace names are not secret
    with pytest.raises(NotFound, match="workspace 'nowhere' not found"):
        await env.requests.create(people.outsider, "nowhere/app", "pull")


async def test_approving_a_request_for_a_missing_repository_is_a_clear_conflict(env: Env) -> None:
    people = await lab(env)
    request = await env.requests.create(people.outsider, "lab/ghost", "pull")
    with pytest.raises(Conflict) as caught:
        await env.requests.approve(people.maintainer, request.id)
    assert str(caught.value) == (
        "repository 'lab/ghost' does not exist (yet); reject the request, or approve it once the "
        "repository has been pushed"
    )
    assert (await env.requests.get(people.outsider, request.id)).status == "pending"
    await new_repository(env, "lab/ghost")
    approved, _ = await env.requests.approve(people.maintainer, request.id)
    assert approved.status == "approved"


async def test_request_input_is_checked(env: Env) -> None:
    people = await lab(env)
    with pytest.raises(Invalid, match="'lab/Bad' is not a repository name \\(like 'genomics/samtools'\\)"):
        await env.requests.create(people.outsider, "lab/Bad", "pull")
    with pytest.raises(Invalid, match="ask for 'pull' or 'push'"):
        await env.requests.create(people.outsider, "lab/private", "delete")
    with pytest.raises(Invalid, match="keep the message under 2,000 characters"):
        await env.requests.create(people.outsider, "lab/private", "pull", "x" * 2001)


async def test_approve_creates_a_grant_and_notifies(env: Env) -> None:
    people = await lab(env)
    request = await env.requests.create(people.outsider, "lab/private", "pull", "please")
    created = await env.requests.notifications(people.maintainer)
    assert [(n.kind, n.payload) for n in created] == [
        (
            "access_request.created",
            {"request_id": request.id, "repository": "lab/private", "requester": "otto", "action": "pull"},
        )
    ]
    assert [n.kind for n in await env.requests.notifications(people.owner)] == ["access_request.created"]
    assert await env.requests.notifications(people.developer) == []
    assert [r.id for r in await env.requests.find(people.maintainer, workspace="lab", status="pending")] == [
        request.id
    ]

    before = time.time()
    approved, grant = await env.requests.approve(
        people.maintainer, request.id, action="push", expires_in_days=7, note="ok"
    )
    after = time.time()
    assert (approved.status, approved.decided_by, approved.decision_note, approved.action) == (
        "approved",
        "mia",
        "ok",
        "pull",
    )
    assert grant.expires_at is not None
    assert before + 7 * 86400 <= grant.expires_at <= after + 7 * 86400
    assert approved.grant_expires_at == grant.expires_at
    assert (grant.username, grant.action, grant.request_id) == ("otto", "push", request.id)
    decision = await allowed(env.db, people.outsider, "lab/private")
    assert decision.actions == {"pull", "push"}
    assert decision.expires_at == grant.expires_at
    assert (await env.repositories.permissions(people.maintainer, "lab/private")).users == [grant]

    [note] = await env.requests.notifications(people.outsider)
    assert (note.kind, note.read) == ("access_request.approved", False)
    assert note.payload == {
        "request_id": request.id,
        "repository": "lab/private",
        "action": "push",
        "expires_at": grant.expires_at,
        "note": "ok",
    }
    assert await env.requests.mark_read(people.outsider, None) == 1
    assert await env.requests.notifications(people.outsider, unread_only=True) == []

    with pytest.raises(Conflict, match=f"access request {request.id} is already approved"):
        await env.requests.reject(people.maintainer, request.id)


async def test_only_maintainers_decide(env: Env) -> None:
    people = await lab(env)
    request = await env.requests.create(people.outsider, "lab/private", "pull")
    with pytest.raises(Invalid, match="you cannot decide your own request"):
        await env.requests.approve(people.outsider, request.id)
    for actor in (people.developer, people.reader):
        with pytest.raises(NotFound, match=f"access request {request.id} not found"):
            await env.requests.approve(actor, request.id)
        with pytest.raises(NotFound, match=f"access request {request.id} not found"):
            await env.requests.get(actor, request.id)
        with pytest.raises(Forbidden, match=MAINTAINER_NEEDED):
            await env.requests.find(actor, workspace="lab")
    with pytest.raises(NotFound, match="access request 999999 not found"):
        await env.requests.approve(people.maintainer, 999999)
    for days in (0.0, 0.001, 367.0, 1e308, math.inf, math.nan):
        with pytest.raises(Invalid, match="a grant lasts at least two minutes and at most 366 days"):
            await env.requests.approve(people.maintainer, request.id, expires_in_days=days)
    assert (await env.requests.get(people.admin, request.id)).status == "pending"
    approved, _ = await env.requests.approve(people.admin, request.id)
    assert approved.decided_by == "root"


async def test_reject_notifies_the_requester(env: Env) -> None:
    people = await lab(env)
    request = await env.requests.create(people.outsider, "lab/ghost", "push")
    rejected = await env.requests.reject(people.owner, request.id, "not this one")
    assert (rejected.status, rejected.decided_by, rejected.decision_note) == (
        "rejected",
        "olga",
        "not this one",
    )
    [note] = await env.requests.notifications(people.outsider)
    assert (note.kind, note.payload) == (
        "access_request.rejected",
        {"request_id": request.id, "repository": "lab/ghost", "note": "not this one"},
    )
    assert (await allowed(env.db, people.outsider, "lab/private")).actions == frozenset()
    # a new request may follow a decided one
    again = await env.requests.create(people.outsider, "lab/ghost", "pull")
    assert again.status == "pending"


async def test_the_requester_may_cancel(env: Env) -> None:
    people = await lab(env)
    request = await env.requests.create(people.outsider, "lab/private", "pull")
    with pytest.raises(NotFound, match=f"access request {request.id} not found"):
        await env.requests.cancel(people.maintainer, request.id)
    cancelled = await env.requests.cancel(people.outsider, request.id)
    assert cancelled.status == "cancelled"
    with pytest.raises(Conflict, match=f"access request {request.id} is already cancelled"):
        await env.requests.cancel(people.outsider, request.id)
    with pytest.raises(Conflict, match=f"access request {request.id} is already cancelled"):
        await env.requests.approve(people.maintainer, request.id)
    assert (await env.requests.create(people.outsider, "lab/private", "pull")).status == "pending"


# --- the audit log ------------------------------------------------------------------


async def test_every_management_action_is_audited(env: Env) -> None:
    people = await lab(env)
    ip = "203.0.113.5"
    token = await env.tokens.create_personal(people.owner, "laptop", ["pull"], client_ip=ip)
    await env.tokens.revoke_personal(people.owner, token.info.id, client_ip=ip)
    await env.workspaces.update(people.owner, "lab", description="d", client_ip=ip)
    await env.workspaces.set_member(people.owner, "lab", "otto", "reader", client_ip=ip)
    await env.workspaces.remove_member(people.owner, "lab", "otto", client_ip=ip)
    await env.workspaces.create_team(people.owner, "lab", "builders", client_ip=ip)
    await env.workspaces.set_team_member(people.owner, "lab", "builders", "otto", True, client_ip=ip)
    await env.workspaces.set_team_workspace_role(people.owner, "lab", "builders", "reader", client_ip=ip)
    await env.workspaces.set_team_member(people.owner, "lab", "builders", "otto", False, client_ip=ip)
    await env.workspaces.delete_team(people.owner, "lab", "builders", client_ip=ip)
    await env.tokens.create_robot(people.owner, "lab", "ci", client_ip=ip)
    await env.tokens.set_robot_permission(people.owner, "lab", "ci", None, "reader", client_ip=ip)
    robot_token = await env.tokens.create_robot_token(people.owner, "lab", "ci", "t", ["pull"], client_ip=ip)
    await env.tokens.revoke_robot_token(people.owner, "lab", "ci", robot_token.info.id, client_ip=ip)
    await env.tokens.update_robot(people.owner, "lab", "ci", disabled=True, client_ip=ip)
    await env.tokens.delete_robot(people.owner, "lab", "ci", client_ip=ip)
    await env.repositories.set_visibility(people.maintainer, "lab/private", "public", client_ip=ip)
    await env.repositories.grant_user(people.maintainer, "lab/private", "otto", "pull", None, client_ip=ip)
    await env.repositories.revoke_user(people.maintainer, "lab/private", "otto", client_ip=ip)
    first = await env.requests.create(people.outsider, "lab/private", "pull", client_ip=ip)
    await env.requests.approve(people.maintainer, first.id, client_ip=ip)
    second = await env.requests.create(people.outsider, "lab/private", "push", client_ip=ip)
    await env.requests.reject(people.maintainer, second.id, client_ip=ip)
    third = await env.requests.create(people.outsider, "lab/private", "push", client_ip=ip)
    await env.requests.cancel(people.outsider, third.id, client_ip=ip)
    await env.workspaces.create(people.outsider, "scratch", client_ip=ip)
    await env.workspaces.delete(people.outsider, "scratch", client_ip=ip)

    entries = [entry for entry in await audit_log(env) if entry.client_ip == ip]
    assert [(entry.actor_name, entry.action, entry.target) for entry in entries] == [
        ("olga", "token.create", "olga:laptop"),
        ("olga", "token.revoke", "olga:laptop"),
        ("olga", "workspace.update", "lab"),
        ("olga", "member.set", "otto"),
        ("olga", "member.remove", "otto"),
        ("olga", "team.create", "builders"),
        ("olga", "team.member.add", "builders:otto"),
        ("olga", "team.role", "builders"),
        ("olga", "team.member.remove", "builders:otto"),
        ("olga", "team.delete", "builders"),
        ("olga", "robot.create", "lab+ci"),
        ("olga", "robot.permission", "lab+ci"),
        ("olga", "robot.token.create", "lab+ci:t"),
        ("olga", "robot.token.revoke", "lab+ci"),
        ("olga", "robot.disable", "lab+ci"),
        ("olga", "robot.delete", "lab+ci"),
        ("mia", "repository.visibility", "lab/private"),
        ("mia", "grant.create", "lab/private"),
        ("mia", "grant.revoke", "lab/private"),
        ("otto", "access_request.create", "lab/private"),
        ("mia", "grant.create", "lab/private"),
        ("mia", "access_request.approve", "lab/private"),
        ("otto", "access_request.create", "lab/private"),
        ("mia", "access_request.reject", "lab/private"),
        ("otto", "access_request.create", "lab/private"),
        ("otto", "access_request.cancel", "lab/private"),
        ("otto", "workspace.create", "scratch"),
        ("otto", "workspace.delete", "scratch"),
    ]
    lab_id = (await env.workspaces.get(people.owner, "lab"))[0].id
    assert {entry.workspace_id for entry in entries[2:26]} == {lab_id}
    assert all(entry.actor_kind == "user" for entry in entries)
    assert entries[3].detail == {"role": "reader", "previous": None}
    assert entries[11].detail == {"repository": None, "role": "reader"}


async def test_leaving_a_workspace_needs_the_api_scope_too(env: Env) -> None:
    people = await lab(env)
    reader = await registry_only(env, people.reader)
    with pytest.raises(Forbidden, match="this token is limited to the registry"):
        await env.workspaces.remove_member(reader, "lab", "rita")
    assert (await allowed(env.db, people.reader, "lab/private")).actions == {"pull"}
