"""Catalog versions as TRS ``ImageData``: pinned by digest, checked against the TRS models."""

from __future__ import annotations

import dataclasses

from dockyard.api.trs.views import image_data, tool_document
from dockyard.catalog.tools import Tool
from dockyard.catalog.views import UpstreamInfo, VersionView
from tests.support.trs import check

DIGEST = "sha256:" + "ab" * 32

VERSION = VersionView(
    image="lab/samtools",
    version="1.19",
    source="internal",
    kind="tool",
    cluster_compatibility=[],
    regions=[],
    status="available",
    status_reason=None,
    external_reference=None,
    upstream=None,
    digest=DIGEST,
    media_type="application/vnd.oci.image.manifest.v1+json",
    compressed_size=1234,
    uncompressed_size=5678,
    platforms=["linux/amd64"],
    has_amd64=True,
    warnings=[],
    checked_at=None,
    created_at=0.0,
    created_by="alice",
    updated_at=0.0,
    signatures=[],
    imported=None,
)


def test_an_internal_version_is_named_on_this_registry_by_digest() -> None:
    (found,) = check(image_data(VERSION, "dockyard.example:5000"), "ImageDataList")
    assert found["image_name"] == f"dockyard.example:5000/lab/samtools@{DIGEST}"
    assert found["checksum"] == [{"checksum": "ab" * 32, "type": "sha256"}]
    assert (found["size"], found["image_type"], found["updated"]) == (1234, "Docker", "1970-01-01T00:00:00Z")


def test_a_pending_push_names_no_image_yet() -> None:
    assert image_data(dataclasses.replace(VERSION, digest=None, status="pending"), "h") == []


def test_an_external_version_keeps_its_registry_and_pins_its_tag() -> None:
    external = dataclasses.replace(
        VERSION,
        source="external",
        external_reference="quay.io/biocontainers/samtools:1.19--h50ea8bc_0",
        upstream=UpstreamInfo("quay.io", "biocontainers/samtools", "quay", None, None),
        compressed_size=None,
    )
    (found,) = check(image_data(external, "dockyard.example"), "ImageDataList")
    assert found["image_name"] == f"quay.io/biocontainers/samtools@{DIGEST}"
    assert found["registry_host"] == "quay.io"
    assert "size" not in found
    on_port = dataclasses.replace(external, external_reference="registry.example:5000/tools/x", digest=None)
    (unpinned,) = image_data(on_port, "h")
    assert unpinned["image_name"] == "registry.example:5000/tools/x"
    assert "checksum" not in unpinned


def test_a_tool_document_is_a_trs_tool() -> None:
    tool = Tool("lab/samtools", "lab", "", 0.0, [VERSION], {"1.19": "FROM scratch\n"})
    document = check(tool_document("http://h/ga4gh/trs/v2", tool, "h"), "Tool")
    assert document["url"] == "http://h/ga4gh/trs/v2/tools/lab%2Fsamtools"
    assert document["versions"][0]["url"] == "http://h/ga4gh/trs/v2/tools/lab%2Fsamtools/versions/1.19"
    assert document["versions"][0]["containerfile"] is True
