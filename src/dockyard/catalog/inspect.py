"""What an image is made of: platforms and sizes, read from its manifests and config.

Reads go through :class:`ContentSource`, so the same code inspects images stored here
(the registry's services) and, in tests, anything else that can hand out bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Protocol

from dockyard.oci.manifest import ParsedManifest, parse_manifest

MAX_CONFIG_BYTES = 1024 * 1024
IMAGE_CONFIGS = frozenset(
    {"application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"}
)


class ContentSource(Protocol):
    async def manifest(self, repository: str, reference: str) -> tuple[str, bytes]:
        """(digest, bytes) of a manifest by tag or digest."""
        ...

    async def config(self, repository: str, digest: str, limit: int) -> bytes: ...


@dataclass
class ImageFacts:
    digest: str
    media_type: str
    is_index: bool
    is_image: bool  # False for artifacts (signatures, SBOMs, oras files)
    platforms: list[str] = field(default_factory=list)
    layers: dict[str, tuple[int, str]] = field(default_factory=dict)  # digest -> (size, media type)
    other_blobs: dict[str, int] = field(default_factory=dict)  # configs
    # platform -> its layers in order, as diff ids where the config lists them (catalog.chains)
    layer_ids: dict[str, list[str]] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)  # the configs' (search indexes them)
    annotations: dict[str, str] = field(default_factory=dict)  # the manifests'
    history: list[str] = field(default_factory=list)  # the configs' history created_by lines

    @property
    def compressed_size(self) -> int:
        """Bytes stored for this version: each distinct blob once."""
        return sum(size for size, _ in self.layers.values()) + sum(self.other_blobs.values())


def platform_name(platform: dict[str, object]) -> str:
    parts = [str(platform.get("os", "")), str(platform.get("architecture", ""))]
    if platform.get("variant"):
        parts.append(str(platform["variant"]))
    return "/".join(parts)


async def inspect_image(source: ContentSource, repository: str, reference: str) -> ImageFacts:
    digest, data = await source.manifest(repository, reference)
    return await inspect_manifest(source, repository, digest, parse_manifest(data, None))


async def inspect_manifest(
    source: ContentSource, repository: str, digest: str, parsed: ParsedManifest
) -> ImageFacts:
    """The facts of a manifest already in hand (e.g. one being pushed); what it names is read
    from ``source``."""
    facts = ImageFacts(digest, parsed.media_type, parsed.is_index, is_image=False)
    facts.annotations.update(parsed.annotations)
    if parsed.is_index:
        for child in parsed.manifests:
            platform = child.platform or {}
            if platform.get("os") == "unknown":  # attestation manifests (buildkit)
                continue
            _, child_data = await source.manifest(repository, str(child.digest))
            child_parsed = parse_manifest(child_data, None)
            name = platform_name(platform) if platform else None
            found = await _add_image(source, repository, child_parsed, facts)
            if name or found:
                facts.platforms.append(name or found or "")
    else:
        found = await _add_image(source, repository, parsed, facts)
        if found:
            facts.platforms.append(found)
    facts.platforms = sorted(set(p for p in facts.platforms if p))
    return facts


async def _add_image(
    source: ContentSource, repository: str, parsed: ParsedManifest, facts: ImageFacts
) -> str | None:
    """Count an image manifest's blobs; its platform from the config, if it is an image."""
    if parsed.config is None:
        return None
    for layer in parsed.layers:
        facts.layers[str(layer.digest)] = (layer.size, layer.media_type)
    facts.other_blobs[str(parsed.config.digest)] = parsed.config.size
    if parsed.config.media_type not in IMAGE_CONFIGS:
        return None
    facts.is_image = True
    try:
        config = json.loads(await source.config(repository, str(parsed.config.digest), MAX_CONFIG_BYTES))
    except ValueError:
        return None
    if not isinstance(config, dict):
        return None
    _read_text(config, facts)
    if not config.get("architecture"):
        return None
    facts.layer_ids[platform_name(config)] = layer_ids(config, [str(layer.digest) for layer in parsed.layers])
    return platform_name(config)


def layer_ids(config: dict[str, object], digests: list[str]) -> list[str]:
    """The image's layers in order: the config's diff ids (the same however a layer is
    compressed), else the layer digests."""
    rootfs = config.get("rootfs")
    found = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if isinstance(found, list) and len(found) == len(digests) and all(isinstance(d, str) for d in found):
        return [str(d) for d in found]
    return digests


def _read_text(config: dict[str, object], facts: ImageFacts) -> None:
    """The labels and history lines of an image config, for search (first platform's wins)."""
    inner = config.get("config")
    labels = inner.get("Labels") if isinstance(inner, dict) else None
    if isinstance(labels, dict):
        for key, value in labels.items():
            facts.labels.setdefault(str(key), str(value))
    history = config.get("history")
    if isinstance(history, list) and not facts.history:
        facts.history = [str(h["created_by"]) for h in history if isinstance(h, dict) and h.get("created_by")]


def has_amd64(platforms: list[str]) -> bool:
    return any(p == "linux/amd64" or p.startswith("linux/amd64/") for p in platforms)


AMD64_HELP = (
    "this image has no linux/amd64 platform, which the compute nodes run; build a multi-platform image, "
    "e.g. 'docker buildx build --platform linux/amd64,linux/arm64 --push -t NAME:VERSION .' "
    "or 'podman build --platform linux/amd64,linux/arm64 --manifest NAME:VERSION .'"
)
