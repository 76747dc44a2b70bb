"""Create an image version from an imported archive.

The user picks one image of the archive (or none, when it holds one) and names the version:
``<workspace>/<name>:<version>``, with the catalog's type, visibility (of a new image), regions
and cluster compatibility. Name and version default to the image's first tag (``repo/app:1.0`` ->
``app``, ``1.0``). Creating it is a push, with the pusher's rights: the image's blobs are
adopted into the repository (moved from the session's staging area only when not stored
yet), the platform manifests are put by digest and the top manifest (or index) by the
version's tag, so the catalog creates the version ``pending`` and inspects it to
``available`` as for any push. An existing version is refused unless ``replace`` is set.
The workspace's quota is checked first, counting only blobs it does not hold already, and
each blob is charged as it is linked (:mod:`dockyard.registry.quotas`): an image that does not
fit leaves no manifest, tag or catalog version.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select

from dockyard.auth.base import Principal
from dockyard.auth.facts import allowed
from dockyard.auth.guard import find_workspace, require_user
from dockyard.auth.policy import PUSH, Subject
from dockyard.auth.tables import repositories
from dockyard.catalog.service import Catalog, VersionSettings, check_version
from dockyard.catalog.tables import image_versions, images
from dockyard.catalog.views import VersionView
from dockyard.db.engine import Database
from dockyard.errors import Conflict, Forbidden, Invalid
from dockyard.oci.digest import Digest
from dockyard.oci.errors import InvalidValue
from dockyard.oci.names import validate_hosted_name, validate_tag
from dockyard.registry.blobs import BlobService
from dockyard.registry.errors import RegistryRefusal
from dockyard.registry.events import Actor
from dockyard.registry.manifests import ManifestService
from dockyard.registry.tables import tags
from dockyard.transfer.imports.results import ImportedImage
from dockyard.transfer.imports.service import ArchiveUploads
from dockyard.transfer.imports.sessions import DONE
from dockyard.transfer.imports.sink import session_folder, staged_path


@dataclass(frozen=True)
class VersionRequest:
    image: int | str | None = None  # index in the archive, or one of its repo tags
    workspace: str | None = None  # default: the upload's workspace
    name: str | None = None  # default: from the image's tag
    version: str | None = None  # default: from the image's tag
    settings: VersionSettings = field(default_factory=VersionSettings)
    replace: bool = False


class ArchiveVersions:
    def __init__(
        self,
        uploads: ArchiveUploads,
        db: Database,
        blobs: BlobService,
        manifests: ManifestService,
        catalog: Catalog,
    ) -> None:
        self.uploads = uploads
        self.db = db
        self.blobs = blobs
        self.manifests = manifests
        self.catalog = catalog

    async def create(self, actor: Subject, archive_id: str, request: VersionRequest) -> VersionView:
        require_user(actor)
        request.settings.check()
        async with self.uploads.exclusive(actor, archive_id) as session:
            if session.state != DONE:
                raise Conflict(
                    f"the archive is {session.state}; versions are created once it has been imported"
                )
            image = _choose(self.uploads.imported(session), request.image)
            workspace = request.workspace or session.workspace
            repository, version = _names(workspace, image, request.name, request.version)
            decision = await allowed(self.db, actor, repository)
            if PUSH not in decision.actions:
                raise Forbidden(f"you may not push to {repository!r}; creating a version there needs that")
            if not request.replace and await self._exists(repository, version):
                raise Conflict(
                    f"{repository}:{version} already exists; choose another version, "
                    "or ask to replace it (replace: true)"
                )
            async with self.db.read() as conn:
                workspace_id = (await find_workspace(conn, workspace)).id
            await self.uploads.check_quota(workspace_id, image.blobs)
            # The new image's visibility is the uploader's to choose, from its first blob on;
            # an existing image's other visibility is refused before anything is pushed.
            await self.catalog.prepare_upload(repository, request.settings.wanted_visibility())
            await self._push(actor, session_folder(archive_id), repository, version, image)
            await self.uploads.touch(archive_id)
        if request.settings != VersionSettings():
            return await self.catalog.update_version(actor, repository, version, request.settings)
        return await self.catalog.version(actor, repository, version)

    async def _exists(self, repository: str, version: str) -> bool:
        async with self.db.read() as conn:
            in_catalog = (
                await conn.execute(
                    select(image_versions.c.id)
                    .join(images, images.c.id == image_versions.c.image_id)
                    .where(images.c.name == repository, image_versions.c.version == version)
                )
            ).first()
            tagged = (
                await conn.execute(
                    select(tags.c.name)
                    .join(repositories, repositories.c.id == tags.c.repository_id)
                    .where(repositories.c.name == repository, tags.c.name == version)
                )
            ).first()
        return in_catalog is not None or tagged is not None

    async def _push(
        self, actor: Subject, folder: str, repository: str, version: str, image: ImportedImage
    ) -> None:
        # The catalog and the audit log name the pusher: the user creating the version.
        pusher = Actor(Principal(actor.name, actor.is_admin, "user", actor.id))
        for digest, size in image.blobs.items():
            blob = Digest.parse(digest)
            try:
                await self.blobs.adopt(repository, blob, size, staged_path(folder, blob))
            except RegistryRefusal:
                raise Conflict(
                    f"blob {digest} of this archive is no longer stored (it was removed since "
                    "the import); upload the archive again"
                ) from None
        if image.index is not None:
            for child in image.manifests:
                await self.manifests.put(
                    repository, str(child.digest), child.data, child.media_type, actor=pusher
                )
        top = image.top
        await self.manifests.put(repository, version, top.data, top.media_type, actor=pusher)


def _choose(found: list[ImportedImage], wanted: int | str | None) -> ImportedImage:
    listing = "; ".join(f"{i}: {', '.join(image.repo_tags) or 'untagged'}" for i, image in enumerate(found))
    if wanted is None:
        if len(found) == 1:
            return found[0]
        raise Invalid(f"the archive holds {len(found)} images; choose one by index or tag ({listing})")
    if isinstance(wanted, int):
        if 0 <= wanted < len(found):
            return found[wanted]
        raise Invalid(f"the archive has no image {wanted} ({listing})")
    matches = [image for image in found if wanted in image.repo_tags]
    if len(matches) != 1:
        raise Invalid(f"no image of the archive is tagged {wanted!r} ({listing})")
    return matches[0]


def _names(workspace: str, image: ImportedImage, name: str | None, version: str | None) -> tuple[str, str]:
    """The repository (``workspace/name``) and the version, defaulting from the image's tag."""
    tag_name, tag_version = _from_tag(image.repo_tags[0]) if image.repo_tags else (None, None)
    name = name or tag_name
    version = version or tag_version
    if not name or not version:
        raise Invalid("the image has no tag to take a name and version from: give both")
    if name.startswith(workspace + "/"):
        name = name[len(workspace) + 1 :]
    repository = f"{workspace}/{name}"
    try:
        validate_hosted_name(repository)
        validate_tag(version)
    except InvalidValue as exc:
        raise Invalid(exc.message) from None
    check_version(version)
    return repository, version


def _from_tag(repo_tag: str) -> tuple[str, str]:
    """``registry:5000/team/app:1.0`` -> (``app``, ``1.0``); no tag: ``latest``."""
    path, _, digest = repo_tag.partition("@")
    last = path.rsplit("/", 1)[-1]
    name, sep, tag = last.partition(":")
    if not sep:
        tag = "latest" if not digest else digest.split(":")[-1][:12]
    return name.lower(), tag
