"""What a build definition holds, how it is checked, and its content hash. Pure: no I/O.

The content hash covers what decides the image: the Dockerfile (local context), the digest
of the uploaded files, the git source (url, ref, folder, Dockerfile path), build arguments,
target stage, platform and the network RUN steps get. Name, description, the tag pushed
and destinations are left out: changing them does not make the image out of date. A git
ref that names a branch is hashed as written, so a new commit on the branch does not mark
the definition modified.
The network enters the hash only when it is not the default (``none``), so the hashes of
definitions saved before it existed stay as they were.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from dataclasses import dataclass, field
from typing import Literal

from dockyard.errors import Invalid
from dockyard.oci.names import MAX_NAME_LENGTH, NAME_RE, TAG_RE
from dockyard.oci.reference import ReferenceError, parse_reference

ContextKind = Literal["local", "git"]
LOCAL: ContextKind = "local"
GIT: ContextKind = "git"
# What RUN steps may reach: ``none`` (only their own loopback) or ``egress`` (out through a
# user-mode network stack that refuses the server's loopback; see builds.sandbox).
NetworkMode = Literal["none", "egress"]
NO_NETWORK: NetworkMode = "none"
EGRESS: NetworkMode = "egress"
NETWORK_MODES: tuple[NetworkMode, ...] = (NO_NETWORK, EGRESS)
DEFAULT_PLATFORM = "linux/amd64"
DEFAULT_VERSION = "latest"
MAX_DOCKERFILE = 256 * 1024
MAX_ARGS = 100
_ARG_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_PLATFORM = re.compile(r"[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9]+)?")
_TARGET = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_GIT_REF = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./+@-]{0,254}")


@dataclass(frozen=True)
class GitSource:
    url: str
    ref: str
    directory: str = ""  # folder inside the repository that is the build context
    dockerfile: str = "Dockerfile"  # path inside ``directory``


@dataclass(frozen=True)
class Recipe:
    """The part of a definition that decides the image (what the content hash covers)."""

    context: ContextKind
    dockerfile: str | None = None  # local context
    context_digest: str | None = None  # sha256 of the uploaded files tar (local, optional)
    git: GitSource | None = None
    build_args: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    platform: str = DEFAULT_PLATFORM
    network: NetworkMode = NO_NETWORK

    def content_hash(self) -> str:
        canonical: dict[str, object] = {
            "context": self.context,
            "dockerfile": self.dockerfile if self.context == LOCAL else None,
            "files": self.context_digest if self.context == LOCAL else None,
            "git": None if self.git is None or self.context != GIT else self.git.__dict__,
            "build_args": dict(sorted(self.build_args.items())),
            "target": self.target,
            "platform": self.platform,
        }
        if self.network != NO_NETWORK:
            canonical["network"] = self.network
        body = json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()
        return "sha256:" + hashlib.sha256(body).hexdigest()

    def as_json(self) -> dict[str, object]:
        return {
            "context": self.context,
            "dockerfile": self.dockerfile,
            "context_digest": self.context_digest,
            "git": None if self.git is None else self.git.__dict__,
            "build_args": self.build_args,
            "target": self.target,
            "platform": self.platform,
            "network": self.network,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Recipe:
        git = data.get("git")
        args = data.get("build_args") or {}
        assert isinstance(args, dict)
        context = str(data["context"])
        if context not in (LOCAL, GIT):
            raise ValueError(f"unknown context {context!r}")
        return cls(
            context=LOCAL if context == LOCAL else GIT,
            dockerfile=_optional(data.get("dockerfile")),
            context_digest=_optional(data.get("context_digest")),
            git=GitSource(**git) if isinstance(git, dict) else None,
            build_args={str(k): str(v) for k, v in args.items()},
            target=_optional(data.get("target")),
            platform=str(data.get("platform") or DEFAULT_PLATFORM),
            network=check_network(str(data.get("network") or NO_NETWORK)),  # older runs: none
        )


def _optional(value: object) -> str | None:
    return None if value is None else str(value)


# --- checks (each raises Invalid with a message for the user) ------------------------------


def full_name(workspace: str, name: str) -> str:
    """``workspace/name`` — the catalog's rule: a name already in the workspace is kept."""
    name = name.strip()
    full = name if name.split("/", 1)[0] == workspace and "/" in name else f"{workspace}/{name}"
    if len(full) > MAX_NAME_LENGTH or not NAME_RE.fullmatch(full):
        raise Invalid(
            f"invalid image name {full[:100]!r}: use lowercase letters, digits and separators "
            "(., _, __, -) in path components separated by /"
        )
    return full


