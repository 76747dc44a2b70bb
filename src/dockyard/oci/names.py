"""Repository names and tags, with the grammar of the OCI Distribution spec."""

from __future__ import annotations

import re

from dockyard.oci.errors import ErrorCode, RegistryError

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
TAG_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
MAX_NAME_LENGTH = 255


def validate_name(name: str) -> str:
    if len(name) > MAX_NAME_LENGTH:
        raise RegistryError(
            ErrorCode.NAME_INVALID, f"repository name longer than {MAX_NAME_LENGTH} characters"
        )
    if not NAME_RE.fullmatch(name):
        raise RegistryError(
            ErrorCode.NAME_INVALID,
            f"invalid repository name {name[:100]!r}: use lowercase letters, digits and "
            "separators (., _, __, -) in path components separated by /",
        )
    return name


def is_tag(reference: str) -> bool:
    return TAG_RE.fullmatch(reference) is not None


def validate_tag(tag: str) -> str:
    if not is_tag(tag):
        raise RegistryError(
            ErrorCode.TAG_INVALID,
            f"invalid tag {tag[:150]!r}: at most 128 of [A-Za-z0-9_.-], not starting with . or -",
        )
    return tag
