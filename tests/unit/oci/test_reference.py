"""External image references: parsing, Docker Hub normalisation, providers, refusals, warnings."""

from __future__ import annotations

import hashlib

import pytest

from dockyard.oci.reference import (
    DIGEST_PLACEHOLDER,
    ImageReference,
    Provider,
    ReferenceError,
    ReferenceWarning,
    WarningCode,
    is_moving_tag,
    parse_reference,
    warnings,
)

SHA256 = "sha256:" + hashlib.sha256(b"alpine").hexdigest()
SHA512 = "sha512:" + hashlib.sha512(b"alpine").hexdigest()
ECR_HOST = "123456789012.dkr.ecr.us-west-2.amazonaws.com"


def refusal(text: str) -> ReferenceError:
    with pytest.raises(ReferenceError) as caught:
        parse_reference(text)
    return caught.value


# The forms named in the issue ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical", "familiar", "provider", "name", "version"),
    [
        (
            "docker.io/alpine:latest",
            "docker.io/library/alpine:latest",
            "alpine:latest",
            Provider.DOCKERHUB,
            "alpine",
            "latest",
        ),
        (
            "registry.hub.docker.com/library/alpine:latest",
            "docker.io/library/alpine:latest",
            "alpine:latest",
            Provider.DOCKERHUB,
            "alpine",
            "latest",
        ),
        (
            "alpine",
            "docker.io/library/alpine:latest",
            "alpine:latest",
            Provider.DOCKERHUB,
            "alpine",
            "latest",
        ),
        (
            "quay.io/biocontainers/samtools:1.19--h50ea8bc_0",
            "quay.io/biocontainers/samtools:1.19--h50ea8bc_0",
            "quay.io/biocontainers/samtools:1.19--h50ea8bc_0",
            Provider.QUAY,
            "samtools",
            "1.19--h50ea8bc_0",
        ),
        (
            f"ghcr.io/org/tool@{SHA256}",
            f"ghcr.io/org/tool@{SHA256}",
            f"ghcr.io/org/tool@{SHA256}",
            Provider.GHCR,
            "tool",
            "sha256-" + SHA256[7:19],
        ),
        (
            f"{ECR_HOST}/ns/name:tag",
            f"{ECR_HOST}/ns/name:tag",
            f"{ECR_HOST}/ns/name:tag",
            Provider.ECR,
            "name",
            "tag",
        ),
        (
            "nvcr.io/nvidia/pytorch:24.01-py3",
            "nvcr.io/nvidia/pytorch:24.01-py3",
            "nvcr.io/nvidia/pytorch:24.01-py3",
            Provider.NVCR,
            "pytorch",
            "24.01-py3",
        ),
        (
            "registry.gitlab.com/group/project/image:1.0",
            "registry.gitlab.com/group/project/image:1.0",
            "registry.gitlab.com/group/project/image:1.0",
            Provider.GITLAB,
            "image",
            "1.0",
        ),
        (
            "registry.example.org/team/tool:2.1.0",
            "registry.example.org/team/tool:2.1.0",
            "registry.example.org/team/tool:2.1.0",
            Provider.GENERIC,
            "tool",
            "2.1.0",
        ),
    ],
)
def test_issue_forms(
    text: str, canonical: str, familiar: str, provider: Provider, name: str, version: str
) -> None:
    ref = parse_reference(text)
    assert ref.canonical == canonical
    assert ref.familiar == familiar
    assert ref.provider is provider
    assert ref.suggested_name == name
    assert ref.suggested_version == version


def test_fields_of_a_docker_hub_reference() -> None:
    ref = parse_reference("alpine:3.20")
    assert ref == ImageReference(registry="docker.io", repository="library/alpine", tag="3.20", digest=None)
    assert ref.name == "docker.io/library/alpine"
    assert ref.familiar_name == "alpine"
    assert ref.api_host == "registry-1.docker.io"
    assert ref.ecr_account_id is None
    assert ref.ecr_region is None


