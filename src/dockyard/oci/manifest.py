"""Parse and validate manifests without touching their bytes.

The registry stores and serves exactly the bytes a client sent; this module only reads
them to learn what they reference (blobs, child manifests, a subject) and to refuse
malformed ones with :class:`~dockyard.oci.errors.InvalidManifest` (``MANIFEST_INVALID`` on
the wire). Every string it hands on to be stored (media types, artifact types) is a media type
of RFC 6838, so it is short, printable ASCII, and fits any database column.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from dockyard.oci import mediatypes as mt
from dockyard.oci.digest import Digest
from dockyard.oci.errors import InvalidDigest, InvalidManifest, InvalidMediaType

# Caps well above any real image, so hostile manifests are refused as invalid
# instead of failing later: every descriptor becomes a bound parameter when the references
# are checked and stored, and PostgreSQL allows at most 32,767 per statement.
MAX_DESCRIPTORS = 10_000  # layers of an image manifest, or manifests of an index
MAX_ANNOTATIONS = 1_000  # entries in one annotations map
MAX_SIZE = 2**63 - 1  # a descriptor's size is an int64 (OCI image spec)


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    artifact_type: str | None = None
    annotations: dict[str, str] | None = None
    platform: dict[str, Any] | None = None


@dataclass(frozen=True)
class ParsedManifest:
    media_type: str
    config: Descriptor | None = None
    layers: tuple[Descriptor, ...] = ()
    manifests: tuple[Descriptor, ...] = ()
    subject: Descriptor | None = None
    artifact_type: str | None = None
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def is_index(self) -> bool:
        return self.media_type in mt.INDEXES

    @property
    def blob_references(self) -> tuple[Descriptor, ...]:
        """Blobs the repository must hold for this manifest to be accepted."""
        blobs = (self.config, *self.layers) if self.config else self.layers
        return tuple(d for d in blobs if d.media_type not in mt.NON_DISTRIBUTABLE)

    @property
    def referrer_artifact_type(self) -> str | None:
        """The artifactType a referrers listing shows (spec: fall back to the config media type)."""
        if self.artifact_type:
            return self.artifact_type
        if self.config is not None and self.media_type == mt.OCI_MANIFEST:
            return self.config.media_type
        return None


def _media_type(raw: Any, where: str) -> str:
    """A mediaType or artifactType field: a string that is a media type (RFC 6838)."""
    if not isinstance(raw, str) or not raw:
        raise InvalidManifest(f"{where} must be a non-empty string")
    try:
        return mt.validate_media_type(raw)
    except InvalidMediaType as exc:
        raise InvalidManifest(f"{where}: {exc.message}") from None


def _descriptor(raw: Any, where: str) -> Descriptor:
    if not isinstance(raw, dict):
        raise InvalidManifest(f"{where} must be a descriptor object")
    media_type = _media_type(raw.get("mediaType"), f"{where}.mediaType")
    digest = raw.get("digest")
    size = raw.get("size")
    if not isinstance(digest, str):
        raise InvalidManifest(f"{where}.digest must be a string")
    try:
        parsed_digest = Digest.parse(digest)
    except InvalidDigest as exc:
        raise InvalidManifest(f"{where}.digest: {exc.message}") from None
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_SIZE:
        raise InvalidManifest(f"{where}.size must be an integer from 0 to {MAX_SIZE}")
    artifact_type = raw.get("artifactType")
    if artifact_type is not None:
        artifact_type = _media_type(artifact_type, f"{where}.artifactType")
    annotations = _annotations(raw.get("annotations"), where)
    platform = raw.get("platform")
    if platform is not None and not isinstance(platform, dict):
        raise InvalidManifest(f"{where}.platform must be an object")
    return Descriptor(media_type, parsed_digest, size, artifact_type, annotations or None, platform)


def _annotations(raw: Any, where: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
    ):
        raise InvalidManifest(f"{where}.annotations must map strings to strings")
    if len(raw) > MAX_ANNOTATIONS:
        raise InvalidManifest(
            f"{where}.annotations has {len(raw)} entries; at most {MAX_ANNOTATIONS} are allowed"
        )
    return raw


def _descriptors(raw: Any, where: str, required: bool) -> tuple[Descriptor, ...]:
    if raw is None and not required:
        return ()
    if not isinstance(raw, list):
        raise InvalidManifest(f"{where} must be a list of descriptors")
    if len(raw) > MAX_DESCRIPTORS:
        raise InvalidManifest(f"the manifest has {len(raw)} {where}; at most {MAX_DESCRIPTORS} are allowed")
    return tuple(_descriptor(item, f"{where}[{i}]") for i, item in enumerate(raw))


def _bare(content_type: str | None) -> str | None:
    if not content_type:
        return None
    return content_type.split(";", 1)[0].strip().lower() or None


def parse_manifest(data: bytes, content_type: str | None) -> ParsedManifest:
    """Validate ``data`` as a manifest of the given (or declared) media type."""
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidManifest(f"manifest is not valid JSON: {exc}") from None
    except RecursionError:
        raise InvalidManifest("manifest JSON is nested too deeply") from None
    if not isinstance(doc, dict):
        raise InvalidManifest("manifest must be a JSON object")

    declared = doc.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise InvalidManifest("mediaType must be a string")
    header = _bare(content_type)
    if header in (mt.DOCKER_SCHEMA1, mt.DOCKER_SCHEMA1_SIGNED) or doc.get("schemaVersion") == 1:
        raise InvalidManifest("Docker schema 1 manifests are not supported; push with a current client")
    if declared and header in mt.MANIFESTS and declared != header:
        raise InvalidManifest(
            f"Content-Type {header[:100]!r} does not match the manifest's mediaType {declared[:100]!r}"
        )
    media_type = declared or (header if header in mt.MANIFESTS else None)
    if media_type is None:
        media_type = mt.OCI_INDEX if "manifests" in doc else mt.OCI_MANIFEST
    if media_type not in mt.MANIFESTS:
        raise InvalidManifest(f"unsupported manifest media type {media_type[:100]!r}")
    if doc.get("schemaVersion") != 2:
        raise InvalidManifest("schemaVersion must be 2")

    artifact_type = doc.get("artifactType")
    if artifact_type is not None:
        artifact_type = _media_type(artifact_type, "artifactType")
    subject = _descriptor(doc["subject"], "subject") if doc.get("subject") is not None else None
    annotations = _annotations(doc.get("annotations"), "manifest")

    if media_type in mt.INDEXES:
        return ParsedManifest(
            media_type=media_type,
            manifests=_descriptors(doc.get("manifests"), "manifests", required=True),
            subject=subject,
            artifact_type=artifact_type,
            annotations=annotations,
        )
    if "config" not in doc:
        raise InvalidManifest("an image manifest needs a config descriptor")
    config = _descriptor(doc["config"], "config")
    layers = _descriptors(doc.get("layers"), "layers", required=media_type == mt.DOCKER_MANIFEST)
    return ParsedManifest(
        media_type=media_type,
        config=config,
        layers=layers,
        subject=subject,
        artifact_type=artifact_type,
        annotations=annotations,
    )
