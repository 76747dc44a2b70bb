"""External image references, parsed and normalised for "register an external image by URL".

The grammar is CNCF Distribution's ``reference`` package, with the Docker Hub
normalisation of its ``ParseNormalizedNamed``::

    reference := name [":" tag] ["@" digest]
    name      := [registry "/"] path          at most 255 characters, registry included
    registry  := host [":" port]              host: DNS name, IPv4 address or [IPv6 address]
    path      := component ("/" component)*   lowercase, see dockyard.oci.names.NAME_RE
    tag       := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    digest    := "sha256:" 64 hex | "sha512:" 128 hex   (lowercase hex)

Decisions (where we differ from, or add to, Distribution):

- The first path component is a registry only if it contains ``.`` or ``:`` or is
  ``localhost`` (Distribution's rule). Distribution also takes an *uppercase* first component
  as a host (``Biocontainers/samtools``); we do not: that is a mistyped Docker Hub name and is
  refused with the lowercased suggestion.
- Registry hosts are lowercased (DNS is case-insensitive); repository paths must already be
  lowercase and are refused with the lowercased reference as the fix.
- Docker Hub: ``docker.io``, ``index.docker.io``, ``registry-1.docker.io`` and
  ``registry.hub.docker.com`` all become ``docker.io``, and a one-component path gets
  ``library/``. ``hub.docker.com`` is the Hub *website*, not a registry: it is refused, and
  its page paths are turned into the fix (``hub.docker.com/_/alpine`` -> ``docker.io/library/alpine``,
  ``hub.docker.com/r/org/name`` -> ``docker.io/org/name``).
- Neither tag nor digest: the tag is ``latest`` and ``tag_implicit`` is set.
- ECR: ``<12 digits>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]`` is provider ``ecr`` with the
  account id and region parsed. A host that is plainly meant as ECR (``.dkr.ecr`` under
  ``amazonaws.com[.cn]``) but breaks that form (e.g. an 11-digit account) is *refused*, not
  treated as generic: such a host cannot resolve, so it is a typo the user should fix now.
- URL schemes (``https://``, ``docker://``, ...) and pasted ``docker pull`` commands are
  refused with the reference to use instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from enum import StrEnum

from dockyard.oci.digest import Digest
from dockyard.oci.names import MAX_NAME_LENGTH, NAME_RE, TAG_RE

DOCKER_HUB = "docker.io"
DOCKER_HUB_API_HOST = "registry-1.docker.io"
DEFAULT_TAG = "latest"
_DOCKER_HUB_ALIASES = frozenset(
    {DOCKER_HUB, "index.docker.io", DOCKER_HUB_API_HOST, "registry.hub.docker.com"}
)
_DOCKER_HUB_WEBSITE = "hub.docker.com"
_MAX_INPUT = 1024  # far above any valid reference; keeps messages and regex work bounded
_EXAMPLE = "docker.io/library/alpine:3.20"

_DNS_LABEL = r"(?:[a-z0-9]|[a-z0-9][a-z0-9-]*[a-z0-9])"
_HOST_RE = re.compile(rf"{_DNS_LABEL}(?:\.{_DNS_LABEL})*|\[[a-f0-9:.]+\]")
_PORT_RE = re.compile(r"[0-9]{1,5}")
_ECR_RE = re.compile(
    r"([0-9]{12})\.dkr\.ecr(?:-fips)?\.([a-z]{2}(?:-[a-z]+)+-[0-9]+)\.amazonaws\.com(?:\.cn)?"
)
_SCHEME_RE = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*)://(.*)", re.DOTALL)
_PULL_COMMAND_RE = re.compile(r"((?:docker|podman|nerdctl|ctr)\s+(?:image\s+)?pull)\s+(\S+)")
_IMAGE_ID_RE = re.compile(r"[a-f0-9]{64}")
_DIGEST_HEX_LENGTH = {"sha256": 64, "sha512": 128}
_DIGEST_FORM = "sha256:<64 lowercase hex characters>"


class ReferenceError(ValueError):
    """A reference that cannot be used; ``suggestion`` is the corrected reference when one is known.

    The name shadows Python's rarely used builtin ``ReferenceError`` (weak references) in modules
    that import it; it is kept because callers know it by this name.
    """

    def __init__(self, message: str, suggestion: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.suggestion = suggestion


class Provider(StrEnum):
    DOCKERHUB = "dockerhub"
    QUAY = "quay"
    GHCR = "ghcr"
    GITLAB = "gitlab"
    ECR = "ecr"
    NVCR = "nvcr"
    GENERIC = "generic"


_PROVIDER_BY_HOST = {
    DOCKER_HUB: Provider.DOCKERHUB,
    "quay.io": Provider.QUAY,
    "ghcr.io": Provider.GHCR,
    "registry.gitlab.com": Provider.GITLAB,
    "nvcr.io": Provider.NVCR,
}


@dataclass(frozen=True)
class ImageReference:
    """A normalised reference. Build it with :func:`parse_reference`; fields are not re-validated.

    ``tag_implicit`` (``latest`` filled in because the text had neither tag nor digest) is
    informative only: ``alpine`` and ``alpine:latest`` compare equal.
    """

    registry: str
    repository: str
    tag: str | None
    digest: Digest | None
    tag_implicit: bool = field(default=False, compare=False)

    @property
    def name(self) -> str:
        """``registry/repository``, e.g. ``docker.io/library/alpine``."""
        return f"{self.registry}/{self.repository}"

    @property
    def familiar_name(self) -> str:
        """The name as ``docker`` prints it: Docker Hub's ``docker.io/`` and ``library/`` dropped."""
        if self.registry != DOCKER_HUB:
            return self.name
        return self.repository.removeprefix("library/")

    @property
    def canonical(self) -> str:
        """``docker.io/library/alpine:latest``; ``name:tag@digest`` when both are known."""
        return self.name + self._suffix()

    @property
    def familiar(self) -> str:
        """``alpine:latest``, ``quay.io/biocontainers/samtools:1.19--h50ea8bc_0``."""
        return self.familiar_name + self._suffix()

    @property
    def api_host(self) -> str:
        """The host (and port) that serves the Distribution API for this registry."""
        return DOCKER_HUB_API_HOST if self.registry == DOCKER_HUB else self.registry

    @property
    def provider(self) -> Provider:
        if _ECR_RE.fullmatch(self.registry):
            return Provider.ECR
        return _PROVIDER_BY_HOST.get(self.registry, Provider.GENERIC)

    @property
    def ecr_account_id(self) -> str | None:
        match = _ECR_RE.fullmatch(self.registry)
        return match.group(1) if match else None

    @property
    def ecr_region(self) -> str | None:
        match = _ECR_RE.fullmatch(self.registry)
        return match.group(2) if match else None

    @property
    def suggested_name(self) -> str:
        """The last path component (``samtools``), for the catalog's image name."""
        return self.repository.rsplit("/", 1)[-1]

    @property
    def suggested_version(self) -> str:
        """The tag, or ``sha256-<first 12 hex>`` when only a digest is known."""
        if self.tag is not None:
            return self.tag
        assert self.digest is not None  # parse_reference guarantees a tag or a digest
        return f"{self.digest.algorithm}-{self.digest.hex[:12]}"

    def with_digest(self, digest: str) -> ImageReference:
        """This reference pinned to ``digest`` (the tag, if any, is kept for display)."""
        return replace(self, digest=_parse_digest(digest, self.name), tag_implicit=False)

    def _suffix(self) -> str:
        return (f":{self.tag}" if self.tag is not None else "") + (
            f"@{self.digest}" if self.digest is not None else ""
        )


