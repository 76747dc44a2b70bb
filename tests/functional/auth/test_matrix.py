"""The permission matrix: every kind of subject, every registry and API action, and a public
repository, a private one, one that does not exist and one in a workspace that does not
exist, each allowed or denied exactly as the tables below say.

The tables are written by hand from the design (docs/design/identity.md §3) and the
issue; they are not derived from the code. Subjects sign in as real clients do: the Docker
token flow (a request without credentials, the 401 Bearer challenge, a token from the
realm with Basic credentials, the retry), and in a second pass with Basic credentials sent
straight to ``/v2``, which must agree. Denied on ``/v2`` is always ``401 UNAUTHORIZED``
with a Bearer challenge for the route's scope and ``error="insufficient_scope"``; never
``403``. And a private repository that a subject may not pull answers exactly like one
that does not exist: same status, body, challenge and token ``access`` claim, apart from
the name.

Each test runs one subject through every cell and reports all disagreements at once.
Destructive cells work on throwaway repositories (one per subject and visibility) or on
fresh names, so the matrix never changes its own fixtures.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.support.identity import (
    ADMIN,
    ADMIN_PASSWORD,
    PASSWORD,
    Api,
    jwt_claims,
    oci_as,
    parse_challenge,
    unique,
)
from tests.support.matrix import Exchange, Login, MatrixClient, Mode, expire_grants, normalised
from tests.support.oci import (
    ACCEPT_MANIFESTS,
    OCI_INDEX,
    OCTET_STREAM,
    Manifest,
    OciClient,
    encode,
    location_of,
    oci_manifest,
    random_blob,
    sha256,
    with_query,
)
from tests.support.servers import RunningRegistry

# Subjects (table columns):
#   anon  anonymous                      outs  a signed-in user with no role in the workspace
#   read  member, reader                 dev   member, developer
#   mnt   member, maintainer             own   member, owner (created the workspace)
#   team  developer through a team       gran  holds a pull grant on the private repository
#   expd  held a pull grant; it expired  robo  robot of the workspace with the developer role
#   rbox  robot of another workspace     admn  administrator
# (A revoked personal access token is refused before any permission is looked at; it has
# its own test below.)
SUBJECTS = ("anon", "outs", "read", "dev", "mnt", "own", "team", "gran", "expd", "robo", "rbox", "admn")

# Targets, in the order of the four characters of a registry cell: a public repository,
# a private one, one that does not exist (in the same workspace), one in a workspace that
# does not exist.
TARGETS = ("pub", "priv", "miss", "nows")

# + allowed: the registry's own answer (ANSWERS below)
# - denied: 401 UNAUTHORIZED + Bearer challenge with the scope and error="insufficient_scope"
# 0 (mount only) the push is allowed but the source may not be pulled (or has no such blob):
#   the registry falls back to an upload session (202), never 201
# "mount from" mounts a layer of the target into the subject's own namespace (its personal
# workspace; a robot's workspace); anonymous has none and mounts into the workspace.
# Roles only count where the workspace exists, and a workspace role reaches repositories
# not pushed yet (a 404 for a reader, a first push for a developer). The admin may do
# everything, even where no workspace exists: an admin's push creates an organisation
# workspace (the design note's recorded deviation), and a pull there is a 404.
REGISTRY_TABLE = """
action           | anon outs read dev  mnt  own  team gran expd robo rbox admn
GET manifest     | +--- +--- +++- +++- +++- +++- +++- ++-- +--- +++- +--- ++++
HEAD manifest    | +--- +--- +++- +++- +++- +++- +++- ++-- +--- +++- +--- ++++
GET blob         | +--- +--- +++- +++- +++- +++- +++- ++-- +--- +++- +--- ++++
HEAD blob        | +--- +--- +++- +++- +++- +++- +++- ++-- +--- +++- +--- ++++
GET tags         | +--- +--- +++- +++- +++- +++- +++- ++-- +--- +++- +--- ++++
GET referrers    | +--- +--- +++- +++- +++- +++- +++- ++-- +--- +++- +--- ++++
POST upload      | ---- ---- ---- +++- +++- +++- +++- ---- ---- +++- ---- ++++
GET upload       | ---- ---- ---- +++- +++- +++- +++- ---- ---- +++- ---- ++++
PATCH upload     | ---- ---- ---- +++- +++- +++- +++- ---- ---- +++- ---- ++++
PUT upload       | ---- ---- ---- +++- +++- +++- +++- ---- ---- +++- ---- ++++
DELETE upload    | ---- ---- ---- +++- +++- +++- +++- ---- ---- +++- ---- ++++
PUT manifest     | ---- ---- ---- +++- +++- +++- +++- ---- ---- +++- ---- ++++
mount from       | ---- +000 ++00 ++00 ++00 ++00 ++00 ++00 +000 ++00 +000 ++00
DELETE manifest  | ---- ---- ---- ---- +++- +++- ---- ---- ---- ---- ---- ++++
DELETE tag       | ---- ---- ---- ---- +++- +++- ---- ---- ---- ---- ---- ++++
DELETE blob      | ---- ---- ---- ---- +++- +++- ---- ---- ---- ---- ---- ++++
GET catalog      | +    +    +    +    +    +    +    +    +    +    +    +
GET /v2/         | +    +    +    +    +    +    +    +    +    +    +    +
"""

# /api/v1, one digit per target: 2 success (2xx), 1 401, 3 403, 4 404.
# "repo" actions take the four registry targets; "ws" actions the workspace and a workspace
# that does not exist (names of workspaces are not secret: 403 when they exist); the rest
# have one target. An access request names a repository, so deciding one you may not
# decide answers 404 (its existence is as secret as the repository's). Robots may read
# what they may pull, but management needs a user (403). PUT visibility sets the value the
# repository already has; the grant and member cells give a bystander user pull/reader.
API_TABLE = """
action            target | anon outs read dev  mnt  own  team gran expd robo rbox admn
GET repository    repo   | 2444 2444 2244 2244 2244 2244 2244 2244 2444 2244 2444 2244
PUT visibility    repo   | 1111 3444 3344 3344 2244 2244 3344 3344 3444 3333 3333 2244
GET permissions   repo   | 1111 3444 3344 3344 2244 2244 3344 3344 3444 3333 3333 2244
PUT user grant    repo   | 1111 3444 3344 3344 2244 2244 3344 3344 3444 3333 3333 2244
GET members       ws     | 14   34   24   24   24   24   24   34   34   34   34   24
PUT member        ws     | 14   34   34   34   34   24   34   34   34   34   34   24
GET teams         ws     | 14   34   24   24   24   24   24   34   34   34   34   24
POST team         ws     | 14   34   34   34   34   24   34   34   34   34   34   24
GET robots        ws     | 14   34   34   34   24   24   34   34   34   34   34   24
POST robot        ws     | 14   34   34   34   34   24   34   34   34   34   34   24
POST robot token  ws     | 14   34   34   34   34   24   34   34   34   34   34   24
GET audit         ws     | 11   34   34   34   34   24   34   34   34   33   33   24
approve request   one    | 1    4    4    4    2    2    4    4    4    3    3    2
GET users         one    | 1    3    3    3    3    3    3    3    3    3    3    2
GET audit (all)   one    | 1    3    3    3    3    3    3    3    3    3    3    2
"""

# What an allowed request gets from the registry: (status, error code) on an existing
# repository, and where the repository does not exist.
ANSWERS: dict[str, tuple[tuple[int, str | None], tuple[int, str | None]]] = {
    "GET manifest": ((200, None), (404, "MANIFEST_UNKNOWN")),
    "HEAD manifest": ((200, None), (404, None)),
    "GET blob": ((200, None), (404, "BLOB_UNKNOWN")),
    "HEAD blob": ((200, None), (404, None)),
    "GET tags": ((200, None), (404, "NAME_UNKNOWN")),
    "GET referrers": ((200, None), (404, "NAME_UNKNOWN")),
    "POST upload": ((202, None), (202, None)),
    "GET upload": ((204, None), (404, "BLOB_UPLOAD_UNKNOWN")),
    "PATCH upload": ((202, None), (404, "BLOB_UPLOAD_UNKNOWN")),
    "PUT upload": ((201, None), (404, "BLOB_UPLOAD_UNKNOWN")),
    "DELETE upload": ((204, None), (404, "BLOB_UPLOAD_UNKNOWN")),
    "PUT manifest": ((201, None), (201, None)),
    "mount from": ((201, None), (201, None)),  # "0" in the table: 202 instead
    "DELETE manifest": ((202, None), (404, "NAME_UNKNOWN")),
    "DELETE tag": ((202, None), (404, "NAME_UNKNOWN")),
    "DELETE blob": ((202, None), (404, "NAME_UNKNOWN")),
    "GET catalog": ((200, None), (200, None)),
    "GET /v2/": ((200, None), (200, None)),
}
API_CREATED = {"POST team", "POST robot", "POST robot token"}
UPLOADS = ("GET upload", "PATCH upload", "PUT upload", "DELETE upload")


def parse_table(text: str) -> dict[str, dict[str, str]]:
    """action -> subject -> cell, from a table whose first row names the subjects."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    header = lines[0].split("|")[1].split()
    assert tuple(header) == SUBJECTS, header
    table: dict[str, dict[str, str]] = {}
    for line in lines[1:]:
        label, cells = line.split("|")
        action = label.split("  ")[0].strip()
        values = cells.split()
        assert len(values) == len(SUBJECTS), line
        table[action] = dict(zip(SUBJECTS, values, strict=True))
    return table