# Docker Hub normalisation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "alpine",
        "alpine:latest",
        "library/alpine",
        "docker.io/alpine",
        "docker.io/library/alpine",
        "index.docker.io/alpine",
        "index.docker.io/library/alpine:latest",
        "registry-1.docker.io/library/alpine",
        "registry.hub.docker.com/alpine",
        "registry.hub.docker.com/library/alpine:latest",
        "Docker.IO/alpine",
        "  alpine \n",
    ],
)
def test_docker_hub_aliases_normalise(text: str) -> None:
    ref = parse_reference(text)
    assert (ref.registry, ref.repository, ref.tag) == ("docker.io", "library/alpine", "latest")
    assert ref.canonical == "docker.io/library/alpine:latest"
    assert ref.familiar == "alpine:latest"


def test_docker_hub_namespaced_name_keeps_its_namespace() -> None:
    ref = parse_reference("biocontainers/samtools:1.19")
    assert ref.canonical == "docker.io/biocontainers/samtools:1.19"
    assert ref.familiar == "biocontainers/samtools:1.19"
    assert ref.provider is Provider.DOCKERHUB


def test_docker_hub_host_with_a_port_is_not_the_hub() -> None:
    ref = parse_reference("docker.io:5000/alpine")
    assert ref.registry == "docker.io:5000"
    assert ref.repository == "alpine"
    assert ref.provider is Provider.GENERIC


def test_registry_host_is_lowercased() -> None:
    assert parse_reference("Quay.IO/biocontainers/samtools:1.19").registry == "quay.io"


# Tags, digests and the implicit tag ---------------------------------------------------------------


def test_implicit_tag_is_latest_and_recorded() -> None:
    implicit = parse_reference("alpine")
    explicit = parse_reference("alpine:latest")
    assert implicit.tag == "latest"
    assert implicit.tag_implicit
    assert not explicit.tag_implicit
    assert implicit == explicit  # tag_implicit is informative, not identity


def test_digest_only_has_no_tag() -> None:
    ref = parse_reference(f"alpine@{SHA256}")
    assert ref.tag is None
    assert not ref.tag_implicit
    assert ref.digest == SHA256
    assert ref.digest is not None
    assert ref.digest.algorithm == "sha256"
    assert ref.canonical == f"docker.io/library/alpine@{SHA256}"
    assert ref.familiar == f"alpine@{SHA256}"


def test_tag_and_digest_are_both_kept() -> None:
    ref = parse_reference(f"alpine:3.20@{SHA256}")
    assert ref.tag == "3.20"
    assert ref.digest == SHA256
    assert ref.canonical == f"docker.io/library/alpine:3.20@{SHA256}"
    assert ref.familiar == f"alpine:3.20@{SHA256}"
    assert ref.suggested_version == "3.20"


def test_sha512_digest() -> None:
    ref = parse_reference(f"quay.io/org/tool@{SHA512}")
    assert ref.digest == SHA512
    assert ref.suggested_version == "sha512-" + SHA512[7:19]


def test_mixed_case_tag_is_kept() -> None:
    assert parse_reference("org/tool:V1.0-RC1").tag == "V1.0-RC1"


def test_with_digest_pins_and_keeps_the_tag() -> None:
    pinned = parse_reference("alpine").with_digest(SHA256)
    assert pinned.canonical == f"docker.io/library/alpine:latest@{SHA256}"
    assert not pinned.tag_implicit
    with pytest.raises(ReferenceError, match="expected sha256:<64 lowercase hex characters>"):
        parse_reference("alpine").with_digest("sha256:abc")


