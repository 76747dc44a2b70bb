"""OCI content and a small registry client for black-box HTTP tests.

Content builders (blobs, OCI image manifests and indexes, Docker schema2 manifests and
manifest lists, OCI 1.1 artifacts with a ``subject``) return immutable values that know their
own bytes, digest and descriptor. :class:`OciClient` speaks the Distribution API over
``httpx`` and is small on purpose: tests that check status codes use its ``http`` attribute
directly, and use the helpers only to set up state.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"

MANIFEST_MEDIA_TYPES = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST)
ACCEPT_MANIFESTS = ", ".join(MANIFEST_MEDIA_TYPES)
OCTET_STREAM = "application/octet-stream"
EMPTY_JSON = b"{}"

Json = dict[str, Any]


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def encode(document: Mapping[str, Any]) -> bytes:
    """Compact JSON, the way most clients serialise manifests."""
    return json.dumps(document, separators=(",", ":")).encode()


def unique_repo(label: str) -> str:
    """A fresh repository name ``spec/<label>-<random>``; the server is shared by a whole session."""
    slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-") or "repo"
    return f"spec/{slug[:60]}-{secrets.token_hex(4)}"


def with_query(url: str, **params: str) -> str:
    """Append query parameters to a (possibly already parameterised) upload location.

    httpx's ``params=`` replaces an existing query string, which would drop state a registry
    keeps in its ``Location`` (Distribution's ``_state``), so parameters are appended instead.
    """
    return url + ("&" if "?" in url else "?") + urlencode(params, safe=":")


def location_of(response: httpx.Response) -> str:
    """The response's ``Location`` header, made absolute against the request URL."""
    location = response.headers.get("location")
    assert location, f"{response.request.method} {response.request.url}: no Location header"
    return str(response.request.url.join(location))


# --------------------------------------------------------------------------- content


@dataclass(frozen=True)
class Blob:
    data: bytes
    media_type: str = OCI_LAYER

    @property
    def digest(self) -> str:
        return sha256(self.data)

    @property
    def size(self) -> int:
        return len(self.data)

    def descriptor(self, **extra: Any) -> Json:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}


def random_bytes(size: int) -> bytes:
    return os.urandom(size)


def random_blob(size: int = 1024, media_type: str = OCI_LAYER) -> Blob:
    return Blob(random_bytes(size), media_type)


def image_config(media_type: str = OCI_CONFIG, *, layers: int = 1) -> Blob:
    """A minimal image config; a random label keeps every config (and manifest) unique."""
    document = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Labels": {"test.nonce": secrets.token_hex(8)}},
        "rootfs": {"type": "layers", "diff_ids": [sha256(random_bytes(8)) for _ in range(layers)]},
    }
    return Blob(encode(document), media_type)


EMPTY_CONFIG = Blob(EMPTY_JSON, OCI_EMPTY)


@dataclass(frozen=True)
class Manifest:
    """A manifest's exact bytes, plus the content that must be in the repository before it."""

    body: bytes
    media_type: str
    blobs: tuple[Blob, ...] = ()
    children: tuple[Manifest, ...] = ()
    document: Json = field(default_factory=dict, compare=False)

    @property
    def digest(self) -> str:
        return sha256(self.body)

    @property
    def size(self) -> int:
        return len(self.body)

    def descriptor(self, **extra: Any) -> Json:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}

    def reformatted(self, body: bytes) -> Manifest:
        """The same manifest (same references) serialised as other bytes, e.g. odd whitespace."""
        return Manifest(body, self.media_type, self.blobs, self.children, json.loads(body))


def _build(
    document: Json, media_type: str, blobs: Iterable[Blob] = (), children: Iterable[Manifest] = ()
) -> Manifest:
    return Manifest(encode(document), media_type, tuple(blobs), tuple(children), document)


def _subject_descriptor(subject: Manifest | Json) -> Json:
    return subject.descriptor() if isinstance(subject, Manifest) else dict(subject)