REGISTRY = parse_table(REGISTRY_TABLE)
API = parse_table(API_TABLE)
API_TARGETS = {  # action -> "repo", "ws" or "one"
    line.split("  ")[0].strip(): line.split("|")[0].split()[-1] for line in API_TABLE.strip().splitlines()[1:]
}


def test_the_tables_cover_every_action() -> None:
    assert set(REGISTRY) == set(ANSWERS)
    for action, row in REGISTRY.items():
        width = 1 if action in ("GET catalog", "GET /v2/") else len(TARGETS)
        allowed = "+-0" if action == "mount from" else "+-"
        for subject, cell in row.items():
            assert len(cell) == width, (action, subject, cell)
            assert set(cell) <= set(allowed), (action, subject, cell)
    widths = {"repo": 4, "ws": 2, "one": 1}
    for action, row in API.items():
        for subject, cell in row.items():
            assert len(cell) == widths[API_TARGETS[action]], (action, subject, cell)
            assert set(cell) <= set("1234"), (action, subject, cell)


# --------------------------------------------------------------------------- the world


@dataclass(frozen=True)
class Image:
    name: str
    manifest: Manifest

    @property
    def layer(self) -> str:
        return self.manifest.blobs[-1].digest


@dataclass(frozen=True)
class Scratch:
    """A throwaway repository with something to delete and upload sessions to use."""

    name: str
    tagged: Manifest  # tag "a"; deleted by digest
    loose: str  # a blob nothing refers to
    uploads: dict[str, str] = field(default_factory=dict)  # action -> session URL