def check_dockerfile(text: str) -> str:
    if not text.strip():
        raise Invalid("the Dockerfile is empty")
    if len(text.encode()) > MAX_DOCKERFILE:
        raise Invalid(f"the Dockerfile is larger than {MAX_DOCKERFILE} bytes")
    if "\x00" in text:
        raise Invalid("the Dockerfile contains a NUL character")
    return text


def check_relative_path(path: str, what: str) -> str:
    """A folder or file inside the context: relative, no ``..``, normalised."""
    cleaned = path.strip().strip("/")
    if not cleaned:
        return ""
    normal = posixpath.normpath(cleaned)
    if (
        "\\" in cleaned
        or "\x00" in cleaned
        or normal == ".."
        or normal.startswith("../")
        or any(part == ".." for part in cleaned.split("/"))
        or len(normal) > 500
    ):
        raise Invalid(f"{what} {path[:100]!r} must be a relative path inside the repository, without '..'")
    return "" if normal == "." else normal


def check_git(source: GitSource, protocols: list[str]) -> GitSource:
    url = source.url.strip()
    scheme = url.split("://", 1)[0].lower() if "://" in url else ("ssh" if "@" in url.split("/")[0] else "")
    if not url or url.startswith("-") or any(c.isspace() for c in url) or len(url) > 1000:
        raise Invalid("give the git repository as a URL, like https://example.org/group/project.git")
    if scheme not in protocols:
        allowed = ", ".join(f"{p}://" for p in protocols)
        raise Invalid(f"git URL {url[:100]!r}: this server clones only {allowed} repositories")
    ref = source.ref.strip()
    if not _GIT_REF.fullmatch(ref) or ".." in ref:
        raise Invalid(f"git ref {ref[:100]!r} is not a branch, tag or commit name")
    dockerfile = check_relative_path(source.dockerfile or "Dockerfile", "the Dockerfile path")
    if not dockerfile:
        raise Invalid("the Dockerfile path is empty")
    return GitSource(url, ref, check_relative_path(source.directory, "the folder"), dockerfile)


def check_build_args(args: dict[str, str]) -> dict[str, str]:
    if len(args) > MAX_ARGS:
        raise Invalid(f"at most {MAX_ARGS} build arguments")
    for key, value in args.items():
        if not _ARG_NAME.fullmatch(key):
            raise Invalid(
                f"build argument name {key[:100]!r}: letters, digits and _, not starting with a digit"
            )
        if len(value) > 4096 or "\x00" in value:
            raise Invalid(f"build argument {key}: the value is too long or contains NUL")
    return dict(args)


def check_target(target: str | None) -> str | None:
    if not target:
        return None
    if not _TARGET.fullmatch(target):
        raise Invalid(f"target stage {target[:100]!r} is not a stage name")
    return target


def check_platform(platform: str) -> str:
    if not _PLATFORM.fullmatch(platform):
        raise Invalid(f"platform {platform[:60]!r}: use os/arch[/variant], like linux/amd64")
    return platform


def check_network(network: str) -> NetworkMode:
    for mode in NETWORK_MODES:
        if network == mode:
            return mode
    raise Invalid(
        f"network {network[:40]!r}: 'none' (RUN steps reach nothing) or 'egress' (they reach "
        "other hosts, never this server's loopback)"
    )


def check_version(version: str) -> str:
    if not TAG_RE.fullmatch(version):
        raise Invalid(f"version {version[:150]!r}: at most 128 of [A-Za-z0-9_.-], not starting with . or -")
    return version


def check_destination(reference: str | None) -> str | None:
    """Another registry's repository (``quay.io/org/tool``); the build's version is its tag."""
    if not reference:
        return None
    try:
        parsed = parse_reference(reference)
    except ReferenceError as exc:
        raise Invalid(str(exc)) from None
    if parsed.digest is not None or not parsed.tag_implicit:
        raise Invalid("give the external destination without a tag or digest: the build's version is the tag")
    return parsed.name
