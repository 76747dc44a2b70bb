"""Verify an external image reference against its upstream registry.

``resolve`` asks the upstream for the manifest with the Distribution API, as a pulling
client would, and reports what a pull would get (digest, platforms, download size) or why
it would fail (:class:`Failed` kinds: not found, unauthorized, rate limited, unreachable,
invalid). Nothing is stored: the catalog records the result with the version.

Requests made, for ``host/repo:ref``:

- ``GET /v2/<repo>/manifests/<ref>`` accepting OCI and Docker manifests and indexes;
- an index: ``GET /v2/<repo>/manifests/<digest>`` for each platform's manifest (attestation
  entries, ``unknown/unknown``, are skipped), to sum its config and layer sizes; a single
  manifest: ``GET /v2/<repo>/blobs/<config digest>`` to read its os/architecture/variant.

Every digest is checked against the bytes received (and the ``Docker-Content-Digest``
header against the body), so a Resolved digest is one a pull by digest will verify.

Connections go only where the server's :class:`~dockyard.outbound.OutboundPolicy` allows:
a refused destination (the registry, a redirect, a token service) is a ``refused`` failure,
decided before any connection to it is attempted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import ssl

import httpx

from dockyard.oci import mediatypes as mt
from dockyard.oci.digest import Digest
from dockyard.oci.errors import InvalidDigest, InvalidManifest, InvalidValue
from dockyard.oci.manifest import Descriptor, ParsedManifest, parse_manifest
from dockyard.oci.names import validate_name, validate_tag
from dockyard.outbound import OutboundClient, OutboundPolicy
from dockyard.upstream.results import (
    Credentials,
    Failed,
    Resolution,
    Resolved,
    UpstreamFailure,
)
from dockyard.upstream.session import UpstreamSession
from dockyard.upstream.wire import Fetched, invalid

__all__ = ["Credentials", "Failed", "Resolution", "Resolved", "check_login", "resolve"]

MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # the Distribution reference refuses manifests over 4 MiB
MAX_CONFIG_BYTES = 1024 * 1024
MAX_PLATFORM_MANIFESTS = 128  # per index; each one costs a request (and, on Docker Hub, a pull)
DEFAULT_DEADLINE = 120.0  # seconds for a whole resolve, so a trickling upstream cannot hold it
DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
DEFAULT_PLATFORM = "linux/amd64"
MANIFEST_ACCEPT = ", ".join([mt.OCI_INDEX, mt.DOCKER_MANIFEST_LIST, mt.OCI_MANIFEST, mt.DOCKER_MANIFEST])
IMAGE_CONFIGS = frozenset(
    {"application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"}
)
# Docker Hub is named docker.io in references; its API answers on registry-1.docker.io.
API_HOSTS = {"docker.io": "registry-1.docker.io", "index.docker.io": "registry-1.docker.io"}
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST_RE = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{{1,5}})?")
_PLATFORM_PART_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_ATTESTATION = ("vnd.docker.reference.type", "attestation-manifest")


async def resolve(
    host: str,
    repository: str,
    reference: str,
    *,
    outbound: OutboundPolicy,
    credentials: Credentials | None = None,
    scheme: str = "https",
    client: OutboundClient | None = None,
    deadline: float = DEFAULT_DEADLINE,
    verify: ssl.SSLContext | bool = True,
) -> Resolution:
    """Resolve ``host/repository`` at ``reference`` (a tag or a digest) on the upstream.

    ``host`` is the registry as users name it (``quay.io``, ``docker.io``, ``127.0.0.1:5000``),
    ``repository`` its normalised path (``library/alpine``). ``outbound`` decides where it may
    connect: without ``client``, one is made from it with :data:`DEFAULT_TIMEOUT` and closed
    afterwards (``verify``: TLS verification, or the context trusting a profile's CA bundle);
    a ``client`` handed in connects where its own policy allows. Never raises for
    upstream trouble: every failure is a :class:`Failed`.
    """
    try:
        _check_arguments(host, repository, reference, scheme)
        async with contextlib.AsyncExitStack() as stack:
            http = client
            if http is None:
                http = await stack.enter_async_context(
                    outbound.client(timeout=DEFAULT_TIMEOUT, verify=verify)
                )
            session = UpstreamSession(
                http,
                scheme=scheme,
                host=host,
                api_host=API_HOSTS.get(host.lower(), host),
                repository=repository,
                credentials=credentials,
            )
            async with asyncio.timeout(deadline):
                return await _Resolver(session, reference).run()
    except UpstreamFailure as exc:
        return exc.failure
    except TimeoutError:
        return Failed(
            "unreachable",
            f"{host} did not finish answering within {deadline:g} seconds: it is too slow or stalls; "
            "try again later",
        )


async def check_login(
    host: str,
    *,
    outbound: OutboundPolicy,
    credentials: Credentials | None,
    scheme: str = "https",
    verify: ssl.SSLContext | bool = True,
    deadline: float = 30.0,
) -> Failed | None:
    """Log in as ``docker login`` does (``GET /v2/``, answering its challenge): None when the
    registry accepts the credentials (or anonymous access), else why not."""
    try:
        _check_arguments(host, "x", "latest", scheme)
        async with outbound.client(timeout=DEFAULT_TIMEOUT, verify=verify) as http:
            session = UpstreamSession(
                http,
                scheme=scheme,
                host=host,
                api_host=API_HOSTS.get(host.lower(), host),
                repository="",
                credentials=credentials,
            )
            async with asyncio.timeout(deadline):
                fetched = await session.get("", what="the API root (/v2/)", limit=MAX_CONFIG_BYTES)
            if fetched.status == 200:
                return None
            missing = f"{host} does not serve the registry API at /v2/ (HTTP 404): is it a registry?"
            return session.failure(fetched, what="/v2/", not_found=missing, not_found_kind="invalid")
    except UpstreamFailure as exc:
        return exc.failure
    except TimeoutError:
        return Failed("unreachable", f"{host} did not answer within {deadline:g} seconds", detail="timeout")


def _check_arguments(host: str, repository: str, reference: str, scheme: str) -> None:
    if scheme not in ("https", "http"):
        raise invalid(f"unsupported scheme {scheme[:20]!r}: use https (or http for a local test registry)")
    if not _HOST_RE.fullmatch(host):
        raise invalid(
            f"invalid registry host {host[:100]!r}: use a DNS name or an IP address, with an optional :port"
        )
    try:
        validate_name(repository)
        if ":" in reference:
            Digest.parse(reference)
        else:
            validate_tag(reference)
    except InvalidValue as exc:
        raise invalid(exc.message) from None


class _Resolver:
    def __init__(self, session: UpstreamSession, reference: str) -> None:
        self.session = session
        self.reference = reference
        self.where = f"{session.host}/{session.repository}"

    async def run(self) -> Resolved:
        by_digest = ":" in self.reference
        what = f"the manifest of {self.where}{'@' if by_digest else ':'}{self.reference}"
        fetched = await self.session.get(
            f"/manifests/{self.reference}", what=what, limit=MAX_MANIFEST_BYTES, accept=MANIFEST_ACCEPT
        )
        if fetched.status != 200:
            missing = await self._not_found(fetched) if fetched.status == 404 else ""
            raise UpstreamFailure(self.session.failure(fetched, what=what, not_found=missing))
        digest = _verified_digest(fetched, Digest(self.reference) if by_digest else None, what)
        manifest = _parse(fetched, what)
        if manifest.is_index:
            sizes = await self._platform_sizes(manifest)
            compressed = sizes.get(DEFAULT_PLATFORM, next(iter(sizes.values()), 0))
        else:
            platform = await self._config_platform(manifest)
            compressed = _image_size(manifest)
            sizes = {platform: compressed} if platform else {}
        return Resolved(
            digest=digest,
            media_type=manifest.media_type,
            platforms=list(sizes),
            compressed_size=compressed,
            platform_sizes=sizes,
            is_index=manifest.is_index,
        )

    async def _not_found(self, fetched: Fetched) -> str:
        """Which is missing: the repository or the tag (manifest). Registries that answer
        MANIFEST_UNKNOWN for both (Distribution does) are asked for the repository's tags."""
        missing_repository = "NAME_UNKNOWN" in fetched.error_codes()
        if not missing_repository:
            tags = await self.session.get("/tags/list?n=1", what="the tags", limit=MAX_MANIFEST_BYTES)
            missing_repository = tags.status == 404
        if missing_repository:
            return f"repository {self.session.repository} not found on {self.session.host}"
        if ":" in self.reference:
            return f"manifest {self.reference} not found in {self.where}"
        return f"tag {self.reference} not found in {self.where}"

    async def _platform_sizes(self, index: ParsedManifest) -> dict[str, int]:
        """{platform: config + layers size} over the index's images, in index order."""
        entries = [entry for entry in index.manifests if not _is_attestation(entry)]
        if len(entries) > MAX_PLATFORM_MANIFESTS:
            raise invalid(
                f"the index of {self.where} lists {len(entries)} manifests; at most "
                f"{MAX_PLATFORM_MANIFESTS} are checked"
            )
        sizes: dict[str, int] = {}
        for entry in entries:
            child = await self._child(entry)
            if child.is_index:
                continue  # a nested index names no platform of its own
            platform = _platform(entry.platform, self.where) if entry.platform else None
            platform = platform or await self._config_platform(child)
            if platform is not None and platform not in sizes:  # a pull takes the first match
                sizes[platform] = _image_size(child)
        return sizes

    async def _child(self, entry: Descriptor) -> ParsedManifest:
        what = f"the manifest {entry.digest} listed in the index of {self.where}"
        fetched = await self.session.get(
            f"/manifests/{entry.digest}", what=what, limit=MAX_MANIFEST_BYTES, accept=MANIFEST_ACCEPT
        )
        if fetched.status != 200:
            missing = (
                f"the index of {self.where} lists manifest {entry.digest}, which the registry does not serve"
            )
            raise UpstreamFailure(
                self.session.failure(fetched, what=what, not_found=missing, not_found_kind="invalid")
            )
        _verified_digest(fetched, entry.digest, what)
        _check_size(fetched, entry, what)
        return _parse(fetched, what)

    async def _config_platform(self, manifest: ParsedManifest) -> str | None:
        """``os/architecture[/variant]`` from the image config; None for non-image configs."""
        config = manifest.config
        if config is None or config.media_type not in IMAGE_CONFIGS:
            return None
        what = f"the config blob {config.digest} of {self.where}"
        fetched = await self.session.get(f"/blobs/{config.digest}", what=what, limit=MAX_CONFIG_BYTES)
        if fetched.status != 200:
            missing = f"{self.where} serves a manifest whose config blob {config.digest} it does not hold"
            raise UpstreamFailure(
                self.session.failure(fetched, what=what, not_found=missing, not_found_kind="invalid")
            )
        if Digest.of(fetched.body, config.digest.algorithm) != config.digest:
            raise invalid(
                f"{self.session.host} sent {what} with different content (its digest does not match)"
            )
        _check_size(fetched, config, what)
        try:
            document = json.loads(fetched.body)
        except (ValueError, RecursionError):
            raise invalid(f"{what} is not JSON") from None
        return _platform(document, self.where) if isinstance(document, dict) else None


def _verified_digest(fetched: Fetched, expected: Digest | None, what: str) -> str:
    """The manifest's digest, after checking the bytes against the header and the request."""
    header = fetched.headers.get("docker-content-digest")
    served: Digest | None = None
    if header:
        try:
            served = Digest.parse(header.strip())
        except InvalidDigest:
            raise invalid(
                f"the upstream sent {what} with an invalid Docker-Content-Digest {header[:100]!r}"
            ) from None
        actual = Digest.of(fetched.body, served.algorithm)
        if actual != served:
            raise invalid(
                f"the upstream's Docker-Content-Digest {served} does not match {what} it sent ({actual}): "
                "refused, as a pull by that digest would fail"
            )
    if expected is not None:
        actual = Digest.of(fetched.body, expected.algorithm)
        if actual != expected:
            raise invalid(f"the upstream sent {what} with digest {actual}, not the {expected} asked for")
        return str(expected)
    return str(served) if served is not None else str(Digest.of(fetched.body))


def _check_size(fetched: Fetched, descriptor: Descriptor, what: str) -> None:
    if len(fetched.body) != descriptor.size:
        raise invalid(f"{what} is {len(fetched.body)} bytes, but its descriptor says {descriptor.size}")


def _parse(fetched: Fetched, what: str) -> ParsedManifest:
    try:
        return parse_manifest(fetched.body, fetched.content_type)
    except InvalidManifest as exc:
        raise invalid(f"{what} cannot be used: {exc.message}") from None


def _image_size(manifest: ParsedManifest) -> int:
    """What a pull downloads for this image: config and layers as stored (compressed)."""
    return sum(descriptor.size for descriptor in (manifest.config, *manifest.layers) if descriptor)


def _is_attestation(entry: Descriptor) -> bool:
    platform = entry.platform or {}
    if platform.get("os") == "unknown" and platform.get("architecture") == "unknown":
        return True
    return (entry.annotations or {}).get(_ATTESTATION[0]) == _ATTESTATION[1]


def _platform(source: dict[str, object], where: str) -> str | None:
    """``os/architecture[/variant]`` from an index entry's platform or an image config."""
    os_name, architecture, variant = source.get("os"), source.get("architecture"), source.get("variant")
    if not isinstance(os_name, str) or not isinstance(architecture, str) or not os_name or not architecture:
        return None
    parts = [os_name, architecture] + ([variant] if isinstance(variant, str) and variant else [])
    if not all(_PLATFORM_PART_RE.fullmatch(part) for part in parts):
        raise invalid(f"{where} declares a malformed platform {'/'.join(parts)[:100]!r}")
    return "/".join(parts)