@dataclass
class World:
    registry: RunningRegistry
    workspace: str
    other_workspace: str
    public: Image
    private: Image
    absent: str  # a repository that does not exist, in the workspace
    nowhere: str  # a repository in a workspace that does not exist
    nowhere_workspace: str
    logins: dict[str, Login]
    homes: dict[str, str]  # where a subject mounts to
    usernames: dict[str, str]
    bystander: str  # a user that API cells grant things to
    requester: str  # a user that asks for access
    revoked: Login
    owner_api: Api
    owner_oci: OciClient
    requester_api: Api

    def scratch(self, subject: str, kind: str, *, full: bool = True) -> Scratch:
        """A fresh repository in the workspace with ``kind``'s visibility, pushed by the owner."""
        name = f"{self.workspace}/s-{subject}-{kind}-{secrets.token_hex(3)}"
        image = oci_manifest()
        self.owner_oci.push(name, image, "a")
        loose, uploads = "", {}
        if full:
            twin = oci_manifest(image.blobs[0], list(image.blobs[1:]), annotations={"twin": "b"})
            self.owner_oci.push_manifest(name, "b", twin)
            loose = self.owner_oci.push_blob(name, random_blob(64))
            uploads = {action: location_of(self.owner_oci.start_upload(name)) for action in UPLOADS}
        self.owner_api.set_visibility(name, "public" if kind == "pub" else "private")
        if kind == "priv" and subject in ("gran", "expd"):
            self.owner_api.grant(name, self.usernames[subject], "pull", None if subject == "gran" else 1.0)
            if subject == "expd":
                assert expire_grants(self.registry, self.usernames["expd"]) >= 1
        return Scratch(name, image, loose, uploads)

    def fresh(self, target: str) -> str:
        """A repository name that does not exist (yet) for a target that has none."""
        if target == "miss":
            return f"{self.workspace}/m-{secrets.token_hex(4)}"
        return f"nows-{secrets.token_hex(4)}/m"


def _token_actions(registry: RunningRegistry, login: Login, scope: str) -> list[str]:
    """The actions a token for ``scope`` grants ``login``."""
    response = httpx.get(
        f"{registry.url}/auth/token",
        params={"service": "dockyard", "scope": scope},
        headers=login.header(),
        timeout=60,
    )
    assert response.status_code == 200, response.text
    claims = jwt_claims(response.json()["token"])
    return [action for entry in claims["access"] for action in entry["actions"]]


