"""Describe the images in an archive from its small metadata files. Pure: no I/O.

Layouts understood:

- docker save, docker < 25: ``manifest.json`` (``[{"Config": "<id>.json", "RepoTags": [...],
  "Layers": ["<v1 id>/layer.tar", ...]}]``), ``repositories``, ``<v1 id>/{VERSION,json}``.
- docker save, docker >= 25: the same ``manifest.json`` naming ``blobs/sha256/<hex>`` files,
  plus ``oci-layout`` and ``index.json``, so the archive is also an OCI layout.
- OCI image layout (skopeo ``oci-archive:``, buildx ``type=oci``, containerd export):
  ``oci-layout``, ``index.json`` -> image manifests or (nested) indexes -> platforms.

Which description wins when both exist: the OCI layout, as containerd's importer does,
since it carries platforms, media types and blob digests; ``manifest.json`` then only
supplies familiar tags (``RepoTags``) for single-platform images. When the OCI side is
unusable but not corrupt (docker 25.0.0 wrote OCI manifests listing only foreign layers),
``manifest.json`` is used, as moby's own loader (``image/tarexport/load.go``) only reads it.

What is checked here, on the buffered metadata: JSON shape, every file a manifest names
exists in the archive (``paths``), digests and sizes of manifests, indexes and configs
(they are in memory), content-addressed names (``blobs/sha256/<hex>``, ``<hex>.json``)
and the layer count against the config's ``rootfs.diff_ids``. What cannot be checked yet,
layer content, is returned as ``expectations()`` for the streaming side to verify.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from dockyard.archive import media
from dockyard.archive.errors import ArchiveError, DigestMismatch, InvalidArchive
from dockyard.archive.images import (
    ArchiveDescription,
    ArchiveFormat,
    ArchiveImage,
    BlobRef,
    Expectation,
    LayerRef,
    Platform,
    PlatformImage,
)
from dockyard.archive.safe_tar import normalize_name
from dockyard.oci import mediatypes as mt
from dockyard.oci.digest import Digest
from dockyard.oci.errors import InvalidDigest, InvalidManifest
from dockyard.oci.manifest import MAX_DESCRIPTORS, Descriptor, ParsedManifest, parse_manifest

MANIFEST_JSON = "manifest.json"
REPOSITORIES = "repositories"
OCI_LAYOUT = "oci-layout"
INDEX_JSON = "index.json"
METADATA_NAMES = frozenset({MANIFEST_JSON, REPOSITORIES, OCI_LAYOUT, INDEX_JSON})
MAX_INDEX_DEPTH = 4
_BLOB_PATH = re.compile(r"^blobs/(sha256|sha512)/([0-9a-f]+)$")
_CONFIG_ID_PATH = re.compile(r"^([0-9a-f]{64})\.json$")


def describe_archive(metadata: Mapping[str, bytes], paths: Mapping[str, str]) -> ArchiveDescription:
    """Describe the images of an archive.

    ``metadata`` holds the bytes of the small JSON files that were buffered, by canonical
    path; ``paths`` maps every archive path (files and links) to its canonical regular file.
    Raises ``InvalidArchive`` (``DigestMismatch`` for integrity failures) with a message
    naming the file at fault.
    """
    ctx = _Context(metadata, paths)
    has_oci = OCI_LAYOUT in paths and INDEX_JSON in paths
    has_docker = MANIFEST_JSON in paths
    if not has_oci and not has_docker:
        raise InvalidArchive(
            "not an image archive: it has neither manifest.json (docker save) "
            "nor oci-layout and index.json (OCI image layout)"
        )
    if not has_oci:
        return ctx.finish(_docker_save(ctx))
    try:
        description = _oci_layout(ctx)
    except DigestMismatch:
        raise
    except InvalidArchive as oci_error:
        if not has_docker:
            raise
        ctx = _Context(metadata, paths)
        try:
            return ctx.finish(_docker_save(ctx))
        except InvalidArchive as docker_error:
            raise InvalidArchive(f"{oci_error} (and manifest.json: {docker_error})") from None
    if has_docker:
        description = _with_docker_tags(description, ctx)
    return ctx.finish(description)


class _Context:
    def __init__(self, metadata: Mapping[str, bytes], paths: Mapping[str, str]) -> None:
        self.metadata = metadata
        self.paths = paths
        self.expectations: dict[tuple[str, str], Expectation] = {}

    def resolve(self, raw: Any, where: str) -> str:
        if not isinstance(raw, str):
            raise InvalidArchive(f"{where} must be a path string")
        path = normalize_name(raw, f"path in {where}")
        canonical = self.paths.get(path)
        if canonical is None:
            raise InvalidArchive(f"{where} names {raw!r}, which is not in the archive")
        return canonical

    def data(self, path: str, where: str) -> bytes:
        data = self.metadata.get(path)
        if data is None:
            raise InvalidArchive(
                f"{where} ({path}) is too large or not JSON, so it cannot be read as metadata"
            )
        return data

    def json(self, path: str, where: str) -> Any:
        return _load(self.data(path, where), where)

    def expect(
        self, path: str, check: Literal["digest", "size", "diff_id"], value: str | int, ctx: str
    ) -> None:
        previous = self.expectations.get((path, check))
        if previous is not None and previous.expected != value:
            raise InvalidArchive(
                f"{path} is declared with two different {check}s: {previous.expected} "
                f"({previous.context}) and {value} ({ctx})"
            )
        self.expectations.setdefault((path, check), Expectation(path, check, value, ctx))

    def finish(self, description: ArchiveDescription) -> ArchiveDescription:
        if not description.images:
            raise InvalidArchive("the archive contains no images")
        for image in description.images:
            name = image.repo_tags[0] if image.repo_tags else "untagged image"
            for plat in image.platforms:
                where = f"{name} ({plat.platform})" if plat.platform else name
                for i, layer in enumerate(plat.layers, 1):
                    ctx = f"layer {i}/{len(plat.layers)} of {where}"
                    if layer.digest is not None:
                        self.expect(layer.path, "digest", layer.digest, ctx)
                    if layer.size is not None:
                        self.expect(layer.path, "size", layer.size, ctx)
                    if layer.diff_id is not None:
                        self.expect(layer.path, "diff_id", layer.diff_id, ctx)
                    named = _path_digest(layer.path)
                    if named is not None:
                        self.expect(layer.path, "digest", named, f"{ctx} (content-addressed name)")
        return ArchiveDescription(description.format, description.images, tuple(self.expectations.values()))


def _load(data: bytes, where: str) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidArchive(f"{where} is not valid JSON: {exc}") from None
    except RecursionError:
        raise InvalidArchive(f"{where} is nested too deeply") from None


def _path_digest(path: str) -> Digest | None:
    """The digest a content-addressed archive path promises for its bytes."""
    match = _BLOB_PATH.fullmatch(path)
    if match is not None:
        try:
            return Digest.parse(f"{match[1]}:{match[2]}")
        except InvalidDigest:
            return None
    match = _CONFIG_ID_PATH.fullmatch(path)
    return Digest(f"sha256:{match[1]}") if match is not None else None


def _verify_buffered(path: str, data: bytes, digest: Digest | None, size: int | None, where: str) -> None:
    for expected in (digest, _path_digest(path)):
        if expected is not None and Digest.of(data, expected.algorithm) != expected:
            raise DigestMismatch(
                f"{where} ({path}): content is {Digest.of(data, expected.algorithm)}, "
                f"but the archive declares {expected}"
            )
    if size is not None and size != len(data):
        raise DigestMismatch(
            f"{where} ({path}): content is {len(data)} bytes, but the archive declares {size}"
        )


@dataclass(frozen=True)
class _Config:
    platform: Platform | None
    diff_ids: tuple[Digest, ...] | None


def _parse_config(data: bytes, where: str, required: bool) -> _Config:
    doc = _load(data, where)
    if not isinstance(doc, dict):
        raise InvalidArchive(f"{where} must be a JSON object")
    os_name, arch = doc.get("os"), doc.get("architecture")
    platform = None
    if isinstance(os_name, str) and isinstance(arch, str) and os_name and arch:
        variant, os_version = doc.get("variant"), doc.get("os.version")
        platform = Platform(
            os_name,
            arch,
            variant if isinstance(variant, str) and variant else None,
            os_version if isinstance(os_version, str) and os_version else None,
        )
    rootfs = doc.get("rootfs")
    raw = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if raw is None and not required:
        return _Config(platform, None)
    if not isinstance(raw, list) or len(raw) > MAX_DESCRIPTORS:
        raise InvalidArchive(f"{where} has no valid rootfs.diff_ids list")
    return _Config(platform, tuple(_digest(d, f"{where} rootfs.diff_ids[{i}]") for i, d in enumerate(raw)))


def _digest(raw: Any, where: str) -> Digest:
    if not isinstance(raw, str):
        raise InvalidArchive(f"{where} must be a digest string")
    try:
        return Digest.parse(raw)
    except InvalidDigest as exc:
        raise InvalidArchive(f"{where}: {exc.message}") from None


# --- docker save -------------------------------------------------------------------------


def _docker_save(ctx: _Context) -> ArchiveDescription:
    items = ctx.json(ctx.resolve(MANIFEST_JSON, "the archive"), MANIFEST_JSON)
    if not isinstance(items, list) or len(items) > MAX_DESCRIPTORS:
        raise InvalidArchive("manifest.json must be a list of images")
    legacy_tags = _repositories(ctx)
    images: list[ArchiveImage] = []
    blobs_layout = False
    for i, item in enumerate(items):
        where = f"manifest.json[{i}]"
        if not isinstance(item, dict):
            raise InvalidArchive(f"{where} must be an object")
        config_path = ctx.resolve(item.get("Config"), f"{where}.Config")
        config_bytes = ctx.data(config_path, f"{where}.Config")
        _verify_buffered(config_path, config_bytes, None, None, f"{where}.Config")
        config = _parse_config(config_bytes, f"the config of {where}", required=True)
        assert config.diff_ids is not None
        raw_layers = item.get("Layers")
        if not isinstance(raw_layers, list):
            raise InvalidArchive(f"{where}.Layers must be a list of paths")
        if len(raw_layers) != len(config.diff_ids):
            raise InvalidArchive(
                f"{where} lists {len(raw_layers)} layers but its config has {len(config.diff_ids)} diff_ids"
            )
        layers = []
        for j, raw in enumerate(raw_layers):
            path = ctx.resolve(raw, f"{where}.Layers[{j}]")
            blobs_layout = blobs_layout or path.startswith("blobs/")
            layers.append(LayerRef(path, media.OCI_LAYER, None, None, config.diff_ids[j]))
        tags = _strings(item.get("RepoTags"), f"{where}.RepoTags")
        if not tags and layers:
            tags = legacy_tags.get(
                raw_layers[-1].rsplit("/", 1)[0] if isinstance(raw_layers[-1], str) else "", ()
            )
        config_ref = BlobRef(config_path, media.DOCKER_CONFIG, Digest.of(config_bytes), len(config_bytes))
        plat = PlatformImage(config.platform, config_ref, tuple(layers), None)
        images.append(ArchiveImage(tags, (plat,)))
    fmt = ArchiveFormat.DOCKER_SAVE_BLOBS if blobs_layout else ArchiveFormat.DOCKER_SAVE
    return ArchiveDescription(fmt, tuple(images))


def _repositories(ctx: _Context) -> dict[str, tuple[str, ...]]:
    """Top layer v1 id -> "repo:tag"s, from the legacy ``repositories`` file (best effort)."""
    path = ctx.paths.get(REPOSITORIES)
    data = ctx.metadata.get(path) if path else None
    if data is None:
        return {}
    try:
        doc = _load(data, REPOSITORIES)
    except InvalidArchive:
        return {}
    tags: dict[str, list[str]] = {}
    if isinstance(doc, dict):
        for repo, entries in doc.items():
            if isinstance(repo, str) and isinstance(entries, dict):
                for tag, layer_id in entries.items():
                    if isinstance(tag, str) and isinstance(layer_id, str):
                        tags.setdefault(layer_id, []).append(f"{repo}:{tag}")
    return {k: tuple(v) for k, v in tags.items()}


def _strings(raw: Any, where: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(s, str) for s in raw):
        raise InvalidArchive(f"{where} must be a list of strings")
    return tuple(raw)


# --- OCI image layout --------------------------------------------------------------------


def _oci_layout(ctx: _Context) -> ArchiveDescription:
    layout = ctx.json(ctx.resolve(OCI_LAYOUT, "the archive"), OCI_LAYOUT)
    version = layout.get("imageLayoutVersion") if isinstance(layout, dict) else None
    if version != media.OCI_LAYOUT_VERSION:
        raise InvalidArchive(
            f"unsupported OCI layout version {version!r}; expected {media.OCI_LAYOUT_VERSION}"
        )
    index = _manifest(ctx.data(ctx.resolve(INDEX_JSON, "the archive"), INDEX_JSON), mt.OCI_INDEX, INDEX_JSON)
    if not index.is_index:
        raise InvalidArchive("index.json must be an image index")
    images: dict[Digest, ArchiveImage] = {}
    for i, desc in enumerate(index.manifests):
        where = f"index.json manifests[{i}]"
        tags = _oci_tags(desc)
        if desc.media_type in mt.INDEXES:
            ref = _buffered_blob(ctx, desc, where)
            image = ArchiveImage(tags, tuple(_walk_index(ctx, ref, where, 1)), ref)
        elif desc.media_type in mt.IMAGE_MANIFESTS:
            image = ArchiveImage(tags, (_platform_image(ctx, desc, where),))
        else:
            continue  # artifacts that are not images are not imported
        known = images.get(desc.digest)
        if known is not None:  # one manifest listed once per tag
            image = ArchiveImage(tuple(dict.fromkeys(known.repo_tags + tags)), known.platforms, known.index)
        images[desc.digest] = image
    return ArchiveDescription(ArchiveFormat.OCI_LAYOUT, tuple(images.values()))


def _walk_index(ctx: _Context, ref: BlobRef, where: str, depth: int) -> list[PlatformImage]:
    if depth > MAX_INDEX_DEPTH:
        raise InvalidArchive(f"{where}: image indexes are nested more than {MAX_INDEX_DEPTH} deep")
    index = _manifest(ctx.data(ref.path, where), ref.media_type, where)
    if not index.is_index:
        raise InvalidArchive(f"{where} ({ref.path}) is not an image index")
    found: list[PlatformImage] = []
    for i, desc in enumerate(index.manifests):
        child = f"{where} -> manifests[{i}]"
        if desc.media_type in mt.INDEXES:
            found += _walk_index(ctx, _buffered_blob(ctx, desc, child), child, depth + 1)
        elif desc.media_type in mt.IMAGE_MANIFESTS:
            found.append(_platform_image(ctx, desc, child))
    if not found:
        raise InvalidArchive(f"{where} ({ref.path}) lists no image manifests")
    return found


def _platform_image(ctx: _Context, desc: Descriptor, where: str) -> PlatformImage:
    ref = _buffered_blob(ctx, desc, where)
    manifest = _manifest(ctx.data(ref.path, where), desc.media_type, where)
    if manifest.is_index or manifest.config is None:
        raise InvalidArchive(f"{where} ({ref.path}) is not an image manifest")
    annotations = desc.annotations or {}
    platform = _descriptor_platform(desc)
    attestation = annotations.get(media.REFERENCE_TYPE) == "attestation-manifest" or (
        platform is not None and platform.os == "unknown"
    )
    config_ref = _buffered_blob(ctx, manifest.config, f"the config of {where}")
    diff_ids: tuple[Digest, ...] | None = None
    if manifest.config.media_type in media.IMAGE_CONFIGS:
        config = _parse_config(ctx.data(config_ref.path, where), f"the config of {where}", not attestation)
        platform = platform or config.platform
        diff_ids = config.diff_ids
        if diff_ids is not None and len(diff_ids) != len(manifest.layers):
            if not attestation:
                raise InvalidArchive(
                    f"{where} ({ref.path}) lists {len(manifest.layers)} layers "
                    f"but its config has {len(diff_ids)} diff_ids"
                )
            diff_ids = None
    layers = []
    for j, layer in enumerate(manifest.layers):
        if layer.media_type in mt.NON_DISTRIBUTABLE:
            raise InvalidArchive(f"{where} has a foreign (non-distributable) layer; these are not supported")
        if layer.digest.algorithm != "sha256":
            raise InvalidArchive(f"{where} layer {j}: only sha256 layer digests are supported")
        path = ctx.resolve(f"blobs/{layer.digest.algorithm}/{layer.digest.hex}", f"{where} layer {j}")
        diff_id = diff_ids[j] if diff_ids is not None else None
        layers.append(LayerRef(path, layer.media_type, layer.digest, layer.size, diff_id))
    return PlatformImage(platform, config_ref, tuple(layers), ref, attestation)


def _buffered_blob(ctx: _Context, desc: Descriptor, where: str) -> BlobRef:
    """A manifest, index or config: in memory, so verified right away."""
    path = ctx.resolve(f"blobs/{desc.digest.algorithm}/{desc.digest.hex}", where)
    _verify_buffered(path, ctx.data(path, where), desc.digest, desc.size, where)
    return BlobRef(path, desc.media_type, desc.digest, desc.size)


def _manifest(data: bytes, media_type: str, where: str) -> ParsedManifest:
    try:
        return parse_manifest(data, media_type)
    except InvalidManifest as exc:
        raise InvalidArchive(f"{where}: {exc.message}") from None


def _descriptor_platform(desc: Descriptor) -> Platform | None:
    raw = desc.platform or {}
    os_name, arch = raw.get("os"), raw.get("architecture")
    if not (isinstance(os_name, str) and isinstance(arch, str) and os_name and arch):
        return None
    variant, os_version = raw.get("variant"), raw.get("os.version")
    return Platform(
        os_name,
        arch,
        variant if isinstance(variant, str) and variant else None,
        os_version if isinstance(os_version, str) and os_version else None,
    )


def _oci_tags(desc: Descriptor) -> tuple[str, ...]:
    annotations = desc.annotations or {}
    for key in (media.CONTAINERD_IMAGE_NAME, media.REF_NAME):
        value = annotations.get(key)
        if value:
            return (value,)
    return ()


def _with_docker_tags(description: ArchiveDescription, ctx: _Context) -> ArchiveDescription:
    """Prefer manifest.json's familiar RepoTags for single-platform images with the same config."""
    try:
        docker = _docker_save(_Context(ctx.metadata, ctx.paths))
    except ArchiveError:
        return description
    by_config = {img.platforms[0].config.path: img.repo_tags for img in docker.images if img.repo_tags}
    images = []
    for image in description.images:
        tags = by_config.get(image.platforms[0].config.path) if len(image.platforms) == 1 else None
        images.append(ArchiveImage(tags, image.platforms, image.index) if tags else image)
    return ArchiveDescription(description.format, tuple(images))


__all__ = [
    "METADATA_NAMES",
    "ArchiveDescription",
    "ArchiveFormat",
    "ArchiveImage",
    "BlobRef",
    "Expectation",
    "LayerRef",
    "Platform",
    "PlatformImage",
    "describe_archive",
]
