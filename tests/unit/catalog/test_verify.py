"""Verifying external versions, what compute nodes may run and how a version resolves to a pinned
reference (:mod:`dockyard.catalog.verify`), on a real metadata database (SQLite and PostgreSQL).
The upstream registry is a :class:`FakeResolver`: what it answers is what the verifier records."""

from __future__ import annotations

import pytest

from dockyard.app.services import Services
from dockyard.catalog.verify import Pinned, Runnable
from dockyard.errors import Conflict, Invalid, NotFound
from dockyard.upstream.profiles import Profiles
from dockyard.upstream.results import Credentials
from dockyard.upstream.verifier import Unresolved
from tests.unit.catalog.factories import (
    AMD64,
    ARM64,
    WORKSPACE,
    FakeResolver,
    People,
    event_kinds,
    image,
    inspect_all,
    push,
    resolved,
    verification,
)

ALPINE = "docker.io/library/alpine:latest"
SAMTOOLS = "quay.io/biocontainers/samtools:1.19"
HOST = "dockyard.example:5000"
NO_AMD64 = "this image has no linux/amd64 platform"


async def test_a_reachable_version_records_what_its_registry_answers(
    services: Services, people: People
) -> None:
    resolver = FakeResolver({ALPINE: resolved(AMD64, ("linux/amd64", "linux/arm64"), 3_000_000)})
    await services.catalog.register_external(people.developer, WORKSPACE, "alpine")

    checked = await verification(services, resolver).verify(people.developer, "lab/alpine", "latest")

    assert (checked.status, checked.status_reason, checked.digest) == ("reachable", None, AMD64)
    assert (checked.platforms, checked.has_amd64, checked.compressed_size) == (
        ["linux/amd64", "linux/arm64"],
        True,
        3_000_000,
    )
    assert checked.media_type == "application/vnd.oci.image.index.v1+json"
    assert checked.checked_at is not None
    assert [w.message for w in checked.warnings if w.code == "moving_tag"] == [  # the real digest to pin
        "no tag given, so tag 'latest' is used and it moves: pin the digest "
        f"(docker.io/library/alpine@{AMD64}) to keep this version reproducible"
    ]
    assert [w.code for w in checked.warnings] == ["moving_tag", "not_copied"]
    assert [reference for reference, _ in resolver.calls] == [ALPINE]
    events = await services.catalog.events(people.reader, "lab/alpine")
    assert (events[0].kind, events[0].version, events[0].detail) == (
        "verified",
        "latest",
        {"status": "reachable", "reason": None},
    )


async def test_an_unreachable_version_says_why(services: Services, people: People) -> None:
    resolver = FakeResolver({SAMTOOLS: Unresolved("unauthorized", "the registry wants credentials")})
    await services.catalog.register_external(people.developer, WORKSPACE, SAMTOOLS)

    checked = await verification(services, resolver).verify(people.reader, "lab/samtools", "1.19")

    assert (checked.status, checked.status_reason) == (
        "unreachable",
        "unauthorized: the registry wants credentials",
    )
    assert (checked.digest, checked.platforms, checked.has_amd64) == (None, [], None)
    assert (await event_kinds(services, "lab/samtools"))[-1] == ("verified", "1.19")


async def test_a_pinned_digest_that_is_gone_upstream_is_unreachable(
    services: Services, people: People
) -> None:
    reference = f"{SAMTOOLS}@{AMD64}"
    await services.catalog.register_external(people.developer, WORKSPACE, reference)

    checked = await verification(services, FakeResolver({reference: resolved(ARM64)})).verify(
        people.developer, "lab/samtools", "1.19"
    )

    assert (checked.status, checked.digest) == ("unreachable", AMD64)
    assert checked.status_reason == f"the pinned digest {AMD64} is gone upstream"


async def test_the_amd64_warning_follows_the_platforms_found(services: Services, people: People) -> None:
    resolver = FakeResolver({SAMTOOLS: resolved(ARM64, ("linux/arm64",))})
    await services.catalog.register_external(people.developer, WORKSPACE, SAMTOOLS)
    checks = verification(services, resolver)

    arm_only = await checks.verify(people.developer, "lab/samtools", "1.19")
    again = await checks.verify(people.developer, "lab/samtools", "1.19")
    resolver.answers[SAMTOOLS] = resolved(AMD64, ("linux/amd64", "linux/arm64"))
    rebuilt = await checks.verify(people.developer, "lab/samtools", "1.19")

    assert arm_only.has_amd64 is False
    assert [w.code for w in arm_only.warnings] == ["not_copied", "no_amd64"]
    assert [w.code for w in again.warnings] == ["not_copied", "no_amd64"]  # once, however often verified
    assert rebuilt.has_amd64 is True
    assert [w.code for w in rebuilt.warnings] == ["not_copied"]


