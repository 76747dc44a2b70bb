"""Media types the registry understands, and the grammar every media type follows."""

from __future__ import annotations

import re

from dockyard.oci.errors import InvalidMediaType

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

IMAGE_MANIFESTS = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEXES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
MANIFESTS = IMAGE_MANIFESTS | INDEXES

# Layers that registries are not expected to hold (Windows foreign layers and friends).
NON_DISTRIBUTABLE = frozenset(
    {
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    }
)

# RFC 6838 section 4.2 (which the OCI image spec requires of every mediaType and artifactType):
# type "/" subtype, each 1 to 127 of a restricted set of ASCII characters, starting with a letter
# or digit. So at most 255 characters, and never a control character or a parameter.
_RESTRICTED_NAME = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
MEDIA_TYPE_RE = re.compile(rf"{_RESTRICTED_NAME}/{_RESTRICTED_NAME}")
MAX_MEDIA_TYPE_LENGTH = 255


def is_media_type(value: str) -> bool:
    return MEDIA_TYPE_RE.fullmatch(value) is not None


def validate_media_type(value: str) -> str:
    if not is_media_type(value):
        raise InvalidMediaType(
            f"{value[:100]!r} is not a media type: use type/subtype (RFC 6838), each part 1 to 127 "
            "of letters, digits and !#$&^_.+- starting with a letter or digit, without parameters"
        )
    return value