@pytest.fixture(scope="module")
def world(token_registry: RunningRegistry) -> Iterator[World]:
    registry = token_registry
    with ExitStack() as stack:
        admin = stack.enter_context(Api.connect(registry, ADMIN, ADMIN_PASSWORD))
        keys = ["own", "outs", "read", "dev", "mnt", "team", "gran", "expd", "other", "by", "req", "rev"]
        names = {key: unique(f"mx-{key}") for key in keys}
        for username in names.values():
            admin.create_user(username)
        owner = names["own"]
        workspace, other_workspace = unique("mx-ws"), unique("mx-other")
        owner_api = stack.enter_context(Api.connect(registry, owner, PASSWORD))
        owner_api.create_workspace(workspace)
        for key, role in (
            ("read", "reader"),
            ("dev", "developer"),
            ("mnt", "maintainer"),
            ("rev", "maintainer"),
        ):
            owner_api.set_member(workspace, names[key], role)
        owner_api.create_team(workspace, "builders")
        owner_api.add_to_team(workspace, "builders", names["team"])
        owner_api.set_team_role(workspace, "builders", "developer")
        owner_api.create_robot(workspace, "ci")
        owner_api.set_robot_permission(workspace, "ci", "developer")
        robot_secret = owner_api.robot_token(workspace, "ci")
        with Api.connect(registry, names["other"], PASSWORD) as other_api:
            other_api.create_workspace(other_workspace)
            other_api.create_robot(other_workspace, "ci")
            other_api.set_robot_permission(other_workspace, "ci", "developer")
            other_robot_secret = other_api.robot_token(other_workspace, "ci")

        _, owner_pat = owner_api.personal_token(["pull", "push", "delete"], name="matrix-setup")
        owner_oci = stack.enter_context(oci_as(registry, owner, owner_pat))
        public = Image(f"{workspace}/pub", oci_manifest())
        private = Image(f"{workspace}/priv", oci_manifest())
        for image in (public, private):
            owner_oci.push(image.name, image.manifest, "latest")
        owner_api.set_visibility(public.name, "public")
        owner_api.set_visibility(private.name, "private")
        owner_api.grant(private.name, names["gran"], "pull")
        owner_api.grant(private.name, names["expd"], "pull", 1.0)
        pull = f"repository:{private.name}:pull"
        assert _token_actions(registry, Login(names["expd"], PASSWORD), pull) == ["pull"]
        assert expire_grants(registry, names["expd"]) == 1
        assert _token_actions(registry, Login(names["expd"], PASSWORD), pull) == []

        with Api.connect(registry, names["rev"], PASSWORD) as revoked_api:
            token_id, revoked_pat = revoked_api.personal_token()
            revoked_api.revoke_token(token_id)

        logins = {
            key: Login(names[key], PASSWORD)
            for key in ("outs", "read", "dev", "mnt", "own", "team", "gran", "expd")
        }
        logins["anon"] = Login(None)
        logins["robo"] = Login(f"{workspace}+ci", robot_secret)
        logins["rbox"] = Login(f"{other_workspace}+ci", other_robot_secret)
        logins["admn"] = Login(ADMIN, ADMIN_PASSWORD)
        homes = {key: names[key] for key in ("outs", "read", "dev", "mnt", "own", "team", "gran", "expd")}
        homes.update(anon=workspace, robo=workspace, rbox=other_workspace, admn=ADMIN)
        nowhere_workspace = f"nows-{secrets.token_hex(4)}"
        yield World(
            registry=registry,
            workspace=workspace,
            other_workspace=other_workspace,
            public=public,
            private=private,
            absent=f"{workspace}/absent-{secrets.token_hex(3)}",
            nowhere=f"{nowhere_workspace}/absent",
            nowhere_workspace=nowhere_workspace,
            logins=logins,
            homes=homes,
            usernames={key: names[key] for key in names},
            bystander=names["by"],
            requester=names["req"],
            revoked=Login(names["rev"], revoked_pat),
            owner_api=owner_api,
            owner_oci=owner_oci,
            requester_api=stack.enter_context(Api.connect(registry, names["req"], PASSWORD)),
        )


# --------------------------------------------------------------------------- /v2 cells


@dataclass(frozen=True)
class Cell:
    action: str
    target: str  # one of TARGETS, or "-" for the catalog and /v2/
    method: str
    url: str
    scope: str  # what the route needs: the challenge's scope ("" for /v2/)
    needed: tuple[str, str, frozenset[str]] | None  # (type, name, actions) the token must carry
    answer: tuple[int, str | None]  # when allowed
    names: dict[str, str]  # repository name -> placeholder, for comparisons
    content: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    extra_scopes: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return f"{self.action} @ {self.target}"


