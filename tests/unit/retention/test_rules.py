"""What a retention rule selects (pure): push-time and semver order, patterns, immutable tags
kept, signature tags never counted and going with what they sign, per-repository ranking,
days counted from the last pull or push, and the bounds of every number."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dockyard.errors import Invalid
from dockyard.retention.rules import (
    DAY,
    RuleSpec,
    TagFact,
    UntaggedFact,
    check_spec,
    select_tags,
    select_untagged,
    semver_key,
)

NOW = 1_800_000_000.0


def fact(tag: str, pushed_days_ago: float, repo: str = "lab/app", digest: str | None = None) -> TagFact:
    return TagFact(
        repo, tag, digest or f"sha256:{abs(hash((repo, tag))):064x}"[:71], NOW - pushed_days_ago * DAY, None
    )


def never(_tag: str) -> str | None:
    return None


def doomed(spec: RuleSpec, facts: list[TagFact], immutable: Callable[[str], str | None] = never) -> list[str]:
    return [i.tag or "" for i in select_tags(check_spec(spec, "lab"), facts, NOW, immutable).doomed]


def test_keep_last_by_push_time_keeps_the_newest_per_repository() -> None:
    facts = [fact(f"t{i}", 10 - i) for i in range(5)] + [fact(f"o{i}", 10 - i, "lab/other") for i in range(3)]
    assert doomed(RuleSpec("keep_last", count=2), facts) == ["t2", "t1", "t0", "o0"]


def test_keep_last_by_semver_ranks_versions_not_push_times() -> None:
    tags = ["1.10.0", "1.9.0", "v1.2.0", "2.0.0-rc.1", "2.0.0", "2.0.0-rc.2", "1.9.0+build.5"]
    facts = [fact(tag, days) for days, tag in enumerate(tags)]  # pushed in a different order
    plan = select_tags(
        check_spec(RuleSpec("keep_last", count=3, ordering="semver"), "lab"), facts, NOW, never
    )
    # 2.0.0 > 2.0.0-rc.2 > 2.0.0-rc.1 > 1.10.0 > 1.9.0 (= 1.9.0+build.5) > v1.2.0
    assert [i.tag for i in plan.doomed] == ["1.10.0", "1.9.0+build.5", "1.9.0", "v1.2.0"]


def test_semver_rule_keeps_tags_that_are_not_versions_and_says_so() -> None:
    facts = [fact("latest", 1), fact("1.0.0", 5), fact("1.1.0", 4), fact("nightly", 30)]
    plan = select_tags(
        check_spec(RuleSpec("keep_last", count=1, ordering="semver"), "lab"), facts, NOW, never
    )
    assert [i.tag for i in plan.doomed] == ["1.0.0"]
    assert [(i.tag, i.reason) for i in plan.kept] == [
        ("latest", "not a semantic version"),
        ("nightly", "not a semantic version"),
    ]


def test_semver_key_orders_prereleases_below_their_release() -> None:
    keys = [
        semver_key(t)
        for t in (
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0",
        )
    ]
    assert all(k is not None for k in keys)
    assert keys == sorted(keys)  # type: ignore[type-var]
    assert [semver_key(t) for t in ("1.0", "01.0.0", "latest")] == [None, None, None]


def test_the_pattern_limits_which_tags_a_rule_sees() -> None:
    facts = [fact(f"v{i}", 10 - i) for i in range(4)] + [fact(f"dev-{i}", 20 - i) for i in range(4)]
    assert doomed(RuleSpec("keep_last", count=1, tag_pattern="dev-*"), facts) == ["dev-2", "dev-1", "dev-0"]


def test_immutable_tags_are_kept_and_listed_with_their_pattern() -> None:
    facts = [fact(f"v{i}", 10 - i) for i in range(4)]
    plan = select_tags(
        check_spec(RuleSpec("keep_last", count=1), "lab"),
        facts,
        NOW,
        lambda tag: "v1" if tag == "v1" else None,
    )
    assert [i.tag for i in plan.doomed] == ["v2", "v0"]
    assert [(i.tag, i.reason) for i in plan.kept] == [("v1", "immutable (pattern 'v1')")]


def test_signature_tags_are_not_counted_and_go_with_the_manifest_they_sign() -> None:
    old = "sha256:" + "1" * 64
    shared = "sha256:" + "2" * 64
    facts = [
        fact("old", 9, digest=old),
        fact("sha256-" + "1" * 64 + ".sig", 0, digest="sha256:" + "9" * 64),
        fact("sha256-" + "1" * 64 + ".att", 0, digest="sha256:" + "8" * 64),
        fact("older-alias", 10, digest=shared),
        fact("sha256-" + "2" * 64 + ".sig", 0, digest="sha256:" + "7" * 64),
        fact("new", 1, digest=shared),  # keeps `shared` tagged: its signature stays
    ]
    plan = select_tags(check_spec(RuleSpec("keep_last", count=1), "lab"), facts, NOW, never)
    assert [i.tag for i in plan.doomed] == [
        "old",
        "older-alias",
        "sha256-" + "1" * 64 + ".att",
        "sha256-" + "1" * 64 + ".sig",
    ]


def test_not_pulled_counts_from_the_last_pull_or_else_the_push() -> None:
    facts = [
        TagFact("lab/app", "never-pulled", "sha256:" + "a" * 64, NOW - 40 * DAY, None),
        TagFact("lab/app", "pulled-lately", "sha256:" + "b" * 64, NOW - 40 * DAY, NOW - 2 * DAY),
        TagFact("lab/app", "pulled-long-ago", "sha256:" + "c" * 64, NOW - 90 * DAY, NOW - 31 * DAY),
        TagFact("lab/app", "pushed-lately", "sha256:" + "d" * 64, NOW - 3 * DAY, None),
    ]
    plan = select_tags(check_spec(RuleSpec("not_pulled", days=30), "lab"), facts, NOW, never)
    assert [(i.tag, i.reason) for i in plan.doomed] == [
        ("never-pulled", "last pushed 40 days ago"),
        ("pulled-long-ago", "last pulled 31 days ago"),
    ]


def test_untagged_older_than_d_days() -> None:
    facts = [
        UntaggedFact("lab/app", "sha256:" + "a" * 64, NOW - 8 * DAY),
        UntaggedFact("lab/app", "sha256:" + "b" * 64, NOW - 6 * DAY),
    ]
    plan = select_untagged(check_spec(RuleSpec("untagged", days=7), "lab"), facts, NOW)
    assert [(i.digest[-1], i.tag) for i in plan.doomed] == [("a", None)]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (RuleSpec("keep_last", count=0), "count must be between 1 and 10000"),
        (RuleSpec("keep_last", count=10_001), "count must be between 1 and 10000"),
        (RuleSpec("keep_last", count=5, ordering="alphabet"), "ordering must be one of pushed, semver"),
        (RuleSpec("not_pulled", days=0), "days must be between 1 and 3650"),
        (RuleSpec("untagged", days=3651), "days must be between 1 and 3650"),
        (RuleSpec("untagged", days=3, tag_pattern="v*"), "a rule on untagged manifests takes no tag pattern"),
        (RuleSpec("keep_last", count=1, tag_pattern="a b"), "tag pattern"),
        (
            RuleSpec("keep_last", count=1, repository="other/app"),
            "the repository must be one of workspace 'lab'",
        ),
        (RuleSpec("keep_last", count=1, every_hours=9000), "every_hours must be between 0"),
        (RuleSpec("keep_last", count=1, daily_at=24), "daily_at must be an hour between 0 and 23"),
        (RuleSpec("keep_last", count=1, every_hours=6, daily_at=3), "give every_hours or daily_at, not both"),
        (RuleSpec("expire"), "kind must be one of"),
    ],
)
def test_bad_rules_are_refused_with_the_reason(spec: RuleSpec, message: str) -> None:
    with pytest.raises(Invalid) as raised:
        check_spec(spec, "lab")
    assert str(raised.value).startswith(message)


def test_schedules_run_every_n_hours_daily_at_an_hour_or_when_started() -> None:
    midnight = 1_800_057_600.0  # 2027-01-15 00:00 UTC
    assert midnight % DAY == 0
    daily = RuleSpec("keep_last", count=1, daily_at=3)
    assert daily.schedule() == "daily at 03:00 UTC"
    assert daily.next_run(midnight + 3600) == midnight + 3 * 3600  # later today
    assert daily.next_run(midnight + 3 * 3600) == midnight + DAY + 3 * 3600  # just ran: tomorrow
    hourly = RuleSpec("keep_last", count=1, every_hours=6)
    assert hourly.schedule() == "every 6 h"
    assert hourly.next_run(midnight) == midnight + 6 * 3600
    manual = RuleSpec("keep_last", count=1)
    assert manual.schedule() == "when started"
    assert manual.next_run(midnight) is None


def test_signature_tags_an_immutability_rule_protects_stay_with_their_reason() -> None:
    old, new, signature = "sha256:" + "a" * 64, "sha256:" + "b" * 64, "sha256:" + "c" * 64
    sig = "sha256-" + "a" * 64 + ".sig"
    facts = [
        TagFact("lab/app", "v1", old, 1.0, None),
        TagFact("lab/app", "v2", new, 2.0, None),
        TagFact("lab/app", sig, signature, 1.5, None),
    ]

    def immutable(tag: str) -> str | None:
        return "sha256-*" if tag.startswith("sha256-") else None

    plan = select_tags(RuleSpec("keep_last", count=1), facts, 10.0, immutable)
    assert [(i.tag, i.delete) for i in plan.items] == [("v1", True), (sig, False)]
    assert plan.kept[0].reason == "immutable (pattern 'sha256-*')"
    unprotected = select_tags(RuleSpec("keep_last", count=1), facts, 10.0, lambda _: None)
    assert [(i.tag, i.delete) for i in unprotected.items] == [("v1", True), (sig, True)]