# Registries with ports and addresses ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "registry", "repository"),
    [
        ("localhost:5000/x/y", "localhost:5000", "x/y"),
        ("localhost/x", "localhost", "x"),
        ("127.0.0.1:5000/x", "127.0.0.1:5000", "x"),
        ("127.0.0.1/x", "127.0.0.1", "x"),
        ("[::1]:5000/x", "[::1]:5000", "x"),
        ("[fe80::1]/team/x", "[fe80::1]", "team/x"),
        ("registry.example.org:443/a/b/c", "registry.example.org:443", "a/b/c"),
    ],
)
def test_registry_with_port_or_address(text: str, registry: str, repository: str) -> None:
    ref = parse_reference(text)
    assert ref.registry == registry
    assert ref.repository == repository
    assert ref.api_host == registry
    assert ref.provider is Provider.GENERIC
    assert ref.canonical == f"{registry}/{repository}:latest"


def test_bare_host_and_port_is_a_hub_name_and_tag() -> None:
    # Distribution's grammar: without a '/', "localhost:5000" is the name "localhost" tagged "5000".
    ref = parse_reference("localhost:5000")
    assert ref.canonical == "docker.io/library/localhost:5000"


# ECR ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "account", "region"),
    [
        (ECR_HOST, "123456789012", "us-west-2"),
        ("000000000001.dkr.ecr.eu-central-1.amazonaws.com", "000000000001", "eu-central-1"),
        ("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", "123456789012", "cn-north-1"),
        ("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com", "123456789012", "us-gov-west-1"),
    ],
)
def test_ecr_account_and_region(host: str, account: str, region: str) -> None:
    ref = parse_reference(f"{host}/ns/name:tag")
    assert ref.provider is Provider.ECR
    assert ref.ecr_account_id == account
    assert ref.ecr_region == region
    assert ref.api_host == host
    assert ref.repository == "ns/name"


@pytest.mark.parametrize(
    "host",
    [
        pytest.param("12345678901.dkr.ecr.us-west-2.amazonaws.com", id="11-digit-account"),
        pytest.param("1234567890123.dkr.ecr.us-west-2.amazonaws.com", id="13-digit-account"),
        pytest.param("account.dkr.ecr.us-west-2.amazonaws.com", id="named-account"),
        pytest.param("123456789012.dkr.ecr.uswest2.amazonaws.com", id="bad-region"),
        pytest.param("123456789012.dkr.ecr.amazonaws.com", id="no-region"),
    ],
)
def test_malformed_ecr_host_is_refused(host: str) -> None:
    error = refusal(f"{host}/ns/name:tag")
    assert "is not an ECR registry host" in error.message
    assert "<12-digit account id>.dkr.ecr.<region>.amazonaws.com" in error.message


def test_ecr_lookalike_outside_amazonaws_is_generic() -> None:
    ref = parse_reference("123.dkr.ecr.example.org/ns/name")
    assert ref.provider is Provider.GENERIC
    assert ref.ecr_account_id is None


# Refusals and the fix they show ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fix"),
    [
        ("https://quay.io/biocontainers/samtools:1.19", "quay.io/biocontainers/samtools:1.19"),
        ("http://localhost:5000/x/y:1", "localhost:5000/x/y:1"),
        ("docker://alpine:3.20", "alpine:3.20"),
        ("https://ghcr.io/org/tool/", "ghcr.io/org/tool"),
        ("HTTPS://quay.io/org/tool?tab=tags#x", "quay.io/org/tool"),
    ],
)
def test_scheme_is_refused_with_the_bare_reference(text: str, fix: str) -> None:
    error = refusal(text)
    assert f"drop the scheme: use {fix}" in error.message
    assert error.suggestion == fix
    parse_reference(fix)


def test_scheme_and_uppercase_are_fixed_together() -> None:
    error = refusal("https://quay.io/BioContainers/samtools:1.19")
    assert error.suggestion == "quay.io/biocontainers/samtools:1.19"
    assert "drop the scheme: use quay.io/biocontainers/samtools:1.19" in error.message


def test_scheme_with_nothing_usable_explains_the_rest() -> None:
    error = refusal("https://")
    assert error.suggestion is None
    assert "drop the scheme; then: the image reference is empty" in error.message


