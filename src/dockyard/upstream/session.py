"""HTTP to one repository of an upstream registry, with authentication, and the translation
of what went wrong into a :class:`Failed` a user can act on.

Authentication follows the Distribution token protocol as docker and podman do: a request
that gets ``401`` with ``WWW-Authenticate: Bearer realm=...,service=...,scope=...`` is
retried once with a token from the realm (asked anonymously, or with Basic credentials);
a ``Basic`` challenge is answered with the credentials. The token or Basic header is kept
for the rest of the session, and negotiated again (once per request) if the upstream asks.
Redirects are followed by hand, so no redirect body is read and credentials never leave the
origin they were meant for. Every connection, redirects and token services included, is
checked by the client's :class:`~dockyard.outbound.OutboundPolicy`; a refused one ends the
session as a ``refused`` failure.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import AsyncIterator

import httpx

from dockyard.outbound import OutboundRefused
from dockyard.upstream.results import (
    Credentials,
    Failed,
    FailureKind,
    UpstreamFailure,
    clamp_retry_after,
)
from dockyard.upstream.wire import (
    Fetched,
    basic_authorization,
    invalid,
    parse_challenges,
    read_bounded,
    retry_after_seconds,
    unreachable,
)

USER_AGENT = "dockyard-upstream/0.1"
MAX_ERROR_BYTES = 64 * 1024  # error bodies are read this far and the rest dropped
MAX_TOKEN_BYTES = 64 * 1024
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class UpstreamSession:
    """Requests under ``{scheme}://{api_host}/v2/{repository}`` with the session's credentials.

    ``host`` is the name shown to users (``docker.io``); ``api_host`` is where the API is
    (``registry-1.docker.io``).
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        scheme: str,
        host: str,
        api_host: str,
        repository: str,
        credentials: Credentials | None,
    ) -> None:
        self.client = client
        self.scheme = scheme
        self.host = host
        self.repository = repository
        self.credentials = credentials
        self.base = f"{scheme}://{api_host}/v2/{repository}"
        self._authorization: str | None = None

    async def get(self, path: str, *, what: str, limit: int, accept: str | None = None) -> Fetched:
        """GET ``base + path``, authenticating once on a 401."""
        headers = {"Accept": accept} if accept else {}
        fetched = await self._send(self.base + path, headers, self._authorization, what, limit, self.host)
        if fetched.status == 401 and await self._authenticate(fetched):
            fetched = await self._send(self.base + path, headers, self._authorization, what, limit, self.host)
        return fetched

    async def head(self, path: str, *, what: str) -> Fetched:
        """HEAD ``base + path`` (no body: the status and headers), authenticating once on a 401."""
        fetched = await self._send(self.base + path, {}, self._authorization, what, 0, self.host, "HEAD")
        if fetched.status == 401 and await self._authenticate(fetched):
            fetched = await self._send(self.base + path, {}, self._authorization, what, 0, self.host, "HEAD")
        return fetched

    @contextlib.asynccontextmanager
    async def stream(
        self, path: str, *, what: str, not_found: str, offset: int = 0
    ) -> AsyncIterator[httpx.Response]:
        """GET ``base + path`` without reading the body: the open response (200, or 206 when
        ``offset`` was asked for and honoured), for the caller to read in chunks. Redirects
        are followed by hand as in :meth:`get`; a 401 is answered once; any other status is
        an :class:`UpstreamFailure`."""
        for attempt in range(2):
            response = await self._open(self.base + path, what, offset)
            if response.status_code in (200, 206):
                try:
                    yield response
                finally:
                    await response.aclose()
                return
            try:
                body = await read_bounded(response, MAX_ERROR_BYTES, what, self.host, truncate=True)
            except httpx.TransportError as exc:  # closed or stalled mid-body: as in _send
                raise UpstreamFailure(unreachable(self.host, exc)) from None
            finally:
                await response.aclose()
            fetched = Fetched(response.status_code, response.headers, body)
            if fetched.status == 401 and attempt == 0 and await self._authenticate(fetched):
                continue
            raise UpstreamFailure(self.failure(fetched, what=what, not_found=not_found))

    async def _open(self, url: str, what: str, offset: int) -> httpx.Response:
        target = httpx.URL(url)
        origin = (target.scheme, target.host, target.port)
        for _ in range(MAX_REDIRECTS + 1):
            sent = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
            if offset:
                sent["Range"] = f"bytes={offset}-"
            if self._authorization is not None and (target.scheme, target.host, target.port) == origin:
                sent["Authorization"] = self._authorization
            try:
                request = self.client.build_request("GET", target, headers=sent)
                response = await self.client.send(request, stream=True, follow_redirects=False)
            except OutboundRefused as exc:
                raise UpstreamFailure(Failed("refused", exc.message)) from None
            except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
                raise invalid(f"{self.host} sent an unusable URL for {what}: {str(exc)[:200]}") from None
            except httpx.TransportError as exc:
                raise UpstreamFailure(unreachable(self.host, exc)) from None
            location = response.headers.get("location")
            if response.status_code in _REDIRECTS and location:
                await response.aclose()
                target = target.join(location)
                continue
            return response
        raise invalid(f"{self.host} redirected {what} more than {MAX_REDIRECTS} times")

    async def _send(
        self,
        url: str,
        headers: dict[str, str],
        authorization: str | None,
        what: str,
        limit: int,
        label: str,
        method: str = "GET",
    ) -> Fetched:
        """GET (or HEAD: no body read) with redirects followed by hand (blobs may live on a
        CDN), so that no redirect body is read and ``authorization`` never leaves the first
        URL's origin."""
        target = httpx.URL(url)
        origin = (target.scheme, target.host, target.port)
        for _ in range(MAX_REDIRECTS + 1):
            sent = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **headers}
            if authorization is not None and (target.scheme, target.host, target.port) == origin:
                sent["Authorization"] = authorization
            try:
                async with self.client.stream(
                    method, target, headers=sent, follow_redirects=False
                ) as response:
                    location = response.headers.get("location")
                    if response.status_code in _REDIRECTS and location:
                        target = target.join(location)
                        continue
                    if method == "HEAD":
                        return Fetched(response.status_code, response.headers, b"")
                    ok = response.status_code == 200
                    body = await read_bounded(
                        response, limit if ok else MAX_ERROR_BYTES, what, label, truncate=not ok
                    )
                    return Fetched(response.status_code, response.headers, body)
            except OutboundRefused as exc:
                raise UpstreamFailure(Failed("refused", exc.message)) from None
            except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
                raise invalid(f"{label} sent an unusable URL for {what}: {str(exc)[:200]}") from None
            except httpx.TransportError as exc:
                raise UpstreamFailure(unreachable(label, exc)) from None
        raise invalid(f"{label} redirected {what} more than {MAX_REDIRECTS} times")

    async def _authenticate(self, fetched: Fetched) -> bool:
        """Answer the 401's challenge; False when there is nothing more to try."""
        challenges = parse_challenges(fetched.headers)
        if "bearer" in challenges:
            self._authorization = "Bearer " + await self._token(challenges["bearer"])
            return True
        if "basic" in challenges and self.credentials is not None:
            header = basic_authorization(self.credentials)
            if self._authorization == header:
                return False  # these credentials were already refused
            self._authorization = header
            return True
        return False

    async def _token(self, challenge: dict[str, str]) -> str:
        realm = challenge.get("realm", "")
        try:
            url = httpx.URL(realm)
        except httpx.InvalidURL:
            raise invalid(f"{self.host} names an unusable token service {realm[:200]!r}") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise invalid(f"{self.host} names an unusable token service {realm[:200]!r}")
        if self.credentials is not None and self.scheme == "https" and url.scheme != "https":
            raise invalid(
                f"{self.host} asks for credentials to be sent to {url.host} over plain HTTP: refused; "
                "the registry's token service must use HTTPS"
            )
        params: list[tuple[str, str]] = []
        if challenge.get("service"):
            params.append(("service", challenge["service"]))
        default = [f"repository:{self.repository}:pull"] if self.repository else []  # a login: no scope
        scopes = challenge.get("scope", "").split() or default
        params += [("scope", scope) for scope in scopes]
        basic = None
        if self.credentials is not None:
            params.append(("account", self.credentials.username))
            basic = basic_authorization(self.credentials)
        label = f"the token service of {self.host} ({url.host})"
        answer = await self._send(
            str(url.copy_merge_params(tuple(params))),
            {},
            basic,
            "a token",
            MAX_TOKEN_BYTES,
            label,
        )
        if answer.status in (401, 403):
            if self.credentials is None:
                raise UpstreamFailure(self.unauthorized(answer.status))
            raise UpstreamFailure(
                Failed(
                    "unauthorized",
                    f"{self.host} rejected the credentials of {self.credentials.username} (its token "
                    f"service answered HTTP {answer.status}): update {self._profile_name()}",
                    answer.status,
                    profile=self.credentials.profile,
                )
            )
        if answer.status != 200:
            missing = f"{label} was not found (HTTP 404)"
            raise UpstreamFailure(
                self.failure(answer, what="a token", not_found=missing, not_found_kind="invalid")
            )
        try:
            document = json.loads(answer.body)
        except (ValueError, RecursionError):
            document = None
        token = None
        if isinstance(document, dict):
            token = document.get("token") or document.get("access_token")
        if not isinstance(token, str) or not token or not token.isprintable():
            raise invalid(f"{label} answered without a token")
        return token

    # ----------------------------------------------------------------------- failures

    def _profile_name(self) -> str:
        profile = self.credentials.profile if self.credentials is not None else None
        return f"the registry profile {profile}" if profile else f"the credentials stored for {self.host}"

    def unauthorized(self, status: int | None) -> Failed:
        where = f"{self.host}/{self.repository}"
        if self.credentials is None:
            message = (
                f"the upstream registry refused anonymous access to {where}: the image is private "
                f"(or does not exist); add credentials for {self.host} or ask its owner for access"
            )
            return Failed("unauthorized", message, status)
        user = self.credentials.username
        if status == 403:
            return Failed(
                "forbidden",
                f"{self.host} knows {user} but forbids it to pull {self.repository} (HTTP 403): ask the "
                f"image's owner for access, or use other credentials in {self._profile_name()}",
                status,
                profile=self.credentials.profile,
            )
        message = (
            f"{self.host} refused {user} access to {self.repository}: the credentials are wrong, or "
            f"{user} may not pull this image (or it does not exist); check {self._profile_name()} "
            "or ask the image's owner for access"
        )
        return Failed("unauthorized", message, status, profile=self.credentials.profile)

    def rate_limited(self, fetched: Fetched) -> Failed:
        wait = clamp_retry_after(retry_after_seconds(fetched.headers.get("retry-after")))
        detail = fetched.error_message()
        when = f"try again in {math.ceil(wait)} seconds" if wait is not None else "try again later"
        if self.credentials is None:
            when += f", or add credentials for {self.host} if it allows more pulls to signed-in users"
        return Failed(
            "rate_limited",
            f"{self.host} is rate limiting requests (HTTP {fetched.status}"
            + (f": {detail}" if detail else "")
            + f"); {when}",
            fetched.status,
            wait,
        )

    def failure(
        self, fetched: Fetched, *, what: str, not_found: str, not_found_kind: FailureKind = "not_found"
    ) -> Failed:
        """A non-200 answer as a Failed; ``not_found`` is the message for a 404."""
        status = fetched.status
        if status == 429 or "TOOMANYREQUESTS" in fetched.error_codes():
            return self.rate_limited(fetched)
        if status in (401, 403):
            return self.unauthorized(status)
        if status == 404:
            detail = not_found.split(" ", 1)[0] if not_found_kind == "not_found" else None
            return Failed(not_found_kind, not_found, status, detail=detail)
        reason = httpx.codes.get_reason_phrase(status) or "unexpected status"
        if status >= 500:
            return Failed(
                "upstream_error",
                f"{self.host} answered HTTP {status} ({reason}) to {what}: the registry, or a proxy in "
                "front of it, is failing; try again later",
                status,
            )
        detail = fetched.error_message()
        return Failed(
            "invalid",
            f"{self.host} answered HTTP {status} ({reason}) to {what}" + (f": {detail}" if detail else ""),
            status,
        )
