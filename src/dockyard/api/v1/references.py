"""Read an image reference the way the catalog will: what the web UI's *Create > External
image* form shows while the user types (name and version to fill in, warnings, the fix for a
pasted URL or ``docker pull`` command). Pure parsing: nothing is stored or fetched."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Query

from dockyard.api.deps import Caller
from dockyard.api.v1.inputs import Text
from dockyard.oci.reference import ReferenceError, parse_reference, warnings

router = APIRouter(tags=["catalog"])


@dataclass(frozen=True)
class ReferenceWarningView:
    code: str
    message: str


@dataclass(frozen=True)
class ParsedReference:
    canonical: str
    registry: str
    repository: str
    tag: str | None
    digest: str | None
    provider: str
    suggested_name: str
    suggested_version: str
    warnings: list[ReferenceWarningView]


@dataclass(frozen=True)
class ReferenceCheck:
    """``ok`` and the parsed reference, or why it is refused and the corrected text when known."""

    ok: bool
    reference: ParsedReference | None
    detail: str | None
    suggestion: str | None


@router.get(
    "/references",
    summary="Check an image reference: canonical form, suggested name and version, warnings",
    description="Answers 200 for any text: `ok` says whether it is a reference; when it is not, "
    "`detail` says why and `suggestion` is the corrected reference when one is known (a pasted "
    "URL or `docker pull` command).",
)
async def check(
    reference: Annotated[Text, Query(description="e.g. quay.io/biocontainers/samtools:1.19")], actor: Caller
) -> ReferenceCheck:
    try:
        ref = parse_reference(reference)
    except ReferenceError as refused:
        return ReferenceCheck(False, None, refused.message, refused.suggestion)
    parsed = ParsedReference(
        canonical=ref.canonical,
        registry=ref.registry,
        repository=ref.repository,
        tag=ref.tag,
        digest=None if ref.digest is None else str(ref.digest),
        provider=str(ref.provider),
        suggested_name=ref.suggested_name,
        suggested_version=ref.suggested_version,
        warnings=[ReferenceWarningView(str(w.code), w.message) for w in warnings(ref)],
    )
    return ReferenceCheck(True, parsed, None, None)