def parse_reference(text: str) -> ImageReference:
    """Parse and normalise ``text``; raise :class:`ReferenceError` whose message shows the fix."""
    text = text.strip()
    if not text:
        raise ReferenceError(f"the image reference is empty: give one such as {_EXAMPLE}")
    if len(text) > _MAX_INPUT:
        raise ReferenceError(f"the image reference is {len(text)} characters long; a name has at most 255")
    _refuse_pasted_forms(text)

    name_and_tag, at, digest_text = text.partition("@")
    slash = name_and_tag.rfind("/")
    colon = name_and_tag.rfind(":")
    if colon > slash:
        name, tag = name_and_tag[:colon], name_and_tag[colon + 1 :]
    else:
        name, tag = name_and_tag, None

    tail = text[len(name) :]
    registry_text, path = _split_registry(name)
    registry = _parse_registry(registry_text, path, tail) if registry_text is not None else DOCKER_HUB
    _check_path(path, registry_text, tail, text)
    if registry == DOCKER_HUB and "/" not in path:
        if registry_text is None and _IMAGE_ID_RE.fullmatch(path):
            raise ReferenceError(
                f"{_short(path)} looks like an image ID, not a reference: use <name>@sha256:{path}"
            )
        path = f"library/{path}"
    full_name = f"{registry}/{path}"
    if len(full_name) > MAX_NAME_LENGTH:
        raise ReferenceError(
            f"the image name {_short(full_name)} is {len(full_name)} characters long "
            f"(registry included); at most {MAX_NAME_LENGTH} are allowed"
        )

    if tag is not None:
        _check_tag(tag, name, tail[1:], text)
    digest = None
    if at:
        digest = _parse_digest_in(digest_text, name_and_tag, text)
    implicit = tag is None and digest is None
    return ImageReference(
        registry=registry,
        repository=path,
        tag=DEFAULT_TAG if implicit else tag,
        digest=digest,
        tag_implicit=implicit,
    )


