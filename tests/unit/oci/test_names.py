"""Repository names and tags against the grammar of the OCI Distribution spec:

``[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(\\/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*`` and
``[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}``.
"""

from __future__ import annotations

import pytest

from dockyard.oci.errors import InvalidName, InvalidTag
from dockyard.oci.names import (
    MAX_NAME_LENGTH,
    MAX_NAMESPACE_LENGTH,
    is_tag,
    validate_hosted_name,
    validate_name,
    validate_tag,
)


@pytest.mark.parametrize(
    "name",
    [
        "a",
        "0",
        "library/alpine",
        "a/b/c/d/e",
        "a.b",
        "a_b",
        "a__b",
        "a-b",
        "a---b",
        "a.b_c__d-e--f",
        "0a/1b",
        "registry.example/team/tool",
        "x" * MAX_NAME_LENGTH,
    ],
)
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("", id="empty"),
        pytest.param("Alpine", id="uppercase"),
        pytest.param("library/Alpine", id="uppercase-component"),
        pytest.param("/a", id="leading-slash"),
        pytest.param("a/", id="trailing-slash"),
        pytest.param("a//b", id="empty-component"),
        pytest.param("-a", id="leading-dash"),
        pytest.param("a-", id="trailing-dash"),
        pytest.param(".a", id="leading-dot"),
        pytest.param("a.", id="trailing-dot"),
        pytest.param("_a", id="leading-underscore"),
        pytest.param("a_", id="trailing-underscore"),
        pytest.param("a..b", id="double-dot"),
        pytest.param("a___b", id="triple-underscore"),
        pytest.param("a.-b", id="mixed-separators"),
        pytest.param("a_-b", id="underscore-dash"),
        pytest.param("a/../b", id="dotdot"),
        pytest.param("a:b", id="colon"),
        pytest.param("a b", id="space"),
        pytest.param("a@b", id="at"),
        pytest.param("caf\u00e9", id="non-ascii"),
        pytest.param("library/alpine\n", id="trailing-newline"),
        pytest.param("library/alpine\r\nX-Injected: 1", id="header-injection"),
    ],
)
def test_invalid_names(name: str) -> None:
    with pytest.raises(InvalidName):
        validate_name(name)


def test_name_length_limit_counts_the_whole_name() -> None:
    at_limit = "/".join(["abc"] * 64)[:MAX_NAME_LENGTH]  # 255 characters, many components
    assert len(at_limit) == MAX_NAME_LENGTH
    assert validate_name(at_limit) == at_limit
    with pytest.raises(InvalidName) as info:
        validate_name(at_limit + "d")
    assert str(MAX_NAME_LENGTH) in info.value.message


def test_overlong_name_message_is_bounded() -> None:
    with pytest.raises(InvalidName) as info:
        validate_name("A" * 10_000)
    assert len(info.value.message) < 500


@pytest.mark.parametrize(
    "tag",
    ["latest", "v1.0.0", "1", "_private", "A", "Release_2024-01.rc1", "a" * 128, "x..y", "x--"],
)
def test_valid_tags(tag: str) -> None:
    assert is_tag(tag)
    assert validate_tag(tag) == tag


@pytest.mark.parametrize(
    "tag",
    [
        pytest.param("", id="empty"),
        pytest.param(".hidden", id="leading-dot"),
        pytest.param("-dash", id="leading-dash"),
        pytest.param("a" * 129, id="129-chars"),
        pytest.param("a/b", id="slash"),
        pytest.param("a:b", id="colon"),
        pytest.param("a+b", id="plus"),
        pytest.param("a b", id="space"),
        pytest.param("caf\u00e9", id="non-ascii"),
        pytest.param("latest\n", id="trailing-newline"),
        pytest.param("sha256:" + "a" * 64, id="digest"),
    ],
)
def test_invalid_tags(tag: str) -> None:
    assert not is_tag(tag)
    with pytest.raises(InvalidTag):
        validate_tag(tag)


def test_hosted_names_have_a_workspace_of_at_most_64_characters() -> None:
    longest = "w" * MAX_NAMESPACE_LENGTH + "/tool"
    assert validate_hosted_name(longest) == longest
    assert validate_hosted_name("w" * MAX_NAMESPACE_LENGTH) == "w" * MAX_NAMESPACE_LENGTH
    for name in ("w" * (MAX_NAMESPACE_LENGTH + 1), "w" * (MAX_NAMESPACE_LENGTH + 1) + "/tool"):
        assert validate_name(name) == name  # the spec has no such limit (an upstream's name)
        with pytest.raises(InvalidName) as info:
            validate_hosted_name(name)
        assert str(MAX_NAMESPACE_LENGTH) in info.value.message


def test_hosted_names_follow_the_spec_grammar_too() -> None:
    with pytest.raises(InvalidName):
        validate_hosted_name("Upper/case")
    with pytest.raises(InvalidName):
        validate_hosted_name("a/" + "b" * MAX_NAME_LENGTH)