def _cell(
    action: str,
    target: str,
    method: str,
    url: str,
    name: str,
    actions: tuple[str, ...],
    *,
    names: dict[str, str] | None = None,
    **extra: Any,
) -> Cell:
    """A cell on repository ``name``, needing ``actions`` there."""
    existing = target in ("pub", "priv")
    return Cell(
        action,
        target,
        method,
        url if url.startswith(("http", "/")) else f"/v2/{name}/{url}",
        f"repository:{name}:{','.join(actions)}",
        ("repository", name, frozenset(actions)),
        ANSWERS[action][0 if existing else 1],
        names if names is not None else {name: "<repo>"},
        **extra,
    )


def _write_name(world: World, scratch: Scratch | None, target: str) -> str:
    """Where a write goes: the throwaway repository, or a fresh name for every cell
    (an allowed write would create the repository and change the next cell)."""
    return scratch.name if scratch is not None else world.fresh(target)


def build_cells(world: World, subject: str, scratches: dict[str, Scratch]) -> list[Cell]:
    """Every /v2 cell for one subject. Reads use the shared fixtures; writes use the
    subject's throwaway repositories, or a fresh name where the target has no repository."""
    pull, push, delete = ("pull",), ("pull", "push"), ("delete",)
    cells: list[Cell] = []
    for target in TARGETS:
        image = world.public if target == "pub" else world.private
        shared = {"pub": world.public.name, "priv": world.private.name, "miss": world.absent}.get(
            target, world.nowhere
        )
        manifests = {"Accept": ACCEPT_MANIFESTS}
        blob = f"blobs/{image.layer}"
        cells += [
            _cell("GET manifest", target, "GET", "manifests/latest", shared, pull, headers=manifests),
            _cell("HEAD manifest", target, "HEAD", "manifests/latest", shared, pull, headers=manifests),
            _cell("GET blob", target, "GET", blob, shared, pull),
            _cell("HEAD blob", target, "HEAD", blob, shared, pull),
            _cell("GET tags", target, "GET", "tags/list", shared, pull),
            _cell("GET referrers", target, "GET", f"referrers/{image.manifest.digest}", shared, pull),
        ]

        scratch = scratches.get(target)
        cells.append(
            _cell(
                "POST upload",
                target,
                "POST",
                "blobs/uploads/",
                _write_name(world, scratch, target),
                push,
                headers={"Content-Length": "0"},
            )
        )
        for action in UPLOADS:
            name = _write_name(world, scratch, target)
            url = (
                scratch.uploads[action] if scratch is not None else f"/v2/{name}/blobs/uploads/{uuid.uuid4()}"
            )
            data = random_blob(32).data
            octets = {"Content-Type": OCTET_STREAM}
            if action == "PATCH upload":
                cells.append(_cell(action, target, "PATCH", url, name, push, content=data, headers=octets))
            elif action == "PUT upload":
                url = with_query(url, digest=sha256(data))
                cells.append(_cell(action, target, "PUT", url, name, push, content=data, headers=octets))
            else:
                cells.append(_cell(action, target, action.split()[0], url, name, push))
        index = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [],
            "annotations": {"n": uuid.uuid4().hex},
        }
        tag = f"manifests/t-{secrets.token_hex(3)}"
        doomed = scratch.tagged.digest if scratch is not None else world.private.manifest.digest
        loose = scratch.loose if scratch is not None else world.private.layer
        cells += [
            _cell(
                "PUT manifest",
                target,
                "PUT",
                tag,
                _write_name(world, scratch, target),
                push,
                content=encode(index),
                headers={"Content-Type": OCI_INDEX},
            ),
            _cell(
                "DELETE manifest",
                target,
                "DELETE",
                f"manifests/{doomed}",
                _write_name(world, scratch, target),
                delete,
            ),
            _cell("DELETE tag", target, "DELETE", "manifests/b", _write_name(world, scratch, target), delete),
            _cell(
                "DELETE blob", target, "DELETE", f"blobs/{loose}", _write_name(world, scratch, target), delete
            ),
        ]

        # Mount a layer of the target into the subject's own namespace, asking for both
        # scopes at once as docker does.
        destination = f"{world.homes[subject]}/mnt-{secrets.token_hex(4)}"
        cells.append(
            _cell(
                "mount from",
                target,
                "POST",
                f"blobs/uploads/?mount={image.layer}&from={shared}",
                destination,
                push,
                names={destination: "<destination>", shared: "<repo>"},
                headers={"Content-Length": "0"},
                extra_scopes=(f"repository:{shared}:pull",),
            )
        )
    catalog = ("registry", "catalog", frozenset({"*"}))
    cells.append(
        Cell("GET catalog", "-", "GET", "/v2/_catalog", "registry:catalog:*", catalog, (200, None), {})
    )
    cells.append(Cell("GET /v2/", "-", "GET", "/v2/", "", None, (200, None), {}))
    return cells


