"""Repository names and tags, with the grammar of the OCI Distribution spec."""

from __future__ import annotations

import re

from dockyard.oci.errors import InvalidName, InvalidTag

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
TAG_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
MAX_NAME_LENGTH = 255
MAX_TAG_LENGTH = 128
# Dockyard's own limit, not the spec's: the first component of a hosted repository names the
# workspace that owns it (an organisation or a user), and those names are at most 64 characters.
MAX_NAMESPACE_LENGTH = 64


def validate_name(name: str) -> str:
    """A repository name of the distribution spec (any registry's, e.g. an upstream's)."""
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidName(f"repository name longer than {MAX_NAME_LENGTH} characters")
    if not NAME_RE.fullmatch(name):
        raise InvalidName(
            f"invalid repository name {name[:100]!r}: use lowercase letters, digits and "
            "separators (., _, __, -) in path components separated by /"
        )
    return name


def validate_hosted_name(name: str) -> str:
    """A repository name this registry can hold: the spec's grammar, and a first component
    (the workspace) of at most :data:`MAX_NAMESPACE_LENGTH` characters."""
    validate_name(name)
    namespace = name.split("/", 1)[0]
    if len(namespace) > MAX_NAMESPACE_LENGTH:
        raise InvalidName(
            f"invalid repository name {name[:100]!r}: its first component (the workspace) has "
            f"{len(namespace)} characters; at most {MAX_NAMESPACE_LENGTH} are allowed"
        )
    return name


def is_tag(reference: str) -> bool:
    return TAG_RE.fullmatch(reference) is not None


def validate_tag(tag: str) -> str:
    if not is_tag(tag):
        raise InvalidTag(
            f"invalid tag {tag[:150]!r}: at most 128 of [A-Za-z0-9_.-], not starting with . or -"
        )
    return tag
