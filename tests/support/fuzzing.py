"""One schemathesis run (what ``st run`` does), gathered for a test to assert on: the schema's
operations, those called, the failed checks, what kept it from running, and what each
operation answered (``seen``, for checks of the test's own)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from schemathesis.core.result import Ok
from schemathesis.core.transport import Response
from schemathesis.engine import events, from_schema


def config(
    base_url: str,
    headers: dict[str, str],
    examples: int,
    hostile: dict[str, list[Any]],
    checks: list[str],
) -> schemathesis.Config:
    """A deterministic run of every operation, ``examples`` cases each, drawing a quarter of the
    values of each JSON type named in ``hostile`` ("string", "integer", "number") from its list;
    no example or stateful phase (the schemas have no examples; links are inferred and slow);
    only ``checks`` enabled."""
    return schemathesis.Config.from_dict(
        {
            "base-url": base_url,
            "headers": headers,
            "generation": {
                "mode": "all",
                "max-examples": examples,
                "deterministic": True,
                "no-shrink": True,
                "database": "none",
                "dictionaries": {kind: {"dictionary": kind, "probability": 0.25} for kind in hostile},
            },
            "dictionaries": {kind: {"values": values} for kind, values in hostile.items()},
            "phases": {"examples": {"enabled": False}, "stateful": {"enabled": False}},
            "checks": {"enabled": False, **{name: {"enabled": True} for name in checks}},
            "suppress-health-check": ["all"],
            "request-timeout": 60,
        }
    )


@dataclass
class Run:
    operations: set[str] = field(default_factory=set)
    exercised: set[str] = field(default_factory=set)
    failures: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def run(schema: Any, seen: Callable[[str, Response], None] | None = None) -> Run:
    """Run every operation of ``schema``; ``seen(label, response)`` is told each answer."""
    found = Run()
    for result in schema.get_all_operations():
        if isinstance(result, Ok):
            found.operations.add(result.ok().label)
        else:
            found.errors.append(f"schema: {result.err()}")
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            recorder = event.recorder
            if recorder.cases:
                found.exercised.add(recorder.label)
            for interaction in recorder.interactions.values():
                if seen is not None and interaction.response is not None:
                    seen(recorder.label, interaction.response)
            for case_id in recorder.failing_case_ids():
                for check in recorder.checks[case_id]:
                    if check.failure_info is not None:
                        info = check.failure_info
                        found.failures.append(f"{recorder.label}: {info.failure.title}\n{info.code_sample}")
        elif isinstance(event, events.NonFatalError):
            found.errors.append(f"{event.label}: {event.info.title}: {event.info.message}")
        elif isinstance(event, events.FatalError):
            found.errors.append(f"fatal: {event.exception!r}")
    return found