def expected_letter(subject: str, cell: Cell) -> str:
    row = REGISTRY[cell.action][subject]
    return row if cell.target == "-" else row[TARGETS.index(cell.target)]


def _codes(response: httpx.Response) -> list[str]:
    if response.status_code < 400 or response.request.method == "HEAD":
        return []
    try:
        body = response.json()
    except ValueError:
        return [f"<not JSON: {response.text[:80]!r}>"]
    return [str(error.get("code")) for error in body.get("errors", [])] if isinstance(body, dict) else []


def judge(world: World, mode: Mode, cell: Cell, letter: str, exchange: Exchange) -> list[str]:
    """What is wrong with one exchange (empty: it went as designed)."""
    problems: list[str] = []
    realm = f"{world.registry.url}/auth/token"
    if mode == "token":
        first = exchange.first
        assert first is not None
        scheme, params = parse_challenge(first.headers.get("www-authenticate", ""))
        wanted = {"realm": realm, "service": "dockyard", **({"scope": cell.scope} if cell.scope else {})}
        if first.status_code != 401 or scheme != "Bearer" or params != wanted:
            problems.append(
                f"first request without credentials: {first.status_code} "
                f"{first.headers.get('www-authenticate')!r}, expected 401 Bearer {wanted}"
            )
        if exchange.token_status != 200:
            problems.append(f"token endpoint answered {exchange.token_status}: {exchange.token_body}")
        elif cell.needed is not None:
            kind, name, actions = cell.needed
            held = exchange.actions_on(kind, name)
            if (letter != "-") != (actions <= held):
                problems.append(
                    f"token grants {sorted(held)} on {name}, expected {'' if letter != '-' else 'not '}"
                    f"{sorted(actions)}"
                )
    response = exchange.final
    if response is None:
        return [*problems, "no final response"]
    got = f"{response.status_code} {_codes(response) or ''}".strip()
    if letter == "-":
        scheme, params = parse_challenge(response.headers.get("www-authenticate", ""))
        wanted = {"realm": realm, "service": "dockyard", "scope": cell.scope, "error": "insufficient_scope"}
        if response.status_code != 401:
            problems.append(f"denied expected (401), got {got}")
        elif response.request.method != "HEAD" and _codes(response) != ["UNAUTHORIZED"]:
            problems.append(f"denied: error codes {_codes(response)}, expected ['UNAUTHORIZED']")
        if response.status_code == 401 and (scheme != "Bearer" or params != wanted):
            problems.append(
                f"denied: challenge {response.headers.get('www-authenticate')!r}, expected {wanted}"
            )
        return problems
    status, code = (202, None) if letter == "0" else cell.answer
    if response.status_code != status:
        problems.append(f"allowed expected ({status} {code or ''}), got {got}")
    elif code is not None and response.request.method != "HEAD" and code not in _codes(response):
        problems.append(f"allowed expected ({status} {code}), got {got}")
    return problems


def leaks(results: dict[tuple[str, str], tuple[Cell, Exchange]]) -> list[str]:
    """Differences between the private repository and the missing one, names aside."""
    problems: list[str] = []
    for action in REGISTRY:
        if (action, "priv") not in results:
            continue  # the catalog and /v2/ name no repository
        cell_p, exchange_p = results[(action, "priv")]
        cell_m, exchange_m = results[(action, "miss")]
        private = next(name for name, placeholder in cell_p.names.items() if placeholder == "<repo>")
        if exchange_p.actions_on("repository", private):
            problems.append(f"{action}: the token grants {exchange_p.actions_on('repository', private)}")
        seen_p, seen_m = normalised(exchange_p, cell_p.names), normalised(exchange_m, cell_m.names)
        for part in seen_p:
            if seen_p[part] != seen_m[part]:
                problems.append(
                    f"{action}: {part} differs between the private repository and a missing one:\n"
                    f"    private: {seen_p[part]}\n    missing: {seen_m[part]}"
                )
    return problems