def oci_manifest(
    config: Blob | None = None,
    layers: Sequence[Blob] | None = None,
    *,
    subject: Manifest | Json | None = None,
    artifact_type: str | None = None,
    annotations: Mapping[str, str] | None = None,
) -> Manifest:
    config = config if config is not None else image_config()
    layers = list(layers) if layers is not None else [random_blob(512)]
    document: Json = {"schemaVersion": 2, "mediaType": OCI_MANIFEST}
    if artifact_type is not None:
        document["artifactType"] = artifact_type
    document["config"] = config.descriptor()
    document["layers"] = [layer.descriptor() for layer in layers]
    if subject is not None:
        document["subject"] = _subject_descriptor(subject)
    if annotations:
        document["annotations"] = dict(annotations)
    return _build(document, OCI_MANIFEST, [config, *layers])


def oci_index(
    manifests: Sequence[Manifest],
    *,
    subject: Manifest | Json | None = None,
    artifact_type: str | None = None,
    annotations: Mapping[str, str] | None = None,
) -> Manifest:
    document: Json = {"schemaVersion": 2, "mediaType": OCI_INDEX}
    if artifact_type is not None:
        document["artifactType"] = artifact_type
    document["manifests"] = [
        m.descriptor(platform={"architecture": arch, "os": "linux"})
        for m, arch in zip(manifests, _architectures(len(manifests)), strict=True)
    ]
    if subject is not None:
        document["subject"] = _subject_descriptor(subject)
    if annotations:
        document["annotations"] = dict(annotations)
    return _build(document, OCI_INDEX, children=manifests)


def docker_manifest(config: Blob | None = None, layers: Sequence[Blob] | None = None) -> Manifest:
    config = config if config is not None else image_config(DOCKER_CONFIG)
    layers = list(layers) if layers is not None else [random_blob(512, DOCKER_LAYER)]
    document: Json = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": config.descriptor(),
        "layers": [layer.descriptor() for layer in layers],
    }
    return _build(document, DOCKER_MANIFEST, [config, *layers])


def docker_manifest_list(manifests: Sequence[Manifest]) -> Manifest:
    document: Json = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST_LIST,
        "manifests": [
            m.descriptor(platform={"architecture": arch, "os": "linux"})
            for m, arch in zip(manifests, _architectures(len(manifests)), strict=True)
        ],
    }
    return _build(document, DOCKER_MANIFEST_LIST, children=manifests)


def artifact(
    subject: Manifest | Json,
    artifact_type: str,
    *,
    annotations: Mapping[str, str] | None = None,
    blobs: Sequence[Blob] | None = None,
) -> Manifest:
    """An OCI 1.1 artifact manifest (empty config) that refers to ``subject``."""
    layers = list(blobs) if blobs is not None else [Blob(random_bytes(64), "application/vnd.test.payload")]
    return oci_manifest(
        EMPTY_CONFIG, layers, subject=subject, artifact_type=artifact_type, annotations=annotations
    )


def _architectures(count: int) -> list[str]:
    known = ["amd64", "arm64", "ppc64le", "s390x", "riscv64"]
    return [known[i % len(known)] for i in range(count)]


def manifest_of_kind(kind: str) -> Manifest:
    """One fresh manifest of each kind the registry must serve, by name (for parametrised tests)."""
    if kind == "oci-manifest":
        return oci_manifest()
    if kind == "oci-index":
        return oci_index([oci_manifest(), oci_manifest()])
    if kind == "docker-manifest":
        return docker_manifest()
    if kind == "docker-manifest-list":
        return docker_manifest_list([docker_manifest(), docker_manifest()])
    raise ValueError(f"unknown manifest kind {kind!r}")


MANIFEST_KINDS = ("oci-manifest", "oci-index", "docker-manifest", "docker-manifest-list")


# --------------------------------------------------------------------------- errors


