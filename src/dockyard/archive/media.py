"""Media types of the blobs inside image archives (layers and configs)."""

from __future__ import annotations

from dockyard.archive.decompress import Compression

OCI_LAYOUT_VERSION = "1.0.0"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
IMAGE_CONFIGS = frozenset({OCI_CONFIG, DOCKER_CONFIG})

OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

# Annotations that name an image in an OCI layout's index.json.
REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_IMAGE_NAME = "io.containerd.image.name"
# buildx marks provenance / SBOM manifests in an index with this annotation.
REFERENCE_TYPE = "vnd.docker.reference.type"


def oci_layer_type(compression: Compression) -> str:
    """The OCI layer media type for a layer stored with ``compression``."""
    return {
        Compression.NONE: OCI_LAYER,
        Compression.GZIP: OCI_LAYER_GZIP,
        Compression.ZSTD: OCI_LAYER_ZSTD,
    }[compression]