REGISTRY_CASES = [(subject, "token") for subject in SUBJECTS] + [
    (subject, "basic") for subject in SUBJECTS if subject != "anon"
]


@pytest.mark.parametrize(("subject", "mode"), REGISTRY_CASES, ids=[f"{s}-{m}" for s, m in REGISTRY_CASES])
def test_registry_matrix(world: World, subject: str, mode: Mode) -> None:
    scratches = {kind: world.scratch(subject, kind) for kind in ("pub", "priv")}
    client = MatrixClient(world.registry.url, world.logins[subject], mode)
    problems: list[str] = []
    results: dict[tuple[str, str], tuple[Cell, Exchange]] = {}
    try:
        for cell in build_cells(world, subject, scratches):
            letter = expected_letter(subject, cell)
            exchange = client.send(
                cell.method,
                cell.url,
                content=cell.content,
                headers=cell.headers,
                extra_scopes=cell.extra_scopes,
            )
            results[(cell.action, cell.target)] = (cell, exchange)
            problems.extend(f"{cell.id} [{letter}]: {p}" for p in judge(world, mode, cell, letter, exchange))
    finally:
        client.close()
    if REGISTRY["GET manifest"][subject][TARGETS.index("priv")] == "-":
        problems.extend(leaks(results))
    assert not problems, f"{subject} ({mode}): {len(problems)} cells disagree with the table:\n" + "\n".join(
        problems
    )


# --------------------------------------------------------------------------- /api/v1 cells


@dataclass(frozen=True)
class ApiCell:
    action: str
    target: str
    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    names: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.action} @ {self.target}"


def build_api_cells(world: World, scratches: dict[str, Scratch], request_id: int) -> list[ApiCell]:
    cells: list[ApiCell] = []
    for target in TARGETS:
        name = scratches[target].name if target in scratches else world.fresh(target)
        query, names = {"name": name}, {name: "<repo>"}
        visibility = {"visibility": "public" if target == "pub" else "private"}
        grant = {"username": world.bystander, "action": "pull"}
        cells += [
            ApiCell("GET repository", target, "GET", "/repository", query, names=names),
            ApiCell("PUT visibility", target, "PUT", "/repository/visibility", query, visibility, names),
            ApiCell("GET permissions", target, "GET", "/repository/permissions", query, names=names),
            ApiCell("PUT user grant", target, "PUT", "/repository/permissions/users", query, grant, names),
        ]
    for target, ws in (("ws", world.workspace), ("nows", world.nowhere_workspace)):
        cells += [
            ApiCell("GET members", target, "GET", f"/workspaces/{ws}/members"),
            ApiCell(
                "PUT member",
                target,
                "PUT",
                f"/workspaces/{ws}/members/{world.bystander}",
                body={"role": "reader"},
            ),
            ApiCell("GET teams", target, "GET", f"/workspaces/{ws}/teams"),
            ApiCell("POST team", target, "POST", f"/workspaces/{ws}/teams", body={"name": unique("team")}),
            ApiCell("GET robots", target, "GET", f"/workspaces/{ws}/robots"),
            ApiCell("POST robot", target, "POST", f"/workspaces/{ws}/robots", body={"name": unique("bot")}),
            ApiCell(
                "POST robot token",
                target,
                "POST",
                f"/workspaces/{ws}/robots/ci/tokens",
                body={"name": "matrix", "scopes": ["pull"]},
            ),
            ApiCell("GET audit", target, "GET", "/audit", {"workspace": ws}),
        ]
    cells += [
        ApiCell(
            "approve request",
            "one",
            "POST",
            f"/access-requests/{request_id}/approve",
            body={"expires_in_days": 1},
        ),
        ApiCell("GET users", "one", "GET", "/users"),
        ApiCell("GET audit (all)", "one", "GET", "/audit"),
    ]
    return cells


def api_digit(subject: str, cell: ApiCell) -> str:
    row = API[cell.action][subject]
    order = {"repo": TARGETS, "ws": ("ws", "nows"), "one": ("one",)}[API_TARGETS[cell.action]]
    return row[order.index(cell.target)]


def judge_api(cell: ApiCell, digit: str, response: httpx.Response) -> list[str]:
    status = {"1": 401, "3": 403, "4": 404}.get(digit) or (201 if cell.action in API_CREATED else 200)
    if response.status_code != status:
        return [f"expected {status}, got {response.status_code}: {response.text[:200]}"]
    if status < 400:
        return []
    problems: list[str] = []
    if response.headers.get("content-type") != "application/problem+json":
        problems.append(f"error is {response.headers.get('content-type')}, not application/problem+json")
    elif response.json().get("status") != status:
        problems.append(f"problem document says status {response.json().get('status')}")
    if status == 401 and not response.headers.get("www-authenticate", "").startswith("Basic"):
        problems.append(f"401 without a Basic challenge: {response.headers.get('www-authenticate')!r}")
    return problems