@pytest.mark.parametrize(
    ("text", "fix"),
    [
        ("Alpine", "alpine"),
        ("Alpine:3.20", "alpine:3.20"),
        (
            "quay.io/BioContainers/Samtools:1.19--h50ea8bc_0",
            "quay.io/biocontainers/samtools:1.19--h50ea8bc_0",
        ),
        ("Biocontainers/samtools", "biocontainers/samtools"),
        (f"ghcr.io/Org/tool@{SHA256}", f"ghcr.io/org/tool@{SHA256}"),
        ("QUAY.IO/Org/Tool", "quay.io/org/tool"),
    ],
)
def test_uppercase_repository_suggests_lowercase(text: str, fix: str) -> None:
    error = refusal(text)
    assert error.message == f"repository names are lowercase: use {fix}"
    assert error.suggestion == fix


@pytest.mark.parametrize("text", ["", "   ", "\t\n"])
def test_empty(text: str) -> None:
    error = refusal(text)
    assert "the image reference is empty" in error.message
    assert "docker.io/library/alpine:3.20" in error.message


def test_colon_without_tag() -> None:
    error = refusal("quay.io/org/tool:")
    assert "empty tag after ':'" in error.message
    assert "quay.io/org/tool:<tag>" in error.message
    assert error.suggestion == "quay.io/org/tool"


def test_colon_without_tag_keeps_the_digest() -> None:
    error = refusal(f"alpine:@{SHA256}")
    assert error.suggestion == f"alpine@{SHA256}"
    assert f"drop the ':' (alpine@{SHA256})" in error.message


def test_at_without_digest() -> None:
    error = refusal("alpine:3.20@")
    assert "empty digest after '@'" in error.message
    assert "alpine:3.20@sha256:<64 lowercase hex characters>" in error.message
    assert error.suggestion == "alpine:3.20"


def test_tag_written_after_at() -> None:
    error = refusal("alpine@3.20")
    assert "for a tag use ':': use alpine:3.20" in error.message
    assert error.suggestion == "alpine:3.20"


@pytest.mark.parametrize(
    ("digest", "expected"),
    [
        ("sha256:abc", "got 3 characters, expected sha256:<64 lowercase hex characters>"),
        (SHA256 + "0", "got 65 characters, expected sha256:<64 lowercase hex characters>"),
        ("sha512:" + SHA256[7:], "got 64 characters, expected sha512:<128 lowercase hex characters>"),
        ("sha256:" + "g" * 64, "got 64 characters, expected sha256:<64 lowercase hex characters>"),
        ("md5:abc", "use sha256:<64 lowercase hex characters> or sha512:<128 lowercase hex characters>"),
        (SHA256 + "@" + SHA256, "got 136 characters"),
    ],
)
def test_bad_digest_shows_the_expected_form(digest: str, expected: str) -> None:
    error = refusal(f"alpine@{digest}")
    assert expected in error.message
    assert error.suggestion is None


def test_uppercase_digest_suggests_lowercase() -> None:
    error = refusal(f"alpine@{SHA256.upper()}")
    assert error.suggestion == f"alpine@{SHA256}"
    assert f"use alpine@{SHA256}" in error.message


def test_name_longer_than_255_is_refused() -> None:
    path = "/".join(["a" * 60] * 4)  # 243 characters; with "quay.io/" the name is 251
    parse_reference(f"quay.io/{path}")
    error = refusal(f"quay.io/{path}abcde")
    assert "256 characters long (registry included); at most 255 are allowed" in error.message


def test_huge_input_is_refused_without_echoing_it() -> None:
    error = refusal("a" * 5000)
    assert "5000 characters long" in error.message
    assert len(error.message) < 200


def test_tag_longer_than_128_is_refused() -> None:
    parse_reference("alpine:" + "t" * 128)
    error = refusal("alpine:" + "t" * 129)
    assert "a tag has 1 to 128 of [A-Za-z0-9_.-]" in error.message


