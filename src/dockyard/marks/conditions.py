"""The marks as SQL conditions, so the image list filters on them in its one query
(:func:`image_has`) and a page's marks are read in one query (:mod:`.views`).

Conditions on a version are correlated to ``image_versions`` and its image's ``images`` row:

- ``built``: a succeeded build run of the definition named like the image produced the digest;
- ``dockerfile``: built here and the viewer may read the workspace's build definitions (any
  role in it; admins), or a provenance attestation is attached (cosign ``.att`` tag, or a
  referrer whose artifactType says in-toto, SLSA or provenance);
- ``signed``: its stored signature check (:mod:`.signing`) is ``verified``;
- ``sbom``: an SPDX or CycloneDX referrer, or cosign's ``.sbom`` tag.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from sqlalchemy import ColumnElement, String, and_, false, func, literal, or_, select, true

from dockyard.auth.tables import repositories
from dockyard.builds.tables import build_definitions, build_runs
from dockyard.catalog.tables import image_versions, images
from dockyard.catalog.visibility import Viewer
from dockyard.marks.tables import signature_checks, workspace_marks
from dockyard.registry.tables import manifests, tags

WORKSPACE_MARKS = ("official", "verified")
VERSION_MARKS = ("dockerfile", "built", "signed", "sbom")
MARKS = (*WORKSPACE_MARKS, *VERSION_MARKS)
MarkName = Literal["official", "verified", "dockerfile", "built", "signed", "sbom"]  # MARKS
USER = "user"  # a workspace nobody designated
_SBOM_WORDS = ("spdx", "cyclonedx")
_PROVENANCE_WORDS = ("in-toto", "intoto", "provenance", "slsa", "attestation")


def workspace_is(mark: str) -> ColumnElement[bool]:
    """A condition on ``images``: its workspace carries ``mark`` (official or verified)."""
    return (
        select(workspace_marks.c.workspace_id)
        .where(workspace_marks.c.workspace_id == images.c.workspace_id, workspace_marks.c.mark == mark)
        .exists()
    )


def _repository_id() -> ColumnElement[int]:
    # Correlated to the outer query's image through the subquery it sits in.
    return (
        select(repositories.c.id)
        .where(repositories.c.name == images.c.name)
        .correlate(images)
        .scalar_subquery()
    )


def _digest_tag(suffix: str) -> ColumnElement[str]:
    """cosign's tag for the version's digest: ``sha256-<hex>.<suffix>``."""
    return literal("sha256-", String).concat(func.substr(image_versions.c.digest, 8)).concat("." + suffix)


def _attached(suffix: str, words: tuple[str, ...]) -> ColumnElement[bool]:
    repository = _repository_id()
    artifact = func.lower(func.coalesce(manifests.c.artifact_type, ""))
    referrer = (
        select(manifests.c.digest)
        .where(
            manifests.c.repository_id == repository,
            manifests.c.subject_digest == image_versions.c.digest,
            or_(*(artifact.contains(word) for word in words)),
        )
        .exists()
    )
    tagged = (
        select(tags.c.name)
        .where(tags.c.repository_id == repository, tags.c.name == _digest_tag(suffix))
        .exists()
    )
    return and_(image_versions.c.digest.is_not(None), or_(referrer, tagged))


def build_run_of() -> ColumnElement[int]:
    """The latest succeeded build run that produced the version's digest (NULL: none)."""
    return (
        select(func.max(build_runs.c.id))
        .join(build_definitions, build_definitions.c.id == build_runs.c.definition_id)
        .where(
            build_definitions.c.name == images.c.name,
            build_runs.c.status == "succeeded",
            build_runs.c.digest == image_versions.c.digest,
        )
        .correlate(images, image_versions)
        .scalar_subquery()
    )


def built() -> ColumnElement[bool]:
    return and_(image_versions.c.digest.is_not(None), build_run_of().is_not(None))


def reads_definitions(viewer: Viewer) -> ColumnElement[bool]:
    """A condition on ``images``: the viewer may read its workspace's build definitions."""
    if viewer.subject.is_admin:
        return true()
    if viewer.subject.is_anonymous or not viewer.pulling:
        return false()
    return images.c.workspace_id.in_(viewer.pulling)


def version_has(mark: str, viewer: Viewer) -> ColumnElement[bool]:
    """A condition on ``image_versions`` (with its ``images`` row) for a version mark."""
    if mark == "built":
        return built()
    if mark == "dockerfile":
        return or_(and_(built(), reads_definitions(viewer)), _attached("att", _PROVENANCE_WORDS))
    if mark == "signed":
        return (
            select(signature_checks.c.version_id)
            .where(
                signature_checks.c.version_id == image_versions.c.id,
                signature_checks.c.digest == image_versions.c.digest,
                signature_checks.c.state == "verified",
            )
            .exists()
        )
    if mark == "sbom":
        return _attached("sbom", _SBOM_WORDS)
    raise ValueError(mark)


def image_has(mark: str) -> Callable[[Viewer], ColumnElement[bool]]:
    """The image list's ``mark`` filter: a condition on ``images`` for the viewer."""

    def condition(viewer: Viewer) -> ColumnElement[bool]:
        if mark in WORKSPACE_MARKS:
            return workspace_is(mark)
        return (
            select(image_versions.c.id)
            .where(image_versions.c.image_id == images.c.id, version_has(mark, viewer))
            .exists()
        )

    return condition


def version_is(mark: str) -> Callable[[Viewer], ColumnElement[bool]]:
    """The version list's ``mark`` filter: a condition on each version row (with its image)."""

    def condition(viewer: Viewer) -> ColumnElement[bool]:
        return workspace_is(mark) if mark in WORKSPACE_MARKS else version_has(mark, viewer)

    return condition