@pytest.mark.parametrize("subject", SUBJECTS)
def test_api_matrix(world: World, subject: str) -> None:
    scratches = {kind: world.scratch(f"api-{subject}", kind, full=False) for kind in ("pub", "priv")}
    if subject in ("gran", "expd"):  # their grants follow them to their throwaway repositories
        world.owner_api.grant(scratches["priv"].name, world.usernames[subject], "pull", 1.0)
        if subject == "expd":
            expire_grants(world.registry, world.usernames[subject])
    request = world.requester_api.call(
        "POST", "/access-requests", 201, json={"repository": scratches["priv"].name, "action": "pull"}
    )
    login = world.logins[subject]
    auth = None if login.username is None else (login.username, login.secret)
    problems: list[str] = []
    answers: dict[tuple[str, str], tuple[ApiCell, httpx.Response]] = {}
    with httpx.Client(base_url=f"{world.registry.url}/api/v1", timeout=60, auth=auth) as http:
        for cell in build_api_cells(world, scratches, int(request["id"])):
            digit = api_digit(subject, cell)
            response = http.request(cell.method, cell.path, params=cell.params, json=cell.body)
            answers[(cell.action, cell.target)] = (cell, response)
            problems.extend(f"{cell.id} [{digit}]: {p}" for p in judge_api(cell, digit, response))
    for action, target in list(answers):
        if target != "priv" or api_digit(subject, answers[(action, target)][0]) != "4":
            continue
        (cell_p, private), (cell_m, missing) = answers[(action, "priv")], answers[(action, "miss")]
        seen = [
            (r.status_code, r.headers.get("content-type"), _replace(r.text, c.names))
            for c, r in ((cell_p, private), (cell_m, missing))
        ]
        if seen[0] != seen[1]:
            problems.append(f"{action}: private answers {seen[0]}, missing answers {seen[1]}")
    assert not problems, f"{subject}: {len(problems)} API cells disagree with the table:\n" + "\n".join(
        problems
    )


def _replace(text: str, names: dict[str, str]) -> str:
    for name, placeholder in names.items():
        text = text.replace(name, placeholder)
    return text


# --------------------------------------------------------------------------- revoked


def test_a_revoked_personal_access_token_is_refused_everywhere(world: World) -> None:
    """Refused as a login before any permission is looked at: at the token endpoint, as
    Basic credentials on /v2 and on /api/v1. (Each refusal counts as a failed login, so
    this stays well under the lockout limits shared by the whole session.)"""
    revoked = world.revoked
    assert revoked.username is not None
    pull = f"/v2/{world.private.name}/manifests/latest"

    flow = MatrixClient(world.registry.url, revoked, "token")
    try:
        exchange = flow.send("GET", pull, headers={"Accept": ACCEPT_MANIFESTS})
    finally:
        flow.close()
    assert exchange.token_status == 401, exchange
    assert exchange.final is None

    basic = MatrixClient(world.registry.url, revoked, "basic")
    try:
        response = basic.send("GET", pull, headers={"Accept": ACCEPT_MANIFESTS}).final
    finally:
        basic.close()
    assert response is not None
    assert response.status_code == 401, response.text
    assert _codes(response) == ["UNAUTHORIZED"]
    scheme, params = parse_challenge(response.headers["www-authenticate"])
    assert (scheme, params.get("scope"), params.get("error")) == (
        "Bearer",
        f"repository:{world.private.name}:pull",
        None,
    )

    api = f"{world.registry.url}/api/v1/user"
    for headers in (revoked.header(), {"Authorization": f"Bearer {revoked.secret}"}):
        answer = httpx.get(api, headers=headers, timeout=60)
        assert answer.status_code == 401, answer.text
        assert answer.headers["content-type"] == "application/problem+json"

    # The same user, signing in with the password, is still a maintainer: the token is what was revoked.
    good = MatrixClient(world.registry.url, Login(revoked.username, PASSWORD), "token")
    try:
        allowed = good.send("GET", pull, headers={"Accept": ACCEPT_MANIFESTS})
    finally:
        good.close()
    assert allowed.final is not None
    assert allowed.final.status_code == 200, allowed.final.text
