"""Which tags a workspace's rules make immutable, and which rules are refused."""

from __future__ import annotations

import pytest

from dockyard.catalog.immutability import MAX_RULES, TagRules, check_rules
from dockyard.errors import Invalid


@pytest.mark.parametrize(
    ("patterns", "exceptions", "tag", "rule"),
    [
        (["*"], ["latest"], "1.0", "*"),
        (["*"], ["latest"], "latest", None),
        (["v*"], [], "v2.1", "v*"),
        (["v*"], [], "V2.1", None),  # case counts, as in tags
        (["v*"], ["v*-rc?"], "v2-rc1", None),
        (["v*"], ["v*-rc?"], "v2-rc10", "v*"),
        (["1.[0-9]"], [], "1.7", "1.[0-9]"),
        (["1.[!0-9]"], [], "1.7", None),
        ([], [], "anything", None),
        (["a*", "ab*"], [], "abc", "a*"),  # the first matching pattern is named
    ],
)
def test_a_tag_is_immutable_when_a_pattern_and_no_exception_matches(
    patterns: list[str], exceptions: list[str], tag: str, rule: str | None
) -> None:
    assert TagRules(patterns, exceptions).rule_for(tag) == rule


@pytest.mark.parametrize(
    ("patterns", "exceptions", "message"),
    [
        (["v/1"], [], "tag pattern 'v/1'"),
        ([""], [], "tag pattern ''"),
        (["x" * 129], [], "tag pattern"),
        (["ok"], ["no way"], "tag pattern 'no way'"),
        ([f"v{i}" for i in range(MAX_RULES + 1)], [], f"at most {MAX_RULES} patterns"),
        ([], ["e"] * (MAX_RULES + 1), f"at most {MAX_RULES} exceptions"),
    ],
)
def test_bad_rules_are_refused_with_the_reason(
    patterns: list[str], exceptions: list[str], message: str
) -> None:
    with pytest.raises(Invalid, match=message.replace("[", r"\[").replace("*", r"\*")):
        check_rules(patterns, exceptions)


def test_rules_are_kept_once_each_in_their_order() -> None:
    assert check_rules(["v*", "1.*", "v*"], ["latest", "latest"]) == TagRules(["v*", "1.*"], ["latest"])