async def test_only_external_versions_are_verified(services: Services, people: People) -> None:
    await push(services, "lab/bwa", "v1")
    resolver = FakeResolver()

    with pytest.raises(Conflict, match="only external versions are verified"):
        await verification(services, resolver).verify(people.owner, "lab/bwa", "v1")
    with pytest.raises(NotFound, match="image 'lab/bwa' not found"):
        await verification(services, resolver).verify(people.outsider, "lab/bwa", "v1")
    assert resolver.calls == []


async def test_the_workspace_s_kept_credentials_are_used_for_its_registry(
    services: Services, people: People
) -> None:
    credentials = services.verification.credentials
    await credentials.put(people.maintainer, WORKSPACE, "quay.io", "robot$lab", "s3cret")
    await services.catalog.register_external(people.developer, WORKSPACE, SAMTOOLS)
    await services.catalog.register_external(people.developer, WORKSPACE, "alpine:3.20")
    resolver = FakeResolver()
    checks = verification(services, resolver)

    await checks.verify(people.developer, "lab/samtools", "1.19")
    await checks.verify(people.developer, "lab/alpine", "3.20")

    workspace_id = resolver.calls[0][1]
    assert resolver.calls == [(SAMTOOLS, workspace_id), ("docker.io/library/alpine:3.20", workspace_id)]
    profiles = Profiles(services.db, credentials.cipher())
    quay = await profiles.connection_for(None, workspace_id, "quay.io")
    assert (quay.scheme, quay.credentials, quay.kind) == (
        "https",
        Credentials("robot$lab", "s3cret", f"quay.io (workspace {workspace_id})"),
        "distribution",
    )
    hub = await profiles.connection_for(None, workspace_id, "docker.io")
    assert (hub.scheme, hub.credentials, hub.profile) == ("https", None, None)


async def test_a_strict_workspace_refuses_a_registration_without_amd64(
    services: Services, people: People
) -> None:
    await services.catalog.set_policy(people.owner, WORKSPACE, True)
    resolver = FakeResolver({SAMTOOLS: resolved(ARM64, ("linux/arm64",)), ALPINE: resolved(AMD64)})
    checks = verification(services, resolver)
    await services.catalog.register_external(people.developer, WORKSPACE, "alpine")
    await services.catalog.register_external(people.developer, WORKSPACE, SAMTOOLS)

    kept = await checks.check_platforms(people.developer, "lab/alpine", "latest", new_image=True)
    with pytest.raises(Invalid, match=f"refused by the workspace policy: {NO_AMD64}"):
        await checks.check_platforms(people.developer, "lab/samtools", "1.19", new_image=True)

    assert (kept.status, kept.has_amd64) == ("reachable", True)
    assert [i.name for i in (await services.catalog.search(people.owner)).items] == ["lab/alpine"]


async def test_a_refused_version_leaves_the_image_it_was_added_to(services: Services, people: People) -> None:
    await services.catalog.register_external(people.developer, WORKSPACE, "alpine:3.20")
    await services.catalog.register_external(people.developer, WORKSPACE, "alpine:edge-arm", new_image=False)
    checks = verification(
        services, FakeResolver({"docker.io/library/alpine:edge-arm": resolved(ARM64, ("linux/arm64",))})
    )

    with pytest.raises(Invalid, match="refused by the workspace policy"):
        await checks.check_platforms(people.developer, "lab/alpine", "edge-arm")

    assert [v.version for v in (await services.catalog.get(people.owner, "lab/alpine")).versions] == ["3.20"]
    assert (await event_kinds(services, "lab/alpine"))[-1] == ("version.refused", "edge-arm")


async def test_an_unreachable_registration_is_kept_to_verify_later(
    services: Services, people: People
) -> None:
    await services.catalog.register_external(people.developer, WORKSPACE, SAMTOOLS)

    checked = await verification(services, FakeResolver()).check_platforms(
        people.developer, "lab/samtools", "1.19", new_image=True
    )

    assert checked.status == "unreachable"
    assert (await services.catalog.version(people.owner, "lab/samtools", "1.19")).status == "unreachable"


