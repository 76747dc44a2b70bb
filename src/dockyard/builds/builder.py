"""The builder seam: one Protocol, so that another engine (BuildKit, kaniko) can be added
beside :class:`dockyard.builds.buildah.BuildahBuilder` without touching the service.

A builder gets everything it needs in a :class:`BuildSpec` (the recipe, a way to read the
uploaded files, where to push and with which credentials, the time limit), writes its
output line by line to a :class:`LogSink`, calls ``cancelled()`` every few seconds (it
raises when the build must stop: a cancel, or the worker lost its job) and returns a
:class:`BuildResult`, or raises :class:`BuildFailed` with a message for the user.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from dockyard.builds.spec import Recipe

Cancelled = Callable[[], Awaitable[None]]
FileSource = Callable[[], AsyncIterator[bytes]]


class LogSink(Protocol):
    async def write(self, line: str) -> None:
        """Append one line (without its newline) to the build log."""
        ...


@dataclass(frozen=True)
class RegistryLogin:
    """Credentials for one registry: a password or token, or an OAuth2 identity (refresh)
    token that the client trades for registry tokens itself."""

    registry: str  # host[:port]
    username: str
    secret: str | None = None
    identity_token: str | None = None
    insecure: bool = False  # plain HTTP

    def __repr__(self) -> str:  # never print secrets
        return f"RegistryLogin({self.registry!r}, {self.username!r}, insecure={self.insecure})"


@dataclass(frozen=True)
class TargetPush:
    """A push after the build's own: its failure does not fail the build."""

    reference: str  # host[:port]/repository:tag
    registry: str
    insecure: bool = False  # plain HTTP or TLS unverified
    ca_bundle: str | None = None  # PEM certificates of a private CA to trust

    def __repr__(self) -> str:
        return f"TargetPush({self.reference!r}, insecure={self.insecure})"


@dataclass(frozen=True)
class TargetPushed:
    reference: str
    digest: str | None  # None: the push failed, ``output`` says why
    output: str = ""  # the push's error lines


@dataclass(frozen=True)
class BuildSpec:
    run_id: int
    recipe: Recipe
    destinations: list[str]  # host[:port]/repository:tag; the first is this Dockyard
    files: FileSource | None = None  # the uploaded context tar (local context)
    logins: list[RegistryLogin] = field(default_factory=list)
    insecure_registries: list[str] = field(default_factory=list)  # plain HTTP, without a login
    time_limit: float = 3600.0
    targets: list[TargetPush] = field(default_factory=list)  # pushed after the destinations


@dataclass(frozen=True)
class Pushed:
    reference: str
    digest: str


@dataclass(frozen=True)
class BuildResult:
    digest: str  # of the image pushed to the first destination
    pushed: list[Pushed]
    dockerfile: str  # the Dockerfile as built
    builder: str  # engine and version, e.g. "buildah 1.28.2"
    git_commit: str | None = None
    targets: list[TargetPushed] = field(default_factory=list)


class BuildFailed(Exception):
    """The build did not produce (or push) its image; ``str()`` says why, for the user."""

    def __init__(
        self,
        message: str,
        *,
        pushed: list[Pushed] | None = None,
        git_commit: str | None = None,
        dockerfile: str | None = None,
    ) -> None:
        super().__init__(message)
        self.pushed = pushed or []
        self.git_commit = git_commit
        self.dockerfile = dockerfile


class BuildTimedOut(BuildFailed):
    """The build ran past its time limit and was stopped."""


class Builder(Protocol):
    async def version(self) -> str:
        """Engine and version, e.g. ``buildah 1.28.2``."""
        ...

    async def build(self, spec: BuildSpec, log: LogSink, cancelled: Cancelled) -> BuildResult: ...