def _refuse_pasted_forms(text: str) -> None:
    """URLs and ``docker pull`` lines: refused, with the bare reference as the fix."""
    scheme = _SCHEME_RE.fullmatch(text)
    if scheme is not None:
        rest = re.split(r"[?#]", scheme.group(2), maxsplit=1)[0].strip("/")
        _refuse_with_fix(f"'{scheme.group(1)}://' is not part of an image reference: drop the scheme", rest)
    command = _PULL_COMMAND_RE.fullmatch(text)
    if command is not None:
        _refuse_with_fix(f"give only the image, not the '{command.group(1)}' command", command.group(2))
    if re.search(r"\s", text):
        raise ReferenceError(f"an image reference has no spaces: {_short(text)}")


def _refuse_with_fix(problem: str, candidate: str) -> None:
    """Raise ``problem: use <fix>``, where the fix is ``candidate`` once it parses."""
    try:
        parse_reference(candidate)
    except ReferenceError as error:
        if error.suggestion is None:
            raise ReferenceError(f"{problem}; then: {error.message}") from None
        candidate = error.suggestion
    raise ReferenceError(f"{problem}: use {candidate}", suggestion=candidate)


def _split_registry(name: str) -> tuple[str | None, str]:
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return None, name


def _split_port(registry_text: str) -> tuple[str, str | None]:
    """``host[:port]`` -> (lowercased host, port text or None); a bracketed host is IPv6."""
    lowered = registry_text.lower()
    if lowered.startswith("["):
        host, bracket, after = lowered.partition("]")
        if bracket and (not after or after.startswith(":")):
            return host + bracket, after[1:] if after else None
        return lowered, None  # malformed: the host check refuses it
    host, colon, port = lowered.partition(":")
    return host, port if colon else None


def _parse_registry(registry_text: str, path: str, tail: str) -> str:
    host, port = _split_port(registry_text)
    if not _HOST_RE.fullmatch(host):
        raise ReferenceError(
            f"invalid registry host {_short(registry_text)}: use a DNS name, an IPv4 address or "
            "[IPv6 address], optionally with :port"
        )
    if port == "":
        raise ReferenceError(
            f"empty port in {_short(registry_text)}: use {host}/{path} or {host}:<port>/{path}"
        )
    if port is not None and not (_PORT_RE.fullmatch(port) and 0 < int(port) <= 65535):
        raise ReferenceError(f"invalid port in {_short(registry_text)}: a port is a number from 1 to 65535")
    if host == _DOCKER_HUB_WEBSITE:
        _refuse_hub_website(path, tail)
    ecr_like = ".dkr.ecr" in host and host.endswith((".amazonaws.com", ".amazonaws.com.cn"))
    if ecr_like and not _ECR_RE.fullmatch(host):
        raise ReferenceError(
            f"{host!r} is not an ECR registry host: use <12-digit account id>.dkr.ecr.<region>.amazonaws.com"
            " (e.g. 123456789012.dkr.ecr.us-west-2.amazonaws.com)"
        )
    if host in _DOCKER_HUB_ALIASES and port is None:
        return DOCKER_HUB
    return host if port is None else f"{host}:{port}"