async def test_runnable_versions_carry_what_to_pull(services: Services, people: People) -> None:
    pushed = await push(services, "lab/bwa", "v1", image("amd64"))
    await push(services, "lab/bwa", "v2", image("amd64"))  # pending: not runnable yet
    assert await inspect_all(services) == 2
    await push(services, "lab/bwa", "v3", image("amd64"))  # stays pending
    resolver = FakeResolver({ALPINE: resolved(AMD64)})
    checks = verification(services, resolver)
    await services.catalog.register_external(people.developer, WORKSPACE, "alpine")
    await checks.verify(people.developer, "lab/alpine", "latest")
    await services.catalog.register_external(people.developer, WORKSPACE, SAMTOOLS)  # unverified
    await services.catalog.register_external(people.developer, WORKSPACE, "quay.io/gone/tool:1")
    await checks.verify(people.developer, "lab/tool", "1")  # unreachable

    runnable = await checks.runnable(people.reader, registry_host=HOST)

    by_name = {(r.image, r.version): r for r in runnable}
    assert sorted(by_name) == [
        ("lab/alpine", "latest"),
        ("lab/bwa", "v1"),
        ("lab/bwa", "v2"),
        ("lab/samtools", "1.19"),
    ]
    assert by_name["lab/bwa", "v1"] == Runnable(
        "lab/bwa", "v1", "internal", "tool", "available", ["linux/amd64"], f"{HOST}/lab/bwa@{pushed.digest}"
    )
    assert by_name["lab/alpine", "latest"].pull == f"docker.io/library/alpine@{AMD64}"
    assert by_name["lab/samtools", "1.19"].pull == SAMTOOLS  # no digest known yet: the reference
    assert [
        r.version for r in await checks.runnable(people.reader, registry_host=HOST, status="unverified")
    ] == ["1.19"]
    assert await checks.runnable(people.outsider, registry_host=HOST) == []


async def test_a_strict_workspace_runs_only_amd64_versions(services: Services, people: People) -> None:
    await push(services, "lab/bwa", "arm", image("arm64"))
    await push(services, "lab/bwa", "amd", image("amd64"))
    await inspect_all(services)
    checks = verification(services, FakeResolver())
    assert {r.version for r in await checks.runnable(people.reader, registry_host=HOST)} == {"arm", "amd"}

    await services.catalog.set_policy(people.owner, WORKSPACE, True)

    assert [r.version for r in await checks.runnable(people.reader, registry_host=HOST)] == ["amd"]
    with pytest.raises(Conflict, match=f"requires linux/amd64 and this version has linux/arm64; {NO_AMD64}"):
        await checks.resolve(people.reader, "lab/bwa", "arm", HOST)
    assert (await checks.resolve(people.reader, "lab/bwa", "amd", HOST)).source == "internal"


async def test_an_internal_version_resolves_to_this_registry(services: Services, people: People) -> None:
    pushed = await push(services, "lab/bwa", "v1")
    checks = verification(services, FakeResolver())
    with pytest.raises(Conflict, match="lab/bwa:v1 cannot be run: pending"):
        await checks.resolve(people.reader, "lab/bwa", "v1", HOST)

    await inspect_all(services)

    assert await checks.resolve(people.reader, "lab/bwa", "v1", HOST) == Pinned(
        "lab/bwa", "v1", pushed.digest, f"{HOST}/lab/bwa@{pushed.digest}", "internal"
    )


async def test_an_external_version_is_verified_when_first_resolved(
    services: Services, people: People
) -> None:
    resolver = FakeResolver({SAMTOOLS: resolved(AMD64)})
    checks = verification(services, resolver)
    await services.catalog.register_external(people.developer, WORKSPACE, SAMTOOLS)

    first = await checks.resolve(people.reader, "lab/samtools", "1.19", HOST)
    second = await checks.resolve(people.reader, "lab/samtools", "1.19", HOST)

    assert (
        first
        == second
        == Pinned("lab/samtools", "1.19", AMD64, f"quay.io/biocontainers/samtools@{AMD64}", "external")
    )
    assert len(resolver.calls) == 1  # reachable once verified: not asked again
    assert (await services.catalog.version(people.reader, "lab/samtools", "1.19")).status == "reachable"


async def test_an_unreachable_external_version_cannot_be_run(services: Services, people: People) -> None:
    resolver = FakeResolver()
    await services.catalog.register_external(people.developer, WORKSPACE, SAMTOOLS)

    with pytest.raises(
        Conflict, match=f"cannot be run: unreachable \\(not_found: {SAMTOOLS} is not there\\)"
    ):
        await verification(services, resolver).resolve(people.reader, "lab/samtools", "1.19", HOST)

    resolver.answers[SAMTOOLS] = resolved(AMD64)  # back upstream: asked again, and runs
    assert (
        await verification(services, resolver).resolve(people.reader, "lab/samtools", "1.19", HOST)
    ).digest == AMD64
    assert len(resolver.calls) == 2
