"""Push targets: other registries a successful build is also pushed to, each through a
registry profile (:mod:`dockyard.upstream.profiles`) of the definition's workspace.

Platform-wide profiles do not serve as push targets: they hold credentials an administrator
keeps for pulls (verification, imports, the cache), and a developer naming one would write with
those credentials to any repository they reach. A workspace that pushes elsewhere keeps its own
profile (maintainers add it), as Harbor keeps replication endpoints apart from proxy caches.

A target is ``{profile, repository, tag}``: ``profile`` is the registry host the profile is
kept for (``quay.io``, ``registry.example.org:5000``), ``repository`` a repository there and
``tag`` the tag to push (None: the build's version). A definition has at most
:data:`MAX_TARGETS`. Targets do not change what is built, so they are not part of the
definition's content hash.

After the image is in Dockyard each target is pushed in turn; a target that fails does not
fail the build. Each push's outcome is kept on the run (``push_results``): the reference, the
profile, ``ok``, the digest pushed, or the failure's ``reason`` — one of the upstream failure
kinds of :mod:`dockyard.upstream.results` (unauthorized names the profile to fix) — with a
message for the user.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from dockyard.builds.builder import RegistryLogin, TargetPush, TargetPushed
from dockyard.db.engine import Connection
from dockyard.errors import Invalid
from dockyard.oci.errors import InvalidName, InvalidTag
from dockyard.oci.names import validate_name, validate_tag
from dockyard.upstream.credentials import normalise_registry
from dockyard.upstream.profiles import Profiles, host_aliases
from dockyard.upstream.results import Failed, FailureKind, UpstreamFailure
from dockyard.upstream.tables import upstream_credentials

MAX_TARGETS = 10


@dataclass(frozen=True)
class PushTarget:
    profile: str  # the registry host of a registry profile
    repository: str
    tag: str | None = None  # None: the build's version

    def reference(self, version: str) -> str:
        return f"{self.profile}/{self.repository}:{self.tag or version}"


def check_targets(targets: list[PushTarget] | tuple[PushTarget, ...]) -> list[PushTarget]:
    """The targets, each checked (a registry host, a repository name and tag of the
    distribution spec), without repeats; at most :data:`MAX_TARGETS`."""
    if len(targets) > MAX_TARGETS:
        raise Invalid(f"a definition has at most {MAX_TARGETS} push targets ({len(targets)} given)")
    found: list[PushTarget] = []
    for target in targets:
        host = normalise_registry(target.profile[:300])
        try:
            repository = validate_name(target.repository)
            tag = validate_tag(target.tag) if target.tag else None
        except (InvalidName, InvalidTag) as exc:
            raise Invalid(f"push target {host}/{target.repository[:100]}: {exc}") from None
        checked = PushTarget(host, repository, tag)
        if checked in found:
            raise Invalid(f"push target {checked.reference('<version>')} is given twice")
        found.append(checked)
    return found


def targets_json(targets: list[PushTarget]) -> str:
    return json.dumps([t.__dict__ for t in targets])


def targets_of(text: str | None) -> list[PushTarget]:
    return [PushTarget(**t) for t in json.loads(text or "[]")]


async def require_profiles(
    conn: Connection, workspace_id: int, workspace: str, targets: list[PushTarget]
) -> None:
    """Refuse a target whose profile is not the workspace's own."""
    owner = upstream_credentials.c.workspace_id
    for target in targets:
        found = (
            await conn.execute(
                select(upstream_credentials.c.id)
                .where(
                    upstream_credentials.c.registry.in_(host_aliases(target.profile)),
                    owner == workspace_id,
                )
                .limit(1)
            )
        ).first()
        if found is None:
            raise Invalid(
                f"no registry profile for {target.profile} in workspace {workspace!r}: a maintainer "
                "keeps one first (dockyard registry add), then name it as a push target "
                "(platform-wide profiles serve pulls only)"
            )


@dataclass(frozen=True)
class Planned:
    """A target of one build: the push to make (with its login), or why it cannot be made."""

    target: PushTarget
    reference: str
    profile: str | None = None
    push: TargetPush | None = None
    login: RegistryLogin | None = None
    failure: Failed | None = None


