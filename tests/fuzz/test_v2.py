"""Property-based tests of every /v2 input, against a real ``dockyard serve`` on SQLite and on
PostgreSQL: names, references, digests, ranges, query values and manifest fields.

For every request: never a 5xx, and every 4xx carries the spec's error envelope with a known
code. Where the input is valid by the specs' own grammars (written out in :mod:`.strategies`,
not taken from Dockyard), it is accepted, and what was accepted reads back byte-identical.

Examples are derandomized (the same every run, so CI cannot flake on a new draw) and bounded
so both databases together take a few minutes; ``DOCKYARD_FUZZ_EXAMPLES`` scales them up for a
longer local hunt.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any
from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.fuzz.conftest import Seeded
from tests.fuzz.strategies import (
    MAX_WORKSPACE,
    NAME_RE,
    TAG_RE,
    content_ranges,
    digests,
    hostile_text,
    is_media_type,
    names,
    numbers,
    range_headers,
    references,
    valid_media_types,
    valid_names,
    valid_tags,
)
from tests.support.oci import (
    ACCEPT_MANIFESTS,
    OCI_INDEX,
    OCI_MANIFEST,
    OCTET_STREAM,
    OciClient,
    error_codes,
    location_of,
    sha256,
    with_query,
)
from tests.support.servers import RunningRegistry

# The distribution spec's error codes, plus those CNCF Distribution adds (TAG_INVALID,
# RANGE_INVALID, PAGINATION_NUMBER_INVALID). UNKNOWN is a 500, never a client's fault.
KNOWN_CODES = frozenset(
    {
        "BLOB_UNKNOWN",
        "BLOB_UPLOAD_INVALID",
        "BLOB_UPLOAD_UNKNOWN",
        "DIGEST_INVALID",
        "MANIFEST_BLOB_UNKNOWN",
        "MANIFEST_INVALID",
        "MANIFEST_UNKNOWN",
        "NAME_INVALID",
        "NAME_UNKNOWN",
        "SIZE_INVALID",
        "TAG_INVALID",
        "UNAUTHORIZED",
        "DENIED",
        "UNSUPPORTED",
        "TOOMANYREQUESTS",
        "RANGE_INVALID",
        "PAGINATION_NUMBER_INVALID",
    }
)
_SCALE = max(1, min(int(os.environ.get("DOCKYARD_FUZZ_EXAMPLES", "1")), 1000))
FUZZ = settings(
    max_examples=40 * _SCALE,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
DIGEST_RE = re.compile(r"sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}")


def check(resp: httpx.Response, registry: RunningRegistry) -> None:
    """Never a 5xx; a 4xx from /v2 with a body is the spec's envelope with a known code."""
    request = resp.request
    where = f"{request.method} {request.url.raw_path.decode(errors='replace')[:300]}"
    assert resp.status_code < 500, (
        f"{where}: {resp.status_code} {resp.text[:300]!r}\n{registry.log()[-3000:]}"
    )
    if (
        400 <= resp.status_code < 500
        and request.method != "HEAD"
        and request.url.raw_path.startswith(b"/v2/")
    ):
        codes = error_codes(resp)
        assert set(codes) <= KNOWN_CODES, f"{where}: unknown codes {codes}"


def path(name: str, *parts: str) -> str:
    """``/v2/<name>/<parts>`` with every part percent-encoded, so each is sent as given (a name
    keeps its ``/`` separators; any other part stays one segment)."""
    return "/v2/" + "/".join([quote(name, safe="/"), *(quote(part, safe="") for part in parts)])


def hosted(name: str) -> bool:
    return (
        NAME_RE.fullmatch(name) is not None and len(name) <= 255 and len(name.split("/")[0]) <= MAX_WORKSPACE
    )


# --------------------------------------------------------------------------------- names