@pytest.mark.parametrize("tag", ["-x", ".x", "a+b", "a!b"])
def test_invalid_tag(tag: str) -> None:
    error = refusal(f"quay.io/org/tool:{tag}")
    assert f"invalid tag {tag!r}" in error.message
    assert "does not start with '.' or '-'" in error.message


@pytest.mark.parametrize(
    ("text", "fix"),
    [("alpine/", "alpine"), ("org//tool:1", "org/tool:1"), ("quay.io/org/tool/", "quay.io/org/tool")],
)
def test_empty_path_component_suggests_the_tidy_path(text: str, fix: str) -> None:
    error = refusal(text)
    assert error.suggestion == fix
    assert f"use {fix}" in error.message


@pytest.mark.parametrize(
    ("text", "component"),
    [
        ("quay.io/org/-tool", "-tool"),
        ("quay.io/org/tool_", "tool_"),
        ("quay.io/a..b/c", "a..b"),
        ("quay.io/org/to___ol", "to___ol"),
        ("quay.io/org/tool:a/b", "tool:a"),
    ],
)
def test_invalid_path_component(text: str, component: str) -> None:
    error = refusal(text)
    assert f"invalid repository path component {component!r}" in error.message
    assert "use lowercase letters and digits, separated by '.', '_', '__' or '-'" in error.message


def test_registry_without_repository() -> None:
    assert "has no repository" in refusal("quay.io/").message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("quay.io:/org/tool", "empty port in 'quay.io:': use quay.io/org/tool or quay.io:<port>/org/tool"),
        ("quay.io:0/org/tool", "a port is a number from 1 to 65535"),
        ("quay.io:65536/org/tool", "a port is a number from 1 to 65535"),
        ("quay.io:http/org/tool", "a port is a number from 1 to 65535"),
        ("my_registry.io/org/tool", "invalid registry host 'my_registry.io'"),
        ("-bad.io/org/tool", "invalid registry host"),
        ("[::1/x", "invalid registry host"),
    ],
)
def test_bad_registry(text: str, message: str) -> None:
    assert message in refusal(text).message


@pytest.mark.parametrize(
    ("text", "fix"),
    [
        ("docker pull alpine:3.20", "alpine:3.20"),
        ("podman pull quay.io/org/tool:1", "quay.io/org/tool:1"),
        ("docker image pull ghcr.io/org/tool", "ghcr.io/org/tool"),
    ],
)
def test_pasted_pull_command_is_refused_with_the_image(text: str, fix: str) -> None:
    error = refusal(text)
    assert f"not the '{text.rsplit(' ', 1)[0]}' command: use {fix}" in error.message
    assert error.suggestion == fix


def test_inner_whitespace_is_refused() -> None:
    assert "an image reference has no spaces" in refusal("quay.io/org/my tool").message


def test_image_id_is_refused() -> None:
    image_id = SHA256[7:]
    error = refusal(image_id)
    assert "looks like an image ID, not a reference" in error.message
    assert f"<name>@sha256:{image_id}" in error.message


@pytest.mark.parametrize(
    ("text", "fix"),
    [
        ("hub.docker.com/_/alpine", "docker.io/library/alpine"),
        ("https://hub.docker.com/_/alpine/tags", "docker.io/library/alpine"),
        ("hub.docker.com/r/biocontainers/samtools", "docker.io/biocontainers/samtools"),
        ("https://hub.docker.com/r/biocontainers/samtools/tags?page=1", "docker.io/biocontainers/samtools"),
    ],
)
def test_docker_hub_website_is_refused_with_the_registry_name(text: str, fix: str) -> None:
    error = refusal(text)
    assert "hub.docker.com is the Docker Hub website, not a registry" in error.message or (
        "drop the scheme" in error.message
    )
    assert error.suggestion == fix
    assert f"use {fix}" in error.message


def test_docker_hub_website_page_without_an_image() -> None:
    error = refusal("hub.docker.com/u/someone")
    assert "use docker.io/<namespace>/<name>:<tag>" in error.message
    assert error.suggestion is None


