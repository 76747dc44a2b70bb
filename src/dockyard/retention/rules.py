"""What a retention rule is and what it selects: pure, no I/O.

A rule looks at the tags of its scope that match its pattern (the glob syntax of immutable
tags, :mod:`dockyard.catalog.immutability`; empty: every tag). Signature tags
(``sha256-<hex>.sig``, ``.att``, ``.sbom`` and the referrers tag ``sha256-<hex>``) are never
counted as tags: they go with the manifest they sign (the garbage collector takes a signature
whose subject is gone). Tags are ranked per repository, as Harbor does.

- ``keep_last``: keep the latest ``count`` tags. ``pushed``: by when the tag was last pushed
  (newest first, then by name). ``semver``: by semantic version (``1.2.3``, ``v1.2.3``,
  ``1.2.3-rc.1``; pre-releases rank below their release, build metadata is ignored); a tag
  that is not a semantic version is never deleted by a semver rule (it is listed as kept, "not
  a semantic version"), since the rule cannot say where it ranks.
- ``not_pulled``: delete tags whose manifest was not pulled for ``days`` (a tag never pulled
  counts from when it was pushed).
- ``untagged``: delete untagged manifests pushed more than ``days`` ago that nothing holds: not
  a child of an index, not a signature or attestation of a manifest that is still there.

Immutable tags are never deleted (Harbor does the same); they are listed as kept with the
immutability pattern that protects them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from dockyard.catalog.immutability import PATTERN
from dockyard.catalog.sync import is_digest_tag
from dockyard.errors import Invalid

KINDS = ("keep_last", "untagged", "not_pulled")
ORDERINGS = ("pushed", "semver")
MAX_COUNT = 10_000
MAX_DAYS = 3650
MAX_EVERY_HOURS = 24 * 366
DAY = 86400.0

SEMVER = re.compile(
    r"v?(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z.-]+)?"
)


SPEC_FIELDS = ("kind", "repository", "tag_pattern", "count", "ordering", "days", "every_hours", "daily_at")


@dataclass(frozen=True)
class RuleSpec:
    kind: str
    repository: str | None = None  # None: every repository of the workspace
    tag_pattern: str = ""
    count: int | None = None
    ordering: str | None = None
    days: int | None = None
    every_hours: int = 0
    daily_at: int | None = None  # an hour of the day (UTC): runs daily then, instead of every_hours

    @classmethod
    def of(cls, source: Any) -> RuleSpec:
        """The spec an object with the same attributes holds (a table row, a request, a view)."""
        return cls(*(getattr(source, name) for name in SPEC_FIELDS))

    def columns(self) -> dict[str, Any]:
        """The spec as the ``retention_rules`` columns of the same names."""
        return {name: getattr(self, name) for name in SPEC_FIELDS}

    def schedule(self) -> str:
        if self.daily_at is not None:
            return f"daily at {self.daily_at:02d}:00 UTC"
        return f"every {self.every_hours} h" if self.every_hours else "when started"

    def next_run(self, now: float) -> float | None:
        """When the schedule runs the rule next after ``now`` (None: only when started)."""
        if self.daily_at is not None:
            today = now - now % DAY + self.daily_at * 3600.0
            return today if today > now else today + DAY
        return now + self.every_hours * 3600.0 if self.every_hours else None

    def describe(self) -> str:
        where = self.repository or "every repository"
        tags = f"tags matching {self.tag_pattern!r}" if self.tag_pattern else "tags"
        if self.kind == "keep_last":
            by = "by semantic version" if self.ordering == "semver" else "by push time"
            return f"{where}: keep the latest {self.count} {tags} ({by})"
        if self.kind == "not_pulled":
            return f"{where}: delete {tags} not pulled for {self.days} days"
        return f"{where}: delete untagged manifests older than {self.days} days"


def check_spec(spec: RuleSpec, workspace: str) -> RuleSpec:
    """``spec`` with its defaults filled in, or :class:`Invalid` naming what is wrong."""
    if spec.kind not in KINDS:
        raise Invalid(f"kind must be one of {', '.join(KINDS)}")
    if spec.repository is not None and not spec.repository.startswith(f"{workspace}/"):
        raise Invalid(f"the repository must be one of workspace {workspace!r} ({workspace}/...)")
    if spec.tag_pattern and not PATTERN.fullmatch(spec.tag_pattern):
        raise Invalid("tag pattern: up to 128 letters, digits, _ . - and the wildcards * ? [ ]")
    if not 0 <= spec.every_hours <= MAX_EVERY_HOURS:
        raise Invalid(f"every_hours must be between 0 (only when started) and {MAX_EVERY_HOURS}")
    if spec.daily_at is not None and not 0 <= spec.daily_at <= 23:
        raise Invalid("daily_at must be an hour between 0 and 23 (UTC)")
    if spec.daily_at is not None and spec.every_hours:
        raise Invalid("give every_hours or daily_at, not both")
    if spec.kind == "keep_last":
        if spec.count is None or not 1 <= spec.count <= MAX_COUNT:
            raise Invalid(f"count must be between 1 and {MAX_COUNT}")
        ordering = spec.ordering or "pushed"
        if ordering not in ORDERINGS:
            raise Invalid(f"ordering must be one of {', '.join(ORDERINGS)}")
        return RuleSpec(
            spec.kind,
            spec.repository,
            spec.tag_pattern,
            spec.count,
            ordering,
            None,
            spec.every_hours,
            spec.daily_at,
        )
    if spec.days is None or not 1 <= spec.days <= MAX_DAYS:
        raise Invalid(f"days must be between 1 and {MAX_DAYS}")
    if spec.kind == "untagged" and spec.tag_pattern:
        raise Invalid("a rule on untagged manifests takes no tag pattern")
    return RuleSpec(
        spec.kind, spec.repository, spec.tag_pattern, None, None, spec.days, spec.every_hours, spec.daily_at
    )


def semver_key(tag: str) -> tuple[object, ...] | None:
    """A sort key ranking semantic versions (higher is newer), or None for another tag."""
    found = SEMVER.fullmatch(tag)
    if found is None:
        return None
    major, minor, patch, pre = found.groups()
    if pre is None:
        return (int(major), int(minor), int(patch), 1, ())
    # Numeric identifiers rank below alphanumeric ones, and compare as numbers (semver 11.4).
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (int(major), int(minor), int(patch), 0, parts)


@dataclass(frozen=True)
class TagFact:
    repository: str
    tag: str
    digest: str
    pushed_at: float
    last_pulled_at: float | None


@dataclass(frozen=True)
class UntaggedFact:
    repository: str
    digest: str
    pushed_at: float


@dataclass(frozen=True)
class Item:
    repository: str
    tag: str | None  # None: an untagged manifest
    digest: str
    delete: bool
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {
            "repository": self.repository,
            "tag": self.tag,
            "digest": self.digest,
            "action": "delete" if self.delete else "keep",
            "reason": self.reason,
        }


@dataclass
class Plan:
    items: list[Item] = field(default_factory=list)

    @property
    def doomed(self) -> list[Item]:
        return [i for i in self.items if i.delete]

    @property
    def kept(self) -> list[Item]:
        return [i for i in self.items if not i.delete]


def _age(seconds: float) -> str:
    days = seconds / DAY
    return f"{days:.0f} days" if days >= 1 else "less than a day"


def select_tags(
    spec: RuleSpec, facts: list[TagFact], now: float, immutable: Callable[[str], str | None]
) -> Plan:
    """What a tag rule deletes among ``facts`` (``immutable(tag)``: the pattern protecting it)."""
    plan = Plan()
    chosen: list[tuple[TagFact, str]] = []
    by_repo: dict[str, list[TagFact]] = {}
    for fact in facts:
        if is_digest_tag(fact.tag):
            continue
        if spec.tag_pattern and not fnmatchcase(fact.tag, spec.tag_pattern):
            continue
        by_repo.setdefault(fact.repository, []).append(fact)
    for repo in sorted(by_repo):
        found = by_repo[repo]
        if spec.kind == "keep_last":
            assert spec.count is not None
            if spec.ordering == "semver":
                ranked = [(k, f) for f in found if (k := semver_key(f.tag)) is not None]
                plan.items += [
                    Item(f.repository, f.tag, f.digest, False, "not a semantic version")
                    for f in sorted(found, key=lambda f: f.tag)
                    if semver_key(f.tag) is None
                ]
                ranked.sort(key=lambda kf: (kf[0], kf[1].tag), reverse=True)
                older = [f for _, f in ranked[spec.count :]]
                reason = f"older than the latest {spec.count} by semantic version"
            else:
                ordered = sorted(found, key=lambda f: (f.pushed_at, f.tag), reverse=True)
                older = ordered[spec.count :]
                reason = f"older than the latest {spec.count} pushed"
            chosen += [(f, reason) for f in older]
        else:
            assert spec.days is not None
            cutoff = now - spec.days * DAY
            for f in sorted(found, key=lambda f: f.tag):
                seen = max(f.pushed_at, f.last_pulled_at or 0.0)
                if seen < cutoff:
                    what = "pulled" if f.last_pulled_at and f.last_pulled_at >= f.pushed_at else "pushed"
                    chosen.append((f, f"last {what} {_age(now - seen)} ago"))
    for fact, reason in chosen:
        pattern = immutable(fact.tag)
        if pattern is not None:
            plan.items.append(
                Item(fact.repository, fact.tag, fact.digest, False, f"immutable (pattern {pattern!r})")
            )
        else:
            plan.items.append(Item(fact.repository, fact.tag, fact.digest, True, reason))
    plan.items += _signatures_of_untagged(facts, plan, immutable)
    return plan


def _signatures_of_untagged(
    facts: list[TagFact], plan: Plan, immutable: Callable[[str], str | None]
) -> list[Item]:
    """The signature tags of manifests the plan leaves with no tag: they go with them, unless
    an immutability rule protects the signature tag itself."""
    doomed = {(i.repository, i.tag) for i in plan.doomed}
    still_tagged = {
        (f.repository, f.digest)
        for f in facts
        if not is_digest_tag(f.tag) and (f.repository, f.tag) not in doomed
    }
    orphaned = {(i.repository, i.digest) for i in plan.doomed} - still_tagged
    named = {(repo, "sha256-" + digest.removeprefix("sha256:")): digest for repo, digest in orphaned}
    found = []
    for f in sorted(facts, key=lambda f: (f.repository, f.tag)):
        signed = named.get((f.repository, f.tag.split(".", 1)[0])) if is_digest_tag(f.tag) else None
        if signed is None:
            continue
        pattern = immutable(f.tag)
        if pattern is not None:
            found.append(Item(f.repository, f.tag, f.digest, False, f"immutable (pattern {pattern!r})"))
        else:
            found.append(
                Item(f.repository, f.tag, f.digest, True, f"signature of {signed[:19]}…, whose tags go")
            )
    return found


def select_untagged(spec: RuleSpec, facts: list[UntaggedFact], now: float) -> Plan:
    """What an ``untagged`` rule deletes among manifests nothing holds (see the module doc)."""
    assert spec.days is not None
    cutoff = now - spec.days * DAY
    return Plan(
        [
            Item(f.repository, None, f.digest, True, f"untagged, pushed {_age(now - f.pushed_at)} ago")
            for f in sorted(facts, key=lambda f: (f.repository, f.pushed_at, f.digest))
            if f.pushed_at < cutoff
        ]
    )