@FUZZ
@given(name=names)
@example(name="w" * 65 + "/tool")  # a workspace longer than its column (PostgreSQL)
@example(name="a\u0000b/c")
def test_repository_names(client: OciClient, registry: RunningRegistry, seeded: Seeded, name: str) -> None:
    requests = [
        ("GET", path(name, "tags", "list")),
        ("GET", path(name, "manifests", "latest")),
        ("HEAD", path(name, "manifests", "latest")),
        ("GET", path(name, "blobs", seeded.layer.digest)),
        ("GET", path(name, "referrers", seeded.image.digest)),
        ("POST", path(name, "blobs", "uploads") + f"?mount={seeded.layer.digest}&from={quote(seeded.repo)}"),
    ]
    for method, url in requests:
        resp = client.http.request(method, url)
        check(resp, registry)
        if method == "POST" and hosted(name):
            assert resp.status_code == 201, f"mount into valid name {name!r}: {resp.status_code} {resp.text}"


@FUZZ
@given(name=valid_names, data=st.binary(max_size=64))
def test_blobs_pushed_to_any_valid_name_read_back(
    client: OciClient, registry: RunningRegistry, name: str, data: bytes
) -> None:
    name = name if "/" in name else f"{name}/x"  # keep pushes out of the top-level namespace
    if not hosted(name):
        return
    digest = sha256(data)
    resp = client.http.post(path(name, "blobs", "uploads") + "?digest=" + digest, content=data)
    check(resp, registry)
    assert resp.status_code == 201, resp.text
    got = client.http.get(path(name, "blobs", digest))
    assert got.status_code == 200
    assert got.content == data


# --------------------------------------------------------------------------------- references


@FUZZ
@given(reference=references)
@example(reference=".INVALID_MANIFEST_NAME")  # the conformance suite's nonexistent manifest
@example(reference="\u0000")
def test_manifest_references(
    client: OciClient, registry: RunningRegistry, seeded: Seeded, reference: str
) -> None:
    url = path(seeded.repo, "manifests", reference)
    for method in ("GET", "HEAD"):
        resp = client.http.request(method, url, headers={"Accept": ACCEPT_MANIFESTS})
        check(resp, registry)
        # The spec's endpoint table: 200 or 404 (a malformed digest may also be a 400).
        assert resp.status_code in (200, 404) or (resp.status_code == 400 and ":" in reference), resp.text
    put = client.http.put(url, content=seeded.image.body, headers={"Content-Type": OCI_MANIFEST})
    check(put, registry)
    if TAG_RE.fullmatch(reference) or reference == seeded.image.digest:
        assert put.status_code == 201, put.text
        got = client.get_manifest(seeded.repo, reference)
        assert got.status_code == 200
        assert got.content == seeded.image.body
    # The seeded image and its tags stay for the other properties.
    if reference not in (*seeded.tags, seeded.image.digest):
        check(client.http.delete(url), registry)


@FUZZ
@given(tag=valid_tags)
def test_any_valid_tag_is_stored_and_listed(
    client: OciClient, registry: RunningRegistry, seeded: Seeded, tag: str
) -> None:
    repo = f"{seeded.repo}/tags"
    client.push(repo, seeded.image, tag)
    assert client.get_manifest(repo, tag).content == seeded.image.body
    assert tag in client.all_tags(repo)


# --------------------------------------------------------------------------------- digests and ranges


@FUZZ
@given(digest=digests)
@example(digest="sha256:\u0000")
def test_blob_digests(client: OciClient, registry: RunningRegistry, seeded: Seeded, digest: str) -> None:
    for method in ("GET", "HEAD"):
        resp = client.http.request(method, path(seeded.repo, "blobs", digest))
        check(resp, registry)
        assert resp.status_code in (200, 400, 404), resp.text
    check(client.http.get(path(seeded.repo, "referrers", digest)), registry)
    check(client.http.delete(path(f"{seeded.repo}/gone", "blobs", digest)), registry)
    upload = client.http.post(
        path(seeded.repo, "blobs", "uploads") + "?digest=" + quote(digest), content=b"x"
    )
    check(upload, registry)
    if DIGEST_RE.fullmatch(digest):
        assert upload.status_code in (201, 400), upload.text  # 400: the content does not match
        expected_codes = {"DIGEST_INVALID"} if upload.status_code == 400 else set()
        assert upload.status_code == 201 or set(error_codes(upload)) == expected_codes
    else:
        assert upload.status_code == 400, upload.text


