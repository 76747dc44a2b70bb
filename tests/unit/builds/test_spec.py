"""The content hash decides built / modified; the checks keep unsafe input out."""

from __future__ import annotations

import pytest

from dockyard.builds.spec import (
    GitSource,
    Recipe,
    check_build_args,
    check_destination,
    check_git,
    check_network,
    check_platform,
    full_name,
)
from dockyard.errors import Invalid

BASE = Recipe(context="local", dockerfile="FROM scratch\n", context_digest="sha256:" + "a" * 64)


def test_the_hash_covers_what_decides_the_image() -> None:
    same = Recipe(context="local", dockerfile="FROM scratch\n", context_digest="sha256:" + "a" * 64)
    assert same.content_hash() == BASE.content_hash()
    changes = [
        Recipe(context="local", dockerfile="FROM scratch\nRUN true\n", context_digest=BASE.context_digest),
        Recipe(context="local", dockerfile=BASE.dockerfile, context_digest="sha256:" + "b" * 64),
        Recipe(context="local", dockerfile=BASE.dockerfile, context_digest=BASE.context_digest, target="t"),
        Recipe(context="local", dockerfile=BASE.dockerfile, build_args={"A": "1"}),
        Recipe(context="local", dockerfile=BASE.dockerfile, platform="linux/arm64"),
        Recipe(
            context="local", dockerfile=BASE.dockerfile, context_digest=BASE.context_digest, network="egress"
        ),
    ]
    hashes = {recipe.content_hash() for recipe in changes} | {BASE.content_hash()}
    assert len(hashes) == len(changes) + 1


def test_the_default_network_keeps_the_hashes_of_definitions_saved_before_it_existed() -> None:
    # The hash of this recipe as computed before the network setting was added.
    assert BASE.network == "none"
    assert BASE.content_hash() == "sha256:c22defee9ff7522e3d01722282a00b27ec89768e5b0b0e879bd19a64760a68e9"
    older = {k: v for k, v in BASE.as_json().items() if k != "network"}  # a run queued before
    assert Recipe.from_json(older) == BASE
    egress = Recipe(context="local", dockerfile="FROM x\n", network="egress")
    assert Recipe.from_json(egress.as_json()) == egress


def test_the_network_is_none_or_egress() -> None:
    assert (check_network("none"), check_network("egress")) == ("none", "egress")
    for wrong in ("host", "", "EGRESS", "bridge"):
        with pytest.raises(Invalid, match="'none' \\(RUN steps reach nothing\\) or 'egress'"):
            check_network(wrong)


def test_build_argument_order_does_not_matter() -> None:
    one = Recipe(context="local", dockerfile="FROM x\n", build_args={"A": "1", "B": "2"})
    two = Recipe(context="local", dockerfile="FROM x\n", build_args={"B": "2", "A": "1"})
    assert one.content_hash() == two.content_hash()


def test_a_git_recipe_hashes_its_source_and_survives_json() -> None:
    recipe = Recipe(context="git", git=GitSource("https://example.org/r.git", "main", "app", "Dockerfile"))
    moved = Recipe(context="git", git=GitSource("https://example.org/r.git", "v2", "app", "Dockerfile"))
    assert recipe.content_hash() != moved.content_hash()
    assert Recipe.from_json(recipe.as_json()) == recipe
    assert Recipe.from_json(recipe.as_json()).content_hash() == recipe.content_hash()


def test_names_follow_the_catalog_rule() -> None:
    assert full_name("lab", "tool") == "lab/tool"
    assert full_name("lab", "lab/tool") == "lab/tool"
    assert full_name("lab", "other/tool") == "lab/other/tool"
    with pytest.raises(Invalid, match="invalid image name"):
        full_name("lab", "Tool")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file:///srv/repo", "clones only https://"),
        ("ext::sh -c touch% /tmp/pwned", "git repository as a URL"),
        ("--upload-pack=touch /tmp/x", "git repository as a URL"),
        ("", "git repository as a URL"),
    ],
)
def test_git_urls_outside_the_allowed_protocols_are_refused(url: str, message: str) -> None:
    with pytest.raises(Invalid, match=message):
        check_git(GitSource(url, "main"), ["https"])


@pytest.mark.parametrize(
    ("directory", "ref"),
    [("../outside", "main"), ("a/../../b", "main"), ("app", "main..other"), ("app", "-x")],
)
def test_git_folders_and_refs_stay_inside_the_repository(directory: str, ref: str) -> None:
    with pytest.raises(Invalid):
        check_git(GitSource("https://example.org/r.git", ref, directory), ["https"])


def test_a_clean_git_source_is_normalised() -> None:
    checked = check_git(
        GitSource(" https://example.org/r.git ", "v1.2", "/tools/app/", "./Dockerfile"), ["https"]
    )
    assert checked == GitSource("https://example.org/r.git", "v1.2", "tools/app", "Dockerfile")


def test_other_checks() -> None:
    with pytest.raises(Invalid, match="build argument name"):
        check_build_args({"1BAD": "x"})
    with pytest.raises(Invalid, match="os/arch"):
        check_platform("amd64")
    with pytest.raises(Invalid, match="without a tag"):
        check_destination("quay.io/org/tool:1.0")
    assert check_destination("quay.io/org/tool") == "quay.io/org/tool"
    assert check_destination("") is None