def _refuse_hub_website(path: str, tail: str) -> None:
    """Turn Hub page paths (``_/alpine``, ``r/org/name``) into the reference to use."""
    parts = path.split("/")
    problem = f"{_DOCKER_HUB_WEBSITE} is the Docker Hub website, not a registry"
    if parts[0] == "_" and len(parts) >= 2:
        _refuse_with_fix(problem, f"{DOCKER_HUB}/library/{parts[1]}" + (tail if len(parts) == 2 else ""))
    if parts[0] == "r" and len(parts) >= 3:
        _refuse_with_fix(problem, f"{DOCKER_HUB}/{parts[1]}/{parts[2]}" + (tail if len(parts) == 3 else ""))
    raise ReferenceError(f"{problem}: use {DOCKER_HUB}/<namespace>/<name>:<tag>")


def _check_path(path: str, registry_text: str | None, tail: str, text: str) -> None:
    if NAME_RE.fullmatch(path):
        return
    prefix = f"{registry_text.lower()}/" if registry_text is not None else ""
    if path != path.lower():
        _refuse_with_fix("repository names are lowercase", prefix + path.lower() + tail)
    tidy = "/".join(part for part in path.split("/") if part)
    if tidy and tidy != path:
        _refuse_with_fix("empty path component (a leading, trailing or double '/')", prefix + tidy + tail)
    if not path:
        raise ReferenceError(f"{_short(text)} has no repository: use <registry>/<namespace>/<name>:<tag>")
    bad = next((part for part in path.split("/") if not NAME_RE.fullmatch(part)), path)
    raise ReferenceError(
        f"invalid repository path component {_short(bad)}: use lowercase letters and digits, "
        "separated by '.', '_', '__' or '-' (e.g. biocontainers/samtools)"
    )


def _check_tag(tag: str, name: str, after_colon: str, text: str) -> None:
    if not tag:
        dropped = name + after_colon
        raise ReferenceError(
            f"empty tag after ':': write a tag ({name}:<tag>) or drop the ':' ({dropped})", suggestion=dropped
        )
    if not TAG_RE.fullmatch(tag):
        raise ReferenceError(
            f"invalid tag {_short(tag)} in {_short(text)}: a tag has 1 to 128 of [A-Za-z0-9_.-] "
            "and does not start with '.' or '-'"
        )


def _parse_digest_in(digest_text: str, name_and_tag: str, text: str) -> Digest:
    if not digest_text:
        raise ReferenceError(
            f"empty digest after '@': write {name_and_tag}@{_DIGEST_FORM} or drop the '@' ({name_and_tag})",
            suggestion=name_and_tag,
        )
    if ":" not in digest_text and "@" not in digest_text and TAG_RE.fullmatch(digest_text):
        fixed = f"{name_and_tag}:{digest_text}"
        raise ReferenceError(
            f"'@' introduces a digest ({_DIGEST_FORM}); for a tag use ':': use {fixed}", suggestion=fixed
        )
    lowered = digest_text.lower()
    if lowered != digest_text and _valid_digest(lowered):
        fixed = f"{name_and_tag}@{lowered}"
        raise ReferenceError(f"digest hex is lowercase: use {fixed}", suggestion=fixed)
    return _parse_digest(digest_text, text)


def _valid_digest(value: str) -> bool:
    try:
        _parse_digest(value, value)
    except ReferenceError:
        return False
    return True


