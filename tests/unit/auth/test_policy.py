"""The pure permission function over a hand-written table of subjects and repositories.

Facts are written here by hand, as :func:`dockyard.auth.facts.load_facts` would load them
(``test_facts.py`` checks that it does); the expected actions come from the design's rules,
not from the code under test.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from dockyard.auth.policy import ANONYMOUS, Decision, Facts, Subject, decide, expand, highest, role_at_least

NOW = 1_700_000_000.0
LATER = NOW + 3600.0  # a grant that is still running
EARLIER = NOW - 1.0  # a grant that has ended

NONE = ""
PULL = "pull"
PULL_PUSH = "pull,push"
ALL = "delete,pull,push"

REPOSITORIES = ("public", "private", "missing", "no-workspace")


def actions(text: str) -> frozenset[str]:
    return frozenset(text.split(",")) if text else frozenset()


@dataclass(frozen=True)
class Case:
    subject: Subject
    workspace_roles: frozenset[str] = frozenset()
    repository_roles: frozenset[str] = frozenset()
    grants: tuple[tuple[str, float | None], ...] = ()


def user(name: str, *, admin: bool = False, scopes: str | None = None) -> Subject:
    return Subject("user", 7, name, is_admin=admin, scopes=None if scopes is None else actions(scopes))


def robot(name: str, scopes: str) -> Subject:
    return Subject("robot", 3, name, scopes=actions(scopes))


# Who asks, and what they hold in the repository's workspace ("lab") or on the repository.
CASES: dict[str, Case] = {
    "anonymous": Case(ANONYMOUS),
    "outsider": Case(user("outsider")),
    "reader": Case(user("reader"), frozenset({"reader"})),
    "developer": Case(user("developer"), frozenset({"developer"})),
    "maintainer": Case(user("maintainer"), frozenset({"maintainer"})),
    "owner": Case(user("owner"), frozenset({"owner"})),
    "admin": Case(user("admin", admin=True)),
    "robot-reader": Case(robot("lab+ci", "pull,push"), frozenset({"reader"})),
    "robot-developer": Case(robot("lab+ci", "pull,push,delete"), frozenset({"developer"})),
    # load_facts gives a robot nothing in a workspace that is not its own
    "robot-of-other-workspace": Case(robot("other+ci", "pull,push,delete")),
    "team-workspace-developer": Case(user("teammate"), frozenset({"developer"})),
    "team-repository-reader": Case(user("teammate"), repository_roles=frozenset({"reader"})),
    "grant-pull": Case(user("guest"), grants=(("pull", LATER),)),
    "grant-push": Case(user("guest"), grants=(("push", LATER),)),
    "expired-grant": Case(user("guest"), grants=(("push", EARLIER),)),
    "owner-with-pull-token": Case(user("owner", scopes="pull"), frozenset({"owner"})),
    "owner-with-api-token": Case(user("owner", scopes="api"), frozenset({"owner"})),
    "developer-with-every-scope": Case(
        user("developer", scopes="pull,push,delete,api"), frozenset({"developer"})
    ),
    "admin-with-pull-token": Case(user("admin", admin=True, scopes="pull")),
}

# subject: (public existing, private existing, missing in an existing workspace, missing workspace)
EXPECTED: dict[str, tuple[str, str, str, str]] = {
    "anonymous": (PULL, NONE, NONE, NONE),
    "outsider": (PULL, NONE, NONE, NONE),
    "reader": (PULL, PULL, PULL, NONE),
    "developer": (PULL_PUSH, PULL_PUSH, PULL_PUSH, NONE),
    "maintainer": (ALL, ALL, ALL, NONE),
    "owner": (ALL, ALL, ALL, NONE),
    # admins may push anywhere; a push to a new namespace creates its workspace
    "admin": (ALL, ALL, ALL, ALL),
    "robot-reader": (PULL, PULL, PULL, NONE),
    "robot-developer": (PULL_PUSH, PULL_PUSH, PULL_PUSH, NONE),
    "robot-of-other-workspace": (PULL, NONE, NONE, NONE),
    "team-workspace-developer": (PULL_PUSH, PULL_PUSH, PULL_PUSH, NONE),
    "team-repository-reader": (PULL, PULL, NONE, NONE),
    "grant-pull": (PULL, PULL, NONE, NONE),
    "grant-push": (PULL_PUSH, PULL_PUSH, NONE, NONE),
    "expired-grant": (PULL, NONE, NONE, NONE),
    "owner-with-pull-token": (PULL, PULL, PULL, NONE),
    "owner-with-api-token": (NONE, NONE, NONE, NONE),
    "developer-with-every-scope": (PULL_PUSH, PULL_PUSH, PULL_PUSH, NONE),
    "admin-with-pull-token": (PULL, PULL, PULL, PULL),
}


def facts_for(case: Case, repository: str) -> Facts:
    """What load_facts yields: repository roles and grants only exist on existing
    repositories, and nothing at all without a workspace."""
    if repository == "no-workspace":
        return Facts(workspace_exists=False, repository_exists=False)
    if repository == "missing":
        return Facts(workspace_exists=True, repository_exists=False, workspace_roles=case.workspace_roles)
    return Facts(
        workspace_exists=True,
        repository_exists=True,
        public=repository == "public",
        workspace_roles=case.workspace_roles,
        repository_roles=case.repository_roles,
        grants=case.grants,
    )


def test_the_table_covers_every_subject() -> None:
    assert EXPECTED.keys() == CASES.keys()


@pytest.mark.parametrize("repository", REPOSITORIES)
@pytest.mark.parametrize("who", list(CASES))
def test_decide(who: str, repository: str) -> None:
    case = CASES[who]
    expected = actions(EXPECTED[who][REPOSITORIES.index(repository)])
    assert decide(case.subject, facts_for(case, repository), NOW).actions == expected


@pytest.mark.parametrize("who", [who for who, row in EXPECTED.items() if PULL not in row[1]])
def test_private_repository_answers_like_a_missing_one_without_a_role(who: str) -> None:
    case = CASES[who]
    private = decide(case.subject, facts_for(case, "private"), NOW)
    assert private == decide(case.subject, facts_for(case, "missing"), NOW)
    assert private == Decision(frozenset())


def test_repository_roles_grants_and_visibility_count_only_on_existing_repositories() -> None:
    facts = Facts(
        workspace_exists=True,
        repository_exists=False,
        public=True,
        repository_roles=frozenset({"maintainer"}),
        grants=(("push", LATER),),
    )
    assert decide(user("guest"), facts, NOW) == Decision(frozenset())
    assert decide(ANONYMOUS, facts, NOW) == Decision(frozenset())


def test_robots_never_use_user_grants() -> None:
    facts = Facts(workspace_exists=True, repository_exists=True, grants=(("push", LATER),))
    assert decide(robot("lab+ci", "pull,push"), facts, NOW) == Decision(frozenset())


def test_unknown_roles_give_nothing() -> None:
    facts = Facts(workspace_exists=True, repository_exists=True, workspace_roles=frozenset({"superuser"}))
    assert decide(user("someone"), facts, NOW).actions == frozenset()


# --- grant expiry in Decision.expires_at ---------------------------------------------


def private_with(*grants: tuple[str, float | None], roles: str = "") -> Facts:
    return Facts(
        workspace_exists=True,
        repository_exists=True,
        workspace_roles=frozenset({roles}) if roles else frozenset(),
        grants=grants,
    )


def test_a_grant_that_gives_an_action_sets_the_expiry() -> None:
    decision = decide(user("guest"), private_with(("pull", NOW + 600)), NOW)
    assert decision == Decision(actions(PULL), NOW + 600)


def test_the_earliest_contributing_grant_sets_the_expiry() -> None:
    decision = decide(user("guest"), private_with(("pull", NOW + 900), ("push", NOW + 300)), NOW)
    assert decision == Decision(actions(PULL_PUSH), NOW + 300)


def test_a_grant_without_an_end_sets_no_expiry() -> None:
    assert decide(user("guest"), private_with(("push", None)), NOW) == Decision(actions(PULL_PUSH), None)


def test_a_grant_that_adds_nothing_sets_no_expiry() -> None:
    public = Facts(workspace_exists=True, repository_exists=True, public=True, grants=(("pull", NOW + 600),))
    assert decide(user("guest"), public, NOW) == Decision(actions(PULL), None)
    # a developer already pushes: a push grant adds nothing
    assert decide(user("dev"), private_with(("push", NOW + 600), roles="developer"), NOW) == Decision(
        actions(PULL_PUSH), None
    )


def test_a_grant_on_top_of_a_role_expires_only_what_it_adds() -> None:
    public = Facts(workspace_exists=True, repository_exists=True, public=True, grants=(("push", NOW + 600),))
    assert decide(user("guest"), public, NOW) == Decision(actions(PULL_PUSH), NOW + 600)
    reader = private_with(("push", NOW + 600), roles="reader")
    assert decide(user("reader"), reader, NOW) == Decision(actions(PULL_PUSH), NOW + 600)


def test_a_grant_ends_at_its_expiry() -> None:
    facts = private_with(("push", NOW + 600))
    assert decide(user("guest"), facts, NOW + 599).actions == actions(PULL_PUSH)
    assert decide(user("guest"), facts, NOW + 600) == Decision(frozenset(), None)
    assert decide(user("guest"), facts, NOW + 601) == Decision(frozenset(), None)


def test_admins_and_members_have_no_expiry() -> None:
    assert decide(user("admin", admin=True), Facts(False, False), NOW) == Decision(actions(ALL), None)
    assert decide(user("owner"), private_with(roles="owner"), NOW) == Decision(actions(ALL), None)


# --- helpers ------------------------------------------------------------------------


def test_expand_star_means_every_action() -> None:
    assert expand(frozenset({"*"})) == actions(ALL)
    assert expand(frozenset({"pull", "*"})) == actions(ALL)


def test_expand_drops_unknown_actions() -> None:
    assert expand(frozenset({"pull", "frobnicate", "PUSH"})) == actions(PULL)
    assert expand(frozenset()) == frozenset()


def test_role_order() -> None:
    assert role_at_least("owner", "maintainer")
    assert role_at_least("maintainer", "maintainer")
    assert not role_at_least("developer", "maintainer")
    assert not role_at_least(None, "reader")
    assert highest(["reader", "maintainer", "developer"]) == "maintainer"
    assert highest(["bogus"]) is None
    assert highest([]) is None


def test_api_scope() -> None:
    assert user("someone").may_use_api()
    assert user("someone", scopes="api,pull").may_use_api()
    assert not user("someone", scopes="pull,push").may_use_api()
