"""Catalog tools as TRS v2 documents (``Tool``, ``ToolVersion``, ``ImageData``,
``FileWrapper``, ``ToolClass``), written as plain JSON objects that leave out what Dockyard
does not know rather than send ``null``.

A tool's id is its image name (``lab/samtools``); a version's id is its version. Every
version names its image pinned by digest (``registry/lab/samtools@sha256:...``) with the
digest as its ``sha256`` checksum; an external version, by its upstream reference. Dockyard
holds container images, not CWL, WDL or Nextflow descriptors: ``descriptor_type`` is empty
and ``containerfile`` says whether the Dockerfile it was built from can be read here.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from dockyard.catalog.tools import Tool
from dockyard.catalog.views import INTERNAL, VersionView

Json = dict[str, Any]

TOOL_CLASS: Json = {
    "id": "CommandLineTool",
    "name": "CommandLineTool",
    "description": "A container image that runs a command-line tool; it has no descriptor: run the image.",
}


def tool_url(base: str, tool_id: str) -> str:
    return f"{base}/tools/{quote(tool_id, safe='')}"


def _checksum(digest: str) -> list[Json]:
    algorithm, _, value = digest.partition(":")
    return [{"checksum": value, "type": algorithm}] if algorithm == "sha256" and value else []


def image_data(version: VersionView, registry_host: str) -> list[Json]:
    """The version's image, pinned by digest where known; none while a push is inspected."""
    found: Json = {"image_type": "Docker", "updated": _moment(version.updated_at)}
    if version.source == INTERNAL:
        if not version.digest:
            return []
        found.update(
            registry_host=registry_host, image_name=f"{registry_host}/{version.image}@{version.digest}"
        )
    else:
        reference = version.external_reference or ""
        if version.upstream is not None:
            found["registry_host"] = version.upstream.registry
        if version.digest and "@" not in reference:
            reference = f"{reference.rsplit(':', 1)[0] if _tagged(reference) else reference}@{version.digest}"
        found["image_name"] = reference
    if version.digest:
        found["checksum"] = _checksum(version.digest)
    if version.compressed_size is not None:
        found["size"] = version.compressed_size
    return [found]


def _tagged(reference: str) -> bool:
    """Whether the reference ends in a tag (a ':' after its last '/')."""
    return ":" in reference.rsplit("/", 1)[-1]


def _moment(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def tool_version(base: str, tool: Tool, version: VersionView, registry_host: str) -> Json:
    return {
        "id": version.version,
        "name": version.version,
        "url": f"{tool_url(base, tool.name)}/versions/{quote(version.version, safe='')}",
        "author": [version.created_by] if version.created_by else [],
        "images": image_data(version, registry_host),
        "descriptor_type": [],
        "containerfile": version.version in tool.dockerfiles,
        "is_production": False,  # a version names a tag, which may be pushed again
        "verified": False,
        "signed": False,
    }


def tool_document(base: str, tool: Tool, registry_host: str) -> Json:
    return {
        "id": tool.name,
        "url": tool_url(base, tool.name),
        "organization": tool.workspace,
        "name": tool.name.partition("/")[2] or tool.name,
        "toolclass": TOOL_CLASS,
        "description": tool.description,
        "has_checker": False,
        "meta_version": _moment(tool.updated_at),
        "versions": [tool_version(base, tool, v, registry_host) for v in tool.versions],
    }


def containerfile(tool: Tool, version: VersionView) -> list[Json]:
    """The Dockerfile as a ``FileWrapper``, with its sha256; none if it is not known here."""
    found = tool.dockerfiles.get(version.version)
    if found is None:
        return []
    digest = hashlib.sha256(found.encode()).hexdigest()
    return [{"content": found, "checksum": [{"checksum": digest, "type": "sha256"}]}]