def _parse_digest(value: str, context: str) -> Digest:
    algorithm, colon, encoded = value.partition(":")
    expected = _DIGEST_HEX_LENGTH.get(algorithm)
    if not colon or expected is None:
        raise ReferenceError(
            f"invalid digest {_short(value)} in {_short(context)}: use {_DIGEST_FORM} "
            "or sha512:<128 lowercase hex characters>"
        )
    if len(encoded) != expected or not re.fullmatch(r"[a-f0-9]+", encoded):
        raise ReferenceError(
            f"invalid {algorithm} digest in {_short(context)}: got {len(encoded)} characters, expected "
            f"{algorithm}:<{expected} lowercase hex characters>"
        )
    return Digest.parse(value)


def _short(value: str, limit: int = 80) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "...")


# Warnings ------------------------------------------------------------------------------------------


class WarningCode(StrEnum):
    MOVING_TAG = "moving_tag"
    NOT_COPIED = "not_copied"


DIGEST_PLACEHOLDER = "sha256:..."

# Tags that name a branch or channel rather than a release.
FLOATING_TAGS = frozenset(
    {
        "latest", "stable", "main", "master", "edge", "nightly", "dev", "develop", "development",
        "release", "rolling", "current", "lts", "beta", "alpha", "rc", "canary", "testing",
        "unstable", "head", "trunk", "next", "snapshot", "mainline",
    }
)  # fmt: skip
_MAJOR_ONLY_RE = re.compile(r"v?[0-9]{1,3}")
_BUILD_STAMP_RE = re.compile(r"[0-9]{6,}")


@dataclass(frozen=True)
class ReferenceWarning:
    """A warning stored with a version and shown by the API and CLI.

    ``pin_name`` (moving tags only) is the name to pin: once the tag is resolved, call
    :meth:`with_digest` to put the real digest in place of ``sha256:...`` in the message.
    """

    code: WarningCode
    message: str
    pin_name: str | None = None

    def with_digest(self, digest: str) -> ReferenceWarning:
        if self.pin_name is None:
            return self
        pinned = f"{self.pin_name}@{_parse_digest(digest, self.pin_name)}"
        return replace(self, message=self.message.replace(f"{self.pin_name}@{DIGEST_PLACEHOLDER}", pinned))


def is_moving_tag(tag: str) -> bool:
    """Whether ``tag`` by convention points at different images over time.

    The rule: split the tag at ``-``; it moves when the first part is a channel name
    (:data:`FLOATING_TAGS`, any case) or a major-only version (``3``, ``v2``, ``20``: 1-3 digits,
    optional ``v``), unless a later part is a build stamp of 6+ digits (``nightly-20240101``).
    So ``latest``, ``stable-alpine``, ``3``, ``3-slim`` and ``v2`` move; ``3.20``, ``1.19--h50ea8bc_0``,
    ``24.01-py3`` and ``nightly-20240101`` are treated as releases.
    """
    first, *rest = tag.lower().split("-")
    if any(_BUILD_STAMP_RE.fullmatch(part) for part in rest):
        return False
    return first in FLOATING_TAGS or _MAJOR_ONLY_RE.fullmatch(first) is not None


def warnings(ref: ImageReference) -> list[ReferenceWarning]:
    """What to tell the user about registering ``ref`` as an external image."""
    found: list[ReferenceWarning] = []
    if ref.digest is None and ref.tag is not None and is_moving_tag(ref.tag):
        pin = f"{ref.name}@{DIGEST_PLACEHOLDER}"
        which = f"no tag given, so tag '{ref.tag}' is used and it" if ref.tag_implicit else f"tag '{ref.tag}'"
        found.append(
            ReferenceWarning(
                WarningCode.MOVING_TAG,
                f"{which} moves: pin the digest ({pin}) to keep this version reproducible",
                pin_name=ref.name,
            )
        )
    found.append(
        ReferenceWarning(
            WarningCode.NOT_COPIED,
            "external images are not copied into Dockyard: if the source moves or is deleted, "
            "this version breaks; import it to keep a copy",
        )
    )
    return found