@FUZZ
@given(header=range_headers)
def test_blob_ranges(client: OciClient, registry: RunningRegistry, seeded: Seeded, header: str) -> None:
    data = seeded.layer.data
    resp = client.get_blob(seeded.repo, seeded.layer.digest, Range=header)
    check(resp, registry)
    assert resp.status_code in (200, 206, 416), resp.text
    if resp.status_code == 200:
        assert resp.content == data
    elif resp.status_code == 206:
        match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", resp.headers["content-range"])
        assert match, resp.headers["content-range"]
        first, last, size = (int(g) for g in match.groups())
        assert size == len(data)
        assert resp.content == data[first : last + 1]
    else:
        assert resp.headers["content-range"] == f"bytes */{len(data)}"


@FUZZ
@given(content_range=content_ranges, length=st.integers(0, 8))
def test_upload_content_ranges(
    client: OciClient, registry: RunningRegistry, seeded: Seeded, content_range: str, length: int
) -> None:
    location = location_of(client.start_upload(seeded.repo))
    chunk = b"c" * length
    resp = client.http.patch(
        location, content=chunk, headers={"Content-Range": content_range, "Content-Type": OCTET_STREAM}
    )
    check(resp, registry)
    assert resp.status_code in (202, 400, 416), resp.text
    if resp.status_code == 202:  # what was accepted is what the blob holds
        done = client.http.put(with_query(location_of(resp), digest=sha256(chunk)))
        check(done, registry)
        assert done.status_code == 201, done.text
        assert client.get_blob(seeded.repo, sha256(chunk)).content == chunk
    else:
        check(client.http.delete(location), registry)


# --------------------------------------------------------------------------------- query values


@FUZZ
@given(n=st.one_of(st.none(), numbers), last=st.one_of(st.none(), hostile_text, valid_tags))
@example(n=None, last="\u0000")  # PostgreSQL refuses a NUL in text
@example(n="2", last="bravo\u0000")
@example(n="9" * 40, last=None)
def test_listing_queries(
    client: OciClient, registry: RunningRegistry, seeded: Seeded, n: str | None, last: str | None
) -> None:
    params = {k: v for k, v in (("n", n), ("last", last)) if v is not None}
    tags = client.http.get(path(seeded.repo, "tags", "list"), params=params)
    catalog = client.http.get("/v2/_catalog", params=params)
    for resp in (tags, catalog):
        check(resp, registry)
    if n is not None and not re.fullmatch(r"[0-9]{1,9}", n):
        # Not a number: refused. A number of 10 digits or more may be refused as well (the
        # registry bounds it), or served as the largest page.
        for resp in (tags, catalog):
            if re.fullmatch(r"[0-9]+", n) and resp.status_code == 200:
                continue
            assert resp.status_code == 400, resp.text
            assert error_codes(resp) == ["PAGINATION_NUMBER_INVALID"]
        return
    assert tags.status_code == 200, tags.text
    assert catalog.status_code == 200, catalog.text
    # Lexical order is code point order: entries after ``last`` are those greater than it.
    expected = sorted(t for t in seeded.tags if not last or t > last)
    count = len(expected) if n is None else min(int(n), len(expected))
    assert tags.json()["tags"] == expected[:count]
    listed = catalog.json()["repositories"]
    assert listed == sorted(listed)
    if last:
        assert all(name > last for name in listed)


@FUZZ
@given(artifact_type=st.one_of(valid_media_types, hostile_text))
@example(artifact_type="\u0000")
@example(artifact_type="application/" + "x" * 300)
def test_referrers_filters(
    client: OciClient, registry: RunningRegistry, seeded: Seeded, artifact_type: str
) -> None:
    resp = client.referrers(seeded.repo, seeded.image.digest, artifact_type=artifact_type)
    check(resp, registry)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == OCI_INDEX
    for descriptor in resp.json()["manifests"]:
        assert descriptor["artifactType"] == artifact_type


