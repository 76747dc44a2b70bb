"""Fixtures for the /v2 fuzz suite: one client and one seeded repository per registry.

They are module-scoped, not function-scoped, because Hypothesis runs many examples inside
one test call: state that every example may read (the repository, its blobs, a subject
manifest) is set up once per database, and each example makes its own names for what it writes.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.oci import Blob, Manifest, OciClient, image_config, oci_manifest, random_blob, unique_repo
from tests.support.servers import RunningRegistry


class Seeded:
    """A repository with a tagged image, whose blobs new manifests may reference.

    A plain class, not a dataclass: Hypothesis prints the arguments of every failing example,
    and would print a dataclass field by field (kilobytes of blob bytes) instead of this repr.
    """

    def __init__(self, repo: str, config: Blob, layer: Blob, image: Manifest, tags: tuple[str, ...]) -> None:
        self.repo = repo
        self.config = config
        self.layer = layer
        self.image = image
        self.tags = tags

    def __repr__(self) -> str:
        return f"Seeded(repo={self.repo!r}, image={self.image.digest})"


@pytest.fixture(scope="module")
def client(registry: RunningRegistry) -> Iterator[OciClient]:
    with OciClient.connect(registry.url) as oci:
        yield oci


@pytest.fixture(scope="module")
def seeded(client: OciClient) -> Seeded:
    repo = unique_repo("fuzz")
    config, layer = image_config(), random_blob(4096)
    image = oci_manifest(config, [layer])
    tags = ("alpha", "Bravo", "bravo", "bravo.1", "charlie", "v1")
    client.push(repo, image)
    for tag in tags:
        client.push_manifest(repo, tag, image)
    return Seeded(repo, config, layer, image, tags)