def error_codes(response: httpx.Response) -> list[str]:
    """The ``code`` of every error in a spec error body; fails if the body is not one."""
    content_type = response.headers.get("content-type", "")
    assert content_type.startswith("application/json"), (
        f"error body is not JSON (Content-Type {content_type!r}): {response.text[:300]!r}"
    )
    body = response.json()
    assert isinstance(body, dict), body
    assert set(body) == {"errors"}, f"error body has keys {sorted(body)}, expected only 'errors'"
    errors = body["errors"]
    assert isinstance(errors, list), body
    assert errors, "error body has an empty 'errors' list"
    codes: list[str] = []
    for error in errors:
        assert isinstance(error, dict), error
        assert set(error) <= {"code", "message", "detail"}, f"unexpected keys in error {error}"
        assert isinstance(error.get("code"), str), error
        assert re.fullmatch(r"[A-Z][A-Z_]*", error["code"]), error
        assert isinstance(error.get("message", ""), str), error
        codes.append(error["code"])
    return codes


def assert_error(
    response: httpx.Response,
    status: int | Iterable[int],
    *codes: str,
    json_required: bool = True,
) -> None:
    """The response is an error with one of ``status`` and (if a body is given) one of ``codes``.

    A 4xx body MAY be in any format, but a JSON one MUST be the spec's error envelope. With
    ``json_required`` the body must be that envelope; HEAD responses never have a body.
    """
    allowed = {status} if isinstance(status, int) else set(status)
    assert response.status_code in allowed, (
        f"{response.request.method} {response.request.url.raw_path.decode()[:200]}: "
        f"got {response.status_code}, expected one of {sorted(allowed)}: {response.text[:300]!r}"
    )
    if response.request.method == "HEAD":
        return
    is_json = response.headers.get("content-type", "").startswith("application/json")
    if not (json_required or is_json):
        return
    found = error_codes(response)
    if codes:
        assert set(found) & set(codes), f"error codes {found}, expected one of {list(codes)}"


def assert_not_server_error(response: httpx.Response) -> None:
    assert response.status_code < 500, (
        f"{response.request.method} {response.request.url.raw_path.decode()[:200]}: "
        f"server error {response.status_code}: {response.text[:300]!r}"
    )


# --------------------------------------------------------------------------- pagination


def next_link(response: httpx.Response) -> str | None:
    """The target of a ``Link: <...>; rel="next"`` header, or None."""
    header = response.headers.get("link")
    if header is None:
        return None
    match = re.search(r'<([^>]*)>\s*;\s*rel="?next"?', header)
    assert match, f"Link header without rel=next: {header!r}"
    return match.group(1)


# --------------------------------------------------------------------------- client


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