async def plan(profiles: Profiles, workspace_id: int, target: PushTarget, version: str) -> Planned:
    """How to push ``target``: its profile's credentials and scheme, as now kept."""
    reference = target.reference(version)
    try:
        reach = await profiles.connection_for(None, workspace_id, target.profile, own_only=True)
    except UpstreamFailure as exc:  # an ECR key refused
        return Planned(target, reference, exc.failure.profile, failure=exc.failure)
    if reach.profile is None:
        return Planned(
            target,
            reference,
            failure=Failed(
                "unauthorized",
                f"the registry profile for {target.profile} is gone: keep one again, or remove the target",
            ),
        )
    insecure = reach.scheme == "http" or reach.verify is False
    login = None
    if reach.credentials is not None:
        c = reach.credentials
        login = RegistryLogin(target.profile, c.username, secret=c.secret, insecure=insecure)
    push = TargetPush(reference, target.profile, insecure, None if insecure else reach.ca_bundle)
    return Planned(target, reference, reach.profile, push=push, login=login)


# What buildah says, lowercased, and the failure kind it means; the first match wins.
_SIGNS: tuple[tuple[FailureKind, str | None, tuple[str, ...]], ...] = (
    ("tls", None, ("x509:", "tls:", "certificate", "server gave http response to https client")),
    ("unreachable", "dns", ("no such host", "server misbehaving")),
    ("unreachable", "connect", ("connection refused", "connect: ", "network is unreachable")),
    ("unreachable", "timeout", ("i/o timeout", "deadline exceeded", "timeout")),
    ("rate_limited", None, ("toomanyrequests", "too many requests")),
    ("unauthorized", None, ("unauthorized", "authentication required")),
    ("forbidden", None, ("denied", "forbidden")),
    ("not_found", None, ("name unknown", "not found")),
)


def failure_of(output: str, reference: str, profile: str | None) -> Failed:
    """The failure a push's error output tells of (an upstream_error when nothing matches)."""
    text = output.lower()
    kind: FailureKind = "upstream_error"
    detail = None
    for sign_kind, sign_detail, words in _SIGNS:
        if any(word in text for word in words):
            kind, detail = sign_kind, sign_detail
            break
    said = output.strip()[-300:] or "no error output"
    advice = {
        "unauthorized": f"the registry refused the credentials of the registry profile {profile}: fix them",
        "forbidden": f"the credentials of the registry profile {profile} may not push there",
        "rate_limited": "the registry asks to slow down: build again later",
        "unreachable": "the registry could not be reached",
        "tls": "the registry's TLS certificate or handshake failed",
        "not_found": "the registry has no such repository",
        "upstream_error": "the registry failed",
    }[kind]
    return Failed(kind, f"the push to {reference} failed: {advice} ({said})", detail=detail, profile=profile)


def results_of(planned: list[Planned], pushed: list[TargetPushed]) -> list[dict[str, Any]]:
    """Each target's ``push_results`` entry, in the definition's order (``pushed``: the builder's
    outcomes of the targets that had a push to make, in the same order)."""
    outcomes = iter(pushed)
    found = []
    for target in planned:
        outcome = next(outcomes, None) if target.push is not None else None
        digest = outcome.digest if outcome is not None else None
        found.append(result(target, digest, outcome.output if outcome is not None else None))
    return found


def result(planned: Planned, digest: str | None, output: str | None) -> dict[str, Any]:
    """One ``push_results`` entry: ok with the digest, or the failure."""
    failure = planned.failure
    if failure is None and digest is None:
        failure = failure_of(output or "", planned.reference, planned.profile)
    found: dict[str, Any] = {
        "reference": planned.reference,
        "profile": planned.profile,
        "ok": failure is None,
        "digest": digest,
    }
    if failure is not None:
        found |= {"reason": failure.kind, "detail": failure.detail, "message": failure.message}
    return found


def summary(results: list[dict[str, Any]]) -> str | None:
    """What a succeeded run's ``reason`` says of failed targets (None when all went)."""
    failed = [r for r in results if not r["ok"]]
    if not failed:
        return None
    said = "; ".join(f"{r['reference']}: {r['reason']}" for r in failed)
    return f"pushed to Dockyard, but {len(failed)} of {len(results)} push targets failed ({said})"
