"""Building catalog state for service tests: the people of one workspace, pushed images, run
inspections, and a :class:`~dockyard.upstream.verifier.Resolver` that answers from a table
instead of another registry."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select

from dockyard.app.services import Services
from dockyard.auth.policy import ANONYMOUS, Subject
from dockyard.catalog.inspections import JOB_KIND
from dockyard.catalog.tables import image_events, images
from dockyard.catalog.verify import Verification
from dockyard.jobs.worker import Worker
from dockyard.upstream.verifier import Resolved, Unresolved
from tests.support.catalog import gzip_layer, image_config
from tests.support.oci import OCI_INDEX, Blob, Manifest, encode, oci_manifest
from tests.unit.registry.factories import push_manifest

WORKSPACE = "lab"
AMD64 = "sha256:" + "a" * 64
ARM64 = "sha256:" + "b" * 64
INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@dataclass(frozen=True)
class People:
    """Everyone a catalog test talks about: the roles of workspace ``lab`` (private by default),
    a signed-in user with no role there, an admin, and the anonymous caller."""

    owner: Subject
    maintainer: Subject
    developer: Subject
    reader: Subject
    outsider: Subject
    admin: Subject
    anonymous: Subject = ANONYMOUS


async def new_user(services: Services, name: str, *, admin: bool = False) -> Subject:
    """A user with no password (none is needed below the HTTP edge) and their personal workspace."""
    user = await services.identity.accounts.create_user(None, name, None, is_admin=admin)
    return Subject("user", user.id, user.username, is_admin=user.is_admin)


async def people_of_lab(services: Services) -> People:
    owner = await new_user(services, "olga")
    await services.identity.workspaces.create(owner, WORKSPACE)
    members = {}
    for name, role in (("mia", "maintainer"), ("dev", "developer"), ("rita", "reader")):
        members[role] = await new_user(services, name)
        await services.identity.workspaces.set_member(owner, WORKSPACE, name, role)
    return People(
        owner=owner,
        maintainer=members["maintainer"],
        developer=members["developer"],
        reader=members["reader"],
        outsider=await new_user(services, "otto"),
        admin=await new_user(services, "ada", admin=True),
    )


def image(architecture: str = "amd64", *layers: Blob) -> Manifest:
    """An image manifest for ``linux/<architecture>`` (a fresh layer unless ``layers`` are given)."""
    return oci_manifest(image_config(architecture), list(layers) or [gzip_layer(f"{architecture} layer")])


def index_of(*architectures: str) -> Manifest:
    """A multi-platform index of one image per ``linux/<architecture>``, each named in the index."""
    children = [image(architecture) for architecture in architectures]
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            child.descriptor(platform={"architecture": architecture, "os": "linux"})
            for child, architecture in zip(children, architectures, strict=True)
        ],
    }
    return Manifest(encode(document), OCI_INDEX, children=tuple(children), document=document)


async def push(services: Services, repository: str, tag: str, manifest: Manifest | None = None) -> Manifest:
    """A tag push through the registry: the catalog's admission decides, its sync records a
    pending version."""
    manifest = manifest or image()
    await push_manifest(services, repository, manifest, tag)
    return manifest


async def inspect_all(services: Services) -> int:
    """Run the queued inspections to their end (pending versions become available or failed)."""
    worker = Worker(services.jobs, {JOB_KIND: services.inspections.handle})
    count = 0
    while await worker.run_once():
        count += 1
    return count


async def event_kinds(services: Services, name: str) -> list[tuple[str, str | None]]:
    """(kind, version) of an image's history, oldest first, read from the table."""
    async with services.db.read() as conn:
        rows = await conn.execute(
            select(image_events.c.kind, image_events.c.version)
            .join(images, images.c.id == image_events.c.image_id)
            .where(images.c.name == name)
            .order_by(image_events.c.id)
        )
        return [(row[0], row[1]) for row in rows]


@dataclass
class FakeResolver:
    """Answers a reference from ``answers`` (else ``not_found``) and remembers every question."""

    answers: dict[str, Resolved | Unresolved] = field(default_factory=dict)
    calls: list[tuple[str, int]] = field(default_factory=list)

    async def __call__(self, reference: str, workspace_id: int) -> Resolved | Unresolved:
        self.calls.append((reference, workspace_id))
        return self.answers.get(reference, Unresolved("not_found", f"{reference} is not there"))


def verification(services: Services, resolver: FakeResolver) -> Verification:
    """The catalog's verification as the application wires it, with ``resolver`` for the upstream."""
    return Verification(services.catalog, resolver, services.verification.credentials)


def resolved(
    digest: str = AMD64, platforms: tuple[str, ...] = ("linux/amd64",), size: int = 1234
) -> Resolved:
    return Resolved(digest, INDEX if len(platforms) > 1 else MANIFEST, list(platforms), size)