# --------------------------------------------------------------------------------- manifest fields

json_text = st.one_of(
    hostile_text,
    # A lone surrogate cannot travel in a URL, but JSON escapes carry it ("\ud800").
    st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3),
    st.builds(lambda a, b: f"{a}/{b}", hostile_text, hostile_text),
)
media_types = st.one_of(valid_media_types, json_text)
bad_sizes = st.one_of(
    st.integers(max_value=-1),
    st.integers(min_value=2**63, max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.text(max_size=5),
    st.none(),
)
bad_digests = json_text.filter(lambda d: DIGEST_RE.fullmatch(d) is None)


@st.composite
def manifests(draw: st.DrawFn, seeded: Seeded) -> tuple[dict[str, Any], bool]:
    """An image manifest over the seeded blobs with fuzzed fields, and whether it is valid by
    the specs' grammars (then the registry must accept it)."""
    valid = True

    def field(good: Any, bad: st.SearchStrategy[Any]) -> Any:
        nonlocal valid
        if draw(st.integers(0, 3)) > 0:
            return good
        valid = False
        return draw(bad)

    def media_type(default: str) -> str:
        nonlocal valid
        value = draw(st.one_of(st.just(default), media_types))
        valid = valid and is_media_type(value)
        return value

    def descriptor(blob: Any, default_type: str) -> dict[str, Any]:
        return {
            "mediaType": media_type(default_type),
            "digest": field(blob.digest, bad_digests),
            "size": field(blob.size, bad_sizes),
        }

    doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_MANIFEST}
    artifact_type = draw(st.one_of(st.none(), media_types))
    if artifact_type is not None:
        doc["artifactType"] = artifact_type
        valid = valid and is_media_type(artifact_type)
    doc["config"] = descriptor(seeded.config, seeded.config.media_type)
    doc["layers"] = [descriptor(seeded.layer, seeded.layer.media_type)]
    if draw(st.booleans()):
        doc["subject"] = {"mediaType": OCI_MANIFEST, "digest": seeded.image.digest, "size": seeded.image.size}
    annotations = draw(st.one_of(st.none(), st.dictionaries(json_text, json_text, max_size=3)))
    if annotations:
        doc["annotations"] = annotations
    return doc, valid


@FUZZ
@given(data=st.data())
def test_manifest_fields(
    client: OciClient, registry: RunningRegistry, seeded: Seeded, data: st.DataObject
) -> None:
    doc, valid = data.draw(manifests(seeded))
    body = json.dumps(doc).encode()  # ASCII: NULs and lone surrogates as JSON escapes
    digest = sha256(body)
    resp = client.http.put(
        path(seeded.repo, "manifests", digest), content=body, headers={"Content-Type": OCI_MANIFEST}
    )
    check(resp, registry)
    if not valid:
        assert resp.status_code == 400, f"{resp.status_code} {resp.text} for {body[:500]!r}"
        assert error_codes(resp) == ["MANIFEST_INVALID"]
        return
    assert resp.status_code == 201, f"{resp.status_code} {resp.text} for {body[:500]!r}"
    got = client.get_manifest(seeded.repo, digest)
    assert got.status_code == 200
    assert got.content == body
    if "subject" in doc:
        listed = client.referrers(seeded.repo, seeded.image.digest).json()["manifests"]
        found = [d for d in listed if d["digest"] == digest]
        assert len(found) == 1, listed
        sent = json.loads(body)  # as JSON reads it: an escaped surrogate pair is one character
        assert found[0]["artifactType"] == sent.get("artifactType", sent["config"]["mediaType"])
        assert found[0].get("annotations") == (sent.get("annotations") or None)
    client.delete_manifest(seeded.repo, digest)
