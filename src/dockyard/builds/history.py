"""What a definition's history says of a change: each changed field's value before and after,
and for the Dockerfile a unified diff (a Dockerfile may be up to 1 MiB; its history keeps what
changed, not two copies). A git URL's user and password, if it has any, never reach the history."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MAX_DIFF_LINES = 400


def dockerfile_diff(before: str, after: str) -> str:
    """A unified diff of two Dockerfiles, at most :data:`MAX_DIFF_LINES` lines."""
    lines = list(
        difflib.unified_diff(before.splitlines(), after.splitlines(), "before", "after", lineterm="", n=2)
    )
    if len(lines) > MAX_DIFF_LINES:
        left = len(lines) - MAX_DIFF_LINES
        lines = [*lines[:MAX_DIFF_LINES], f"... {left} more lines of difference"]
    return "\n".join(lines)


def without_userinfo(url: str | None) -> str | None:
    """``https://user:secret@host/x.git`` -> ``https://host/x.git``; other forms as they are."""
    if not url or "://" not in url:
        return url
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def definition_changes(
    before: Mapping[str, Any], after: Mapping[str, Any], fields: Iterable[str]
) -> dict[str, Any]:
    """``{field: {"before": ..., "after": ...}}`` (``{"diff": ...}`` for the Dockerfile)."""
    found: dict[str, Any] = {}
    for name in fields:
        old, new = before[name], after[name]
        if name == "dockerfile":
            found[name] = {"diff": dockerfile_diff(old or "", new or "")}
        elif name == "build_args":
            found[name] = {"before": json.loads(old or "{}"), "after": json.loads(new or "{}")}
        elif name == "push_targets":
            found[name] = {"before": json.loads(old or "[]"), "after": json.loads(new or "[]")}
        elif name == "git_url":
            found[name] = {"before": without_userinfo(old), "after": without_userinfo(new)}
        else:
            found[name] = {"before": old, "after": new}
    return found
