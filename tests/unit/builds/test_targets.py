"""Push targets: what a definition may name, how a failed push's output becomes an upstream
failure reason, and how the CLI reads ``--push-to``."""

from __future__ import annotations

import pytest

from dockyard.builds.builder import TargetPush, TargetPushed
from dockyard.builds.targets import (
    MAX_TARGETS,
    Planned,
    PushTarget,
    check_targets,
    failure_of,
    results_of,
    summary,
    targets_json,
    targets_of,
)
from dockyard.cli.build_targets import parse_target, targets_body
from dockyard.cli.errors import CliError
from dockyard.errors import Invalid
from dockyard.upstream.results import Failed


def test_targets_are_checked_and_normalised() -> None:
    found = check_targets(
        [PushTarget("Quay.IO", "org/tool", "v1"), PushTarget("127.0.0.1:5000", "mirror/tool")]
    )
    assert found == [
        PushTarget("quay.io", "org/tool", "v1"),
        PushTarget("127.0.0.1:5000", "mirror/tool", None),
    ]
    assert targets_of(targets_json(found)) == found
    assert found[1].reference("2.0") == "127.0.0.1:5000/mirror/tool:2.0"


@pytest.mark.parametrize(
    ("targets", "said"),
    [
        ([PushTarget("quay.io", "Org/Tool")], "invalid repository name"),
        ([PushTarget("quay.io", "org/tool", ".hidden")], "invalid tag"),
        ([PushTarget("quay.io", "org/tool", "x" * 129)], "invalid tag"),
        ([PushTarget("quay.io", "org/" + "a" * 300)], "longer than 255"),
        ([PushTarget("not a host", "org/tool")], "is not a registry host"),
        ([PushTarget("quay.io", "org/tool"), PushTarget("QUAY.io", "org/tool")], "given twice"),
        ([PushTarget("quay.io", f"org/t{i}") for i in range(MAX_TARGETS + 1)], f"at most {MAX_TARGETS}"),
    ],
)
def test_bad_targets_are_refused_saying_why(targets: list[PushTarget], said: str) -> None:
    with pytest.raises(Invalid) as caught:
        check_targets(targets)
    assert said in str(caught.value)


@pytest.mark.parametrize(
    ("output", "kind", "detail"),
    [
        (
            "Error: ... initiating layer upload ... unauthorized: authentication required",
            "unauthorized",
            None,
        ),
        ("Error: ... denied: requested access to the resource is denied", "forbidden", None),
        ("Error: ... toomanyrequests: slow down", "rate_limited", None),
        ("Error: dial tcp 127.0.0.1:1: connect: connection refused", "unreachable", "connect"),
        ("Error: dial tcp: lookup nowhere.invalid: no such host", "unreachable", "dns"),
        ("Error: ... i/o timeout", "unreachable", "timeout"),
        ("Error: ... x509: certificate signed by unknown authority", "tls", None),
        ("Error: ... name unknown: repository name not known to registry", "not_found", None),
        ("Error: ... received unexpected HTTP status: 500 Internal Server Error", "upstream_error", None),
    ],
)
def test_a_failed_push_says_the_upstream_failure_reason(output: str, kind: str, detail: str | None) -> None:
    failure = failure_of(output, "quay.io/org/tool:1", "quay.io (workspace 3)")
    assert (failure.kind, failure.detail) == (kind, detail)
    assert failure.message.startswith("the push to quay.io/org/tool:1 failed")
    if kind == "unauthorized":
        assert "the registry profile quay.io (workspace 3)" in failure.message


def test_results_follow_the_definitions_order_and_a_failure_is_summed_up() -> None:
    good = Planned(
        PushTarget("a.io", "x"), "a.io/x:1", "a.io (platform)", push=TargetPush("a.io/x:1", "a.io")
    )
    gone = Planned(PushTarget("b.io", "x"), "b.io/x:1", failure=Failed("unauthorized", "the profile is gone"))
    bad = Planned(PushTarget("c.io", "x"), "c.io/x:1", "c.io (platform)", push=TargetPush("c.io/x:1", "c.io"))
    results = results_of(
        [good, gone, bad],
        [TargetPushed("a.io/x:1", "sha256:" + "1" * 64), TargetPushed("c.io/x:1", None, "Error: denied")],
    )
    assert [(r["reference"], r["ok"], r.get("reason")) for r in results] == [
        ("a.io/x:1", True, None),
        ("b.io/x:1", False, "unauthorized"),
        ("c.io/x:1", False, "forbidden"),
    ]
    assert results[0]["digest"] == "sha256:" + "1" * 64
    said = summary(results)
    assert said is not None
    assert "2 of 3 push targets failed" in said
    assert summary(results[:1]) is None


def test_the_cli_reads_push_targets() -> None:
    assert parse_target("127.0.0.1:5000/mirror/tool:v2") == {
        "profile": "127.0.0.1:5000",
        "repository": "mirror/tool",
        "tag": "v2",
    }
    assert parse_target("quay.io/org/tool") == {"profile": "quay.io", "repository": "org/tool", "tag": None}
    assert targets_body(None, True) == {"push_targets": []}
    assert targets_body(None, False) == {}
    with pytest.raises(CliError):
        parse_target("quay.io")
    with pytest.raises(CliError):
        targets_body(["quay.io/x"], True)