@pytest.mark.parametrize(
    "text",
    [
        "a" + "-" * 1000 + "!",
        "a." * 500 + "!/x",
        "quay.io/" + "a_" * 500,
        "x" + ".dkr.ecr" * 120 + ".amazonaws.com/x",
    ],
)
def test_adversarial_input_is_refused(text: str) -> None:
    refusal(text)  # and quickly: the pytest run time would show backtracking


def test_reference_error_is_a_value_error() -> None:
    assert issubclass(ReferenceError, ValueError)


# Moving tags and warnings -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tag",
    [
        *["latest", "LATEST", "stable", "main", "master", "edge", "nightly", "dev", "release", "mainline"],
        *["lts", "3", "v2", "20", "3-slim", "20-alpine", "stable-alpine", "latest-gpu"],
    ],
)
def test_moving_tags(tag: str) -> None:
    assert is_moving_tag(tag)


@pytest.mark.parametrize(
    "tag",
    [
        "3.20",
        "3.20.1",
        "1.19--h50ea8bc_0",
        "24.01-py3",
        "v2.1",
        "nightly-20240101",
        "2024",
        "sha256-abc",
        "x",
    ],
)
def test_release_tags(tag: str) -> None:
    assert not is_moving_tag(tag)


def test_warnings_for_latest() -> None:
    found = warnings(parse_reference("docker.io/alpine:latest"))
    assert [w.code for w in found] == [WarningCode.MOVING_TAG, WarningCode.NOT_COPIED]
    assert found[0].message == (
        "tag 'latest' moves: pin the digest (docker.io/library/alpine@sha256:...) "
        "to keep this version reproducible"
    )
    assert found[0].pin_name == "docker.io/library/alpine"


def test_warnings_for_an_implicit_tag_say_so() -> None:
    moving = warnings(parse_reference("alpine"))[0]
    assert moving.code is WarningCode.MOVING_TAG
    assert moving.message.startswith("no tag given, so tag 'latest' is used and it moves: pin the digest")


def test_moving_tag_warning_takes_the_resolved_digest() -> None:
    moving = warnings(parse_reference("quay.io/org/tool:stable"))[0]
    resolved = moving.with_digest(SHA256)
    assert f"(quay.io/org/tool@{SHA256})" in resolved.message
    assert DIGEST_PLACEHOLDER not in resolved.message
    assert resolved.code is WarningCode.MOVING_TAG
    with pytest.raises(ReferenceError):
        moving.with_digest("sha256:short")


def test_not_copied_warning_is_always_given() -> None:
    for text in ["alpine", "quay.io/biocontainers/samtools:1.19--h50ea8bc_0", f"ghcr.io/org/tool@{SHA256}"]:
        found = warnings(parse_reference(text))
        assert found[-1] == ReferenceWarning(
            WarningCode.NOT_COPIED,
            "external images are not copied into Dockyard: if the source moves or is deleted, "
            "this version breaks; import it to keep a copy",
        )
        assert found[-1].with_digest(SHA256) is found[-1]


@pytest.mark.parametrize(
    "text",
    [
        "quay.io/biocontainers/samtools:1.19--h50ea8bc_0",
        "nvcr.io/nvidia/pytorch:24.01-py3",
        f"alpine@{SHA256}",
        f"alpine:latest@{SHA256}",
    ],
)
def test_no_moving_tag_warning_for_releases_and_digests(text: str) -> None:
    assert [w.code for w in warnings(parse_reference(text))] == [WarningCode.NOT_COPIED]


def test_canonical_round_trips() -> None:
    for text in [
        "alpine",
        "docker.io/alpine:latest",
        f"ghcr.io/org/tool:1@{SHA256}",
        "[::1]:5000/x:y",
        f"{ECR_HOST}/ns/name:tag",
    ]:
        ref = parse_reference(text)
        assert parse_reference(ref.canonical) == ref
        assert parse_reference(ref.familiar) == ref