def raw_request(base_url: str, method: str, raw_path: str) -> RawResponse:
    """Send a request whose path is passed on exactly as given (httpx would normalise ``..``)."""
    url = httpx.URL(base_url)
    conn = http.client.HTTPConnection(url.host, url.port, timeout=30)
    try:
        conn.request(method, raw_path)
        resp = conn.getresponse()
        return RawResponse(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


class OciClient:
    """A thin Distribution API client over ``httpx`` for setting up and checking registry state."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    @classmethod
    @contextmanager
    def connect(cls, base_url: str) -> Iterator[OciClient]:
        with httpx.Client(base_url=base_url, timeout=60) as http:
            yield cls(http)

    # blobs

    def start_upload(self, repo: str, **headers: str) -> httpx.Response:
        resp = self.http.post(f"/v2/{repo}/blobs/uploads/", headers={"Content-Length": "0", **headers})
        assert resp.status_code == 202, f"POST upload: {resp.status_code} {resp.text[:300]}"
        return resp

    def push_blob(self, repo: str, blob: Blob | bytes) -> str:
        """Upload monolithically (POST then PUT ``?digest=``); returns the digest."""
        data = blob.data if isinstance(blob, Blob) else blob
        digest = sha256(data)
        location = location_of(self.start_upload(repo))
        resp = self.http.put(
            with_query(location, digest=digest), content=data, headers={"Content-Type": OCTET_STREAM}
        )
        assert resp.status_code == 201, f"PUT blob {digest}: {resp.status_code} {resp.text[:300]}"
        return digest

    def push_blobs(self, repo: str, blobs: Iterable[Blob]) -> None:
        for blob in blobs:
            self.push_blob(repo, blob)

    def get_blob(self, repo: str, digest: str, **headers: str) -> httpx.Response:
        return self.http.get(f"/v2/{repo}/blobs/{digest}", headers=headers)

    def head_blob(self, repo: str, digest: str) -> httpx.Response:
        return self.http.head(f"/v2/{repo}/blobs/{digest}")

    def blob_exists(self, repo: str, digest: str) -> bool:
        status = self.head_blob(repo, digest).status_code
        assert status in (200, 404), f"HEAD blob {digest}: {status}"
        return status == 200

    def delete_blob(self, repo: str, digest: str) -> httpx.Response:
        return self.http.delete(f"/v2/{repo}/blobs/{digest}")

    # manifests

    def put_manifest(
        self, repo: str, reference: str, manifest: Manifest, content_type: str | None = None
    ) -> httpx.Response:
        """PUT the manifest's exact bytes; no status is checked."""
        return self.http.put(
            f"/v2/{repo}/manifests/{reference}",
            content=manifest.body,
            headers={"Content-Type": content_type or manifest.media_type},
        )

    def push_manifest(self, repo: str, reference: str, manifest: Manifest) -> httpx.Response:
        resp = self.put_manifest(repo, reference, manifest)
        assert resp.status_code == 201, f"PUT manifest {reference}: {resp.status_code} {resp.text[:300]}"
        return resp

    def push(self, repo: str, manifest: Manifest, reference: str | None = None) -> httpx.Response:
        """Push everything the manifest needs (blobs, child manifests), then the manifest itself.

        ``reference`` defaults to the manifest's digest (an untagged push).
        """
        self.push_blobs(repo, manifest.blobs)
        for child in manifest.children:
            self.push(repo, child)
        return self.push_manifest(repo, reference or manifest.digest, manifest)

    def get_manifest(self, repo: str, reference: str, *, accept: str = ACCEPT_MANIFESTS) -> httpx.Response:
        return self.http.get(f"/v2/{repo}/manifests/{reference}", headers={"Accept": accept})

    def head_manifest(self, repo: str, reference: str, *, accept: str = ACCEPT_MANIFESTS) -> httpx.Response:
        return self.http.head(f"/v2/{repo}/manifests/{reference}", headers={"Accept": accept})

    def delete_manifest(self, repo: str, reference: str) -> httpx.Response:
        return self.http.delete(f"/v2/{repo}/manifests/{reference}")

    # listing

    def tags(self, repo: str, **params: str | int) -> httpx.Response:
        return self.http.get(f"/v2/{repo}/tags/list", params=params)

    def all_tags(self, repo: str, page_size: int = 100) -> list[str]:
        return self._follow(f"/v2/{repo}/tags/list?n={page_size}", "tags")

    def catalog(self, **params: str | int) -> httpx.Response:
        return self.http.get("/v2/_catalog", params=params)

    def all_repositories(self, page_size: int = 100) -> list[str]:
        return self._follow(f"/v2/_catalog?n={page_size}", "repositories")

    def _follow(self, url: str | None, key: str) -> list[str]:
        items: list[str] = []
        pages = 0
        while url is not None:
            pages += 1
            assert pages <= 10_000, "pagination does not end"
            resp = self.http.get(url)
            assert resp.status_code == 200, f"GET {url}: {resp.status_code} {resp.text[:300]}"
            items.extend(resp.json()[key] or [])
            url = next_link(resp)
        return items

    def referrers(self, repo: str, digest: str, artifact_type: str | None = None) -> httpx.Response:
        params = {} if artifact_type is None else {"artifactType": artifact_type}
        return self.http.get(f"/v2/{repo}/referrers/{digest}", params=params)
