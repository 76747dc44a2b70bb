"""Signing keys, registry tokens (ES256 JWTs), scope parsing and what the token server grants."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import stat
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import update

from dockyard.app.services import build_identity
from dockyard.auth import keys as keys_module
from dockyard.auth.jwt_tokens import Grant, InvalidToken, TokenService
from dockyard.auth.keys import KeyRing
from dockyard.auth.policy import ANONYMOUS, Subject
from dockyard.auth.tables import repository_grants
from dockyard.auth.token_server import MAX_SCOPES, Scope, parse_scopes
from dockyard.db.engine import Database
from dockyard.settings import Settings
from tests.unit.auth.factories import Env, FakeClock, new_repository, new_user
from tests.unit.conftest import sqlite_url

KID = re.compile(r"^[A-Z2-7]{4}(?::[A-Z2-7]{4}){11}$")
ALICE = Subject("user", 12, "alice")
PULL = Grant("repository", "lab/app", frozenset({"pull"}))


def libtrust_kid(public_key: ec.EllipticCurvePublicKey) -> str:
    """Docker's key id, computed here from its definition."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode()
    assert len(encoded) == 48
    return ":".join(encoded[i : i + 4] for i in range(0, 48, 4))


def pem_file(path: Path, curve: ec.EllipticCurve | None = None) -> ec.EllipticCurvePrivateKey:
    key = ec.generate_private_key(curve or ec.SECP256R1())
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return key


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def state(folder: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((folder / "keys.json").read_text())
    return loaded


def service(ring: KeyRing, issuer: str = "dockyard", audience: str = "dockyard") -> TokenService:
    """A new service: a fresh process, with nothing cached."""
    return TokenService(ring, issuer, audience, 300)


def header_and_claims(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return jwt.get_unverified_header(token), jwt.decode(token, options={"verify_signature": False})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": "dockyard",
        "sub": "alice",
        "aud": "dockyard",
        "exp": now + 300,
        "nbf": now - 1,
        "iat": now,
        "jti": uuid.uuid4().hex,
        "access": [PULL.as_claim()],
        "dyk": {"k": "user", "i": 12, "a": False},
    }
    base.update(changes)
    return base


# --- the key ring -------------------------------------------------------------------


def test_the_first_key_is_made_once_in_private_files(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    ring = KeyRing(folder)
    ring.ensure()
    kid = state(folder)["active"]
    assert state(folder) == {"active": kid, "retired": {}}
    assert KID.match(kid)
    pem = folder / f"{kid.replace(':', '')}.pem"
    assert mode(pem) == 0o600
    assert mode(folder) & 0o077 == 0
    private = serialization.load_pem_private_key(pem.read_bytes(), password=None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    assert libtrust_kid(private.public_key()) == kid
    # another process (or a restart) finds the same key
    KeyRing(folder).ensure()
    assert state(folder)["active"] == kid
    assert KeyRing(folder).signing_key().kid == kid
    assert sorted(path.name for path in folder.glob("*.pem")) == [pem.name]


def test_rotation_makes_a_new_active_key_and_retires_the_old_one(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    ring = KeyRing(folder)
    ring.ensure()
    old = state(folder)["active"]
    before = time.time()
    new = ring.rotate(keep_seconds=600)
    after = time.time()
    assert KID.match(new)
    assert new != old
    saved = state(folder)
    assert saved["active"] == new
    assert set(saved["retired"]) == {old}
    assert before + 600 <= saved["retired"][old] <= after + 600
    assert all(mode(path) == 0o600 for path in folder.glob("*.pem"))
    assert len(list(folder.glob("*.pem"))) == 2
    assert ring.signing_key().kid == new
    jwks = ring.public_jwks()["keys"]
    assert isinstance(jwks, list)
    assert {key["kid"] for key in jwks} == {old, new}


def test_jwks_describes_the_signing_key(tmp_path: Path) -> None:
    ring = KeyRing(tmp_path / "keys")
    jwks = ring.public_jwks()["keys"]
    assert isinstance(jwks, list)
    [jwk] = jwks
    public = ring.signing_key().private_key.public_key().public_numbers()
    assert jwk == {
        "kty": "EC",
        "crv": "P-256",
        "use": "sig",
        "alg": "ES256",
        "kid": ring.signing_key().kid,
        "x": b64(public.x.to_bytes(32, "big")),
        "y": b64(public.y.to_bytes(32, "big")),
    }


# --- issuing and verifying ----------------------------------------------------------


def test_issue_and_verify(tmp_path: Path) -> None:
    ring = KeyRing(tmp_path / "keys")
    tokens = service(ring)
    issued = tokens.issue(ALICE, [PULL, Grant("repository", "lab/other", frozenset())])
    header, body = header_and_claims(issued.token)
    assert header == {"alg": "ES256", "typ": "JWT", "kid": ring.signing_key().kid}
    assert (body["iss"], body["sub"], body["aud"]) == ("dockyard", "alice", "dockyard")
    assert body["access"] == [
        {"type": "repository", "name": "lab/app", "actions": ["pull"]},
        {"type": "repository", "name": "lab/other", "actions": []},
    ]
    assert body["exp"] - body["iat"] == issued.expires_in == 300
    assert body["nbf"] <= body["iat"]
    verified = service(ring).verify(issued.token)
    assert verified.subject == ALICE
    assert verified.access == {
        ("repository", "lab/app"): frozenset({"pull"}),
        ("repository", "lab/other"): frozenset(),
    }
    assert verified.expires_at == body["exp"]


def test_anonymous_tokens_have_an_empty_subject(tmp_path: Path) -> None:
    tokens = service(KeyRing(tmp_path / "keys"))
    issued = tokens.issue(ANONYMOUS, [])
    assert header_and_claims(issued.token)[1]["sub"] == ""
    assert tokens.verify(issued.token).subject == ANONYMOUS


def test_an_earlier_cap_shortens_a_token_but_never_below_a_minute(tmp_path: Path) -> None:
    tokens = service(KeyRing(tmp_path / "keys"))
    now = time.time()
    soon = tokens.issue(ALICE, [PULL], cap=now + 120)
    assert 119 <= soon.expires_in <= 121
    assert tokens.issue(ALICE, [PULL], cap=now + 10).expires_in == 60
    assert tokens.issue(ALICE, [PULL], cap=now + 10_000).expires_in == 300


def test_tokens_of_a_retired_key_verify_until_it_ends(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    ring = KeyRing(folder)
    old_token = service(ring).issue(ALICE, [PULL]).token
    old_kid = ring.signing_key().kid
    ring.rotate(keep_seconds=600)
    new_token = service(ring).issue(ALICE, [PULL]).token
    assert header_and_claims(new_token)[0]["kid"] != old_kid
    assert service(ring).verify(old_token).subject == ALICE
    assert service(KeyRing(folder)).verify(old_token).subject == ALICE

    # the retired key's time is up (as if its verify_until had passed)
    saved = state(folder)
    saved["retired"][old_kid] = time.time() - 1
    (folder / "keys.json").write_text(json.dumps(saved))
    ring.refresh(force=True)
    for verifier in (service(ring), service(KeyRing(folder))):
        with pytest.raises(InvalidToken, match="token signed by an unknown or retired key"):
            verifier.verify(old_token)
        assert verifier.verify(new_token).subject == ALICE


def test_rotation_with_no_grace_ends_old_tokens_at_once(tmp_path: Path) -> None:
    ring = KeyRing(tmp_path / "keys")
    old_token = service(ring).issue(ALICE, [PULL]).token
    ring.rotate(keep_seconds=0)
    with pytest.raises(InvalidToken, match="unknown or retired key"):
        service(ring).verify(old_token)


def test_a_verifier_sees_a_rotation_made_by_another_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticks = FakeClock(0.0)
    monkeypatch.setattr(keys_module, "time", SimpleNamespace(time=time.time, monotonic=ticks))
    folder = tmp_path / "keys"
    verifier_ring = KeyRing(folder)  # a worker that verifies and issues nothing meanwhile
    old_token = service(verifier_ring).issue(ALICE, [PULL]).token
    assert service(verifier_ring).verify(old_token).subject == ALICE
    KeyRing(folder).rotate(keep_seconds=0)  # e.g. `dockyard keys rotate` after a leak
    ticks.advance(1.0)  # the verifier looks at the folder at most once a second
    with pytest.raises(InvalidToken, match="unknown or retired key"):
        service(verifier_ring).verify(old_token)


def unsigned(body: dict[str, Any], kid: str) -> str:
    """A token with ``alg: none`` and no signature."""
    head = b64(json.dumps({"alg": "none", "typ": "JWT", "kid": kid}).encode())
    return f"{head}.{b64(json.dumps(body).encode())}."


def signed(ring: KeyRing, body: dict[str, Any], **headers: Any) -> str:
    key = ring.signing_key()
    return jwt.encode(body, key.private_key, algorithm="ES256", headers={"kid": key.kid, **headers})


def test_bad_tokens_are_refused(tmp_path: Path) -> None:
    ring = KeyRing(tmp_path / "keys")
    kid = ring.signing_key().kid
    good = service(ring).issue(ALICE, [PULL]).token
    head, payload, signature = good.split(".")
    tamper = "AAAA" if signature[-4:] != "AAAA" else "BBBB"
    public_pem = (
        ring.signing_key()
        .private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    hs_head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    hs_body = b64(json.dumps(claims()).encode())
    hs_signature = b64(hmac.new(public_pem, f"{hs_head}.{hs_body}".encode(), hashlib.sha256).digest())
    admin_body = b64(json.dumps(claims(sub="root", dyk={"k": "user", "i": 1, "a": True})).encode())
    stranger = ec.generate_private_key(ec.SECP256R1())

    bad = {
        "garbage": "not-a-token",
        "tampered signature": f"{head}.{payload}.{signature[:-4]}{tamper}",
        "tampered claims": f"{head}.{admin_body}.{signature}",
        "alg none": unsigned(claims(), kid),
        "HS256 with the public key as secret": f"{hs_head}.{hs_body}.{hs_signature}",
        "unknown key": jwt.encode(
            claims(), stranger, algorithm="ES256", headers={"kid": libtrust_kid(stranger.public_key())}
        ),
        "stranger key under our kid": jwt.encode(claims(), stranger, algorithm="ES256", headers={"kid": kid}),
        "wrong audience": service(ring, audience="elsewhere").issue(ALICE, [PULL]).token,
        "wrong issuer": service(ring, issuer="mallory").issue(ALICE, [PULL]).token,
        "expired": signed(ring, claims(exp=int(time.time()) - 60, iat=int(time.time()) - 400)),
        "not yet valid": signed(ring, claims(nbf=int(time.time()) + 600)),
        "no access claim": signed(ring, {k: v for k, v in claims().items() if k != "access"}),
        "no expiry": signed(ring, {k: v for k, v in claims().items() if k != "exp"}),
    }
    verifier = service(ring)
    verifier.verify(good)
    accepted = []
    for what, token in bad.items():
        try:
            verifier.verify(token)
        except InvalidToken:
            continue
        accepted.append(what)
    assert accepted == []


# --- keys from settings ----------------------------------------------------------------


def test_a_key_file_named_by_settings_signs_the_tokens(tmp_path: Path) -> None:
    current = pem_file(tmp_path / "current.pem")
    previous = pem_file(tmp_path / "previous.pem")
    settings = Settings(
        data_dir=tmp_path / "data",
        token_key_file=tmp_path / "current.pem",
        token_previous_key_files=[tmp_path / "previous.pem"],
    )
    identity = build_identity(settings, Database(sqlite_url(tmp_path / "unused.db")))
    issued = identity.jwt.issue(ALICE, [PULL])
    assert header_and_claims(issued.token)[0]["kid"] == libtrust_kid(current.public_key())
    assert identity.jwt.verify(issued.token).subject == ALICE
    # tokens signed with the previous key (by a replica not yet switched) verify too
    by_previous = jwt.encode(
        claims(), previous, algorithm="ES256", headers={"kid": libtrust_kid(previous.public_key())}
    )
    assert identity.jwt.verify(by_previous).subject == ALICE
    identity.keys.ensure()
    assert not (tmp_path / "data" / "keys").exists()
    with pytest.raises(ValueError, match="keys come from token_key_file; rotate by replacing that file"):
        identity.keys.rotate(600)


def test_a_key_file_must_hold_a_p256_key(tmp_path: Path) -> None:
    pem_file(tmp_path / "p384.pem", ec.SECP384R1())
    ring = KeyRing(tmp_path / "keys", key_file=tmp_path / "p384.pem")
    with pytest.raises(ValueError, match=r"p384.pem is not an EC P-256 private key \(make one with: openssl"):
        ring.signing_key()


# --- scopes ---------------------------------------------------------------------------


def test_scopes_from_repeated_and_space_separated_parameters() -> None:
    assert parse_scopes(["repository:lab/app:pull", "repository:lab/b:push,pull registry:catalog:*"]) == [
        Scope("repository", "lab/app", frozenset({"pull"})),
        Scope("repository", "lab/b", frozenset({"pull", "push"})),
        Scope("registry", "catalog", frozenset({"*"})),
    ]


def test_a_scope_name_may_hold_a_host_and_port() -> None:
    assert parse_scopes(["repository:localhost:5000/lab/app:pull,push"]) == [
        Scope("repository", "localhost:5000/lab/app", frozenset({"pull", "push"}))
    ]


def test_malformed_scopes_are_dropped() -> None:
    values = [
        "repository",
        "repository:lab/app",
        "repository::pull",
        "",
        "   ",
        "repository:lab/ok:pull,,push",
    ]
    assert parse_scopes(values) == [Scope("repository", "lab/ok", frozenset({"pull", "push"}))]


def test_at_most_32_scopes_are_read() -> None:
    values = [" ".join(f"repository:lab/r{i}:pull" for i in range(40))]
    parsed = parse_scopes(values)
    assert MAX_SCOPES == 32
    assert [scope.name for scope in parsed] == [f"lab/r{i}" for i in range(32)]


# --- what the token server grants -------------------------------------------------------


def repository_scope(name: str, actions: str) -> Scope:
    return Scope("repository", name, frozenset(actions.split(",")))


async def lab(env: Env) -> Subject:
    olga = await new_user(env, "olga")
    await env.workspaces.create(olga, "lab")
    await new_repository(env, "lab/public", "public")
    await new_repository(env, "lab/private")
    return olga


async def test_private_and_missing_repositories_get_identical_empty_grants(env: Env) -> None:
    await lab(env)
    otto = await new_user(env, "otto")
    names = ["lab/private", "lab/missing", "nowhere/app"]
    for subject in (ANONYMOUS, otto):
        grants, cap = await env.token_server.grants(
            subject, [repository_scope(n, "pull,push") for n in names]
        )
        assert grants == [Grant("repository", name, frozenset()) for name in names]
        assert cap is None
        grants, _ = await env.token_server.grants(subject, [repository_scope("lab/public", "pull,push")])
        assert grants == [Grant("repository", "lab/public", frozenset({"pull"}))]


async def test_grants_intersect_what_was_asked_with_what_is_allowed(env: Env) -> None:
    olga = await lab(env)
    root = await new_user(env, "root", admin=True)
    scopes = [
        repository_scope("lab/private", "*"),
        repository_scope("lab/public", "pull"),
        repository_scope("lab/Bad Name", "pull"),
        Scope("registry", "catalog", frozenset({"*"})),
        Scope("frobnicator", "x", frozenset({"pull"})),
    ]
    grants, _ = await env.token_server.grants(olga, scopes)
    assert grants == [
        Grant("repository", "lab/private", frozenset({"pull", "push", "delete"})),
        Grant("repository", "lab/public", frozenset({"pull"})),
        Grant("repository", "lab/Bad Name", frozenset()),
        Grant("registry", "catalog", frozenset({"*"})),  # everyone lists what they may pull
    ]
    grants, _ = await env.token_server.grants(root, scopes[3:])
    assert grants == [Grant("registry", "catalog", frozenset({"*"}))]


async def test_a_grants_expiry_caps_the_token(env: Env) -> None:
    olga = await lab(env)
    gina = await new_user(env, "gina")
    until = time.time() + 900
    await env.repositories.grant_user(olga, "lab/private", "gina", "pull", until)
    grants, cap = await env.token_server.grants(gina, [repository_scope("lab/private", "pull,push")])
    assert grants == [Grant("repository", "lab/private", frozenset({"pull"}))]
    assert cap == until


async def test_a_personal_access_tokens_expiry_caps_the_token(env: Env) -> None:
    olga = await lab(env)
    token = await env.tokens.create_personal(olga, "ci", ["pull"], expires_in_days=1)
    subject = await env.accounts.authenticate("olga", token.secret, None)
    grants, cap = await env.token_server.grants(subject, [repository_scope("lab/private", "pull,push")])
    assert grants == [Grant("repository", "lab/private", frozenset({"pull"}))]
    assert cap == token.info.expires_at


async def test_a_grant_ending_within_a_minute_is_left_out(env: Env) -> None:
    olga = await lab(env)
    gina = await new_user(env, "gina")
    await env.repositories.grant_user(olga, "lab/private", "gina", "push", time.time() + 3600)
    # A grant is refused if it would end within a minute; this one got there with time.
    async with env.db.write() as conn:
        await conn.execute(update(repository_grants).values(expires_at=time.time() + 30))
    grants, cap = await env.token_server.grants(gina, [repository_scope("lab/private", "pull,push")])
    assert grants == [Grant("repository", "lab/private", frozenset())]
    assert cap is None
    # what a role gives stays; only what the ending grant adds goes
    await env.workspaces.set_member(olga, "lab", "gina", "reader")
    grants, cap = await env.token_server.grants(gina, [repository_scope("lab/private", "pull,push")])
    assert grants == [Grant("repository", "lab/private", frozenset({"pull"}))]
    assert cap is None
