"""Chain ids of an image's layer prefixes (pure): the identity lineage matches on.

The chain at depth i is sha256 over the first i layer ids (diff ids where the config lists
them), each followed by a newline: two images share a chain exactly when their first i layers
are the same, so "is B a base of C" is "is B's whole chain one of C's prefix chains", one
lookup of an indexed column (:mod:`dockyard.catalog.lineage`).
"""

from __future__ import annotations

import hashlib

MAX_LAYERS = 512  # per platform; an image with more records no chains (no lineage)
MAX_PLATFORMS = 32
PREFERRED_PLATFORM = "linux/amd64"


def chain_ids(layer_ids: list[str]) -> list[str]:
    """The chain of each prefix: ``[chain(1), ..., chain(n)]``."""
    hasher = hashlib.sha256()
    found = []
    for layer in layer_ids:
        hasher.update(layer.encode() + b"\n")
        found.append("sha256:" + hasher.copy().hexdigest())
    return found


def main_platform(platforms: list[str]) -> str | None:
    """The platform a version's base is looked for in: linux/amd64 if it has it, else the
    first by name."""
    if not platforms:
        return None
    if PREFERRED_PLATFORM in platforms:
        return PREFERRED_PLATFORM
    return sorted(platforms)[0]


def from_reference(dockerfile: str, target: str | None = None) -> str | None:
    """The image the final stage (or ``target``) of a Dockerfile is built FROM, following stage
    names (``FROM base AS build`` ... ``FROM build``); None for ``scratch``, an ``ARG`` in the
    reference, or no FROM."""
    stages: dict[str, str] = {}
    last: str | None = None
    chosen: str | None = None
    for line in _instructions(dockerfile):
        words = line.split()
        if not words or words[0].upper() != "FROM":
            continue
        args = [w for w in words[1:] if not w.startswith("--")]
        if not args:
            continue
        image = args[0]
        image = stages.get(image.lower(), image)
        last = image
        if len(args) >= 3 and args[1].upper() == "AS":
            stages[args[2].lower()] = image
            if target is not None and args[2].lower() == target.lower():
                chosen = image
    found = chosen if target is not None and chosen is not None else last
    if found is None or found.lower() == "scratch" or "$" in found:
        return None
    return found


def _instructions(dockerfile: str) -> list[str]:
    """Logical lines: continuations joined, comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in dockerfile.splitlines()[:10_000]:
        stripped = raw.strip()
        if not pending and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    if pending:
        lines.append(pending)
    return lines
