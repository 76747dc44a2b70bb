"""Push targets on the command line: ``--push-to HOST/REPOSITORY[:TAG]`` (HOST names a registry
profile of the workspace itself), and how a build's pushes to them went."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from dockyard.cli import output
from dockyard.cli.client import connect
from dockyard.cli.errors import CliError
from dockyard.cli.numbers import MAX_ID

PushTo = Annotated[
    list[str] | None,
    typer.Option(
        "--push-to",
        help="After a successful build also push to HOST/REPOSITORY[:TAG] through the registry profile "
        "of HOST (repeat; the tag defaults to the build's version). Replaces the targets there were.",
    ),
]
NoPushTargets = Annotated[bool, typer.Option("--no-push-targets", help="Remove every push target.")]


def parse_target(text: str) -> dict[str, Any]:
    host, sep, rest = text.partition("/")
    if not sep or not host or not rest:
        raise CliError(f"--push-to {text[:100]!r}: give HOST/REPOSITORY[:TAG]", exit_code=2)
    repository, tag = rest, None
    if ":" in rest.rsplit("/", 1)[-1]:
        repository, _, tag = rest.rpartition(":")
    return {"profile": host, "repository": repository, "tag": tag or None}


def targets_body(push_to: list[str] | None, none: bool) -> dict[str, Any]:
    """The ``push_targets`` member of a create or edit request, if the options ask for one."""
    if none and push_to:
        raise CliError("give --push-to or --no-push-targets, not both", exit_code=2)
    if none:
        return {"push_targets": []}
    return {} if push_to is None else {"push_targets": [parse_target(t) for t in push_to]}


def target_lines(definition: dict[str, Any]) -> list[str]:
    return [
        f"{t['profile']}/{t['repository']}:{t['tag'] or '<version>'}"
        for t in definition.get("push_targets", [])
    ]


def results_cell(run: dict[str, Any]) -> str | None:
    """``2/2 ok`` or ``1/2 ok`` for a history row (None: no targets)."""
    results = run.get("push_results") or []
    if not results:
        return None
    return f"{sum(1 for r in results if r['ok'])}/{len(results)} ok"


def show_results(run: dict[str, Any]) -> None:
    for r in run.get("push_results") or []:
        if r["ok"]:
            output.note(f"pushed {r['reference']}@{r['digest']}")
        else:
            output.note(f"push to {r['reference']} FAILED ({r['reason']}): {r['message']}")


def pushes(
    run_id: Annotated[int, typer.Argument(min=1, max=MAX_ID, help="The build's number (from 'history').")],
    json: output.JsonFlag = False,
) -> None:
    """How a build's pushes to its push targets went: each target, its digest or why it failed."""
    with connect() as api:
        run = api.get(f"/build-runs/{run_id}")
    if json:
        output.print_json(run["push_results"])
        return
    output.table(
        ["TARGET", "PROFILE", "RESULT", "DIGEST OR REASON"],
        (
            [
                r["reference"],
                r["profile"],
                "ok" if r["ok"] else f"FAILED: {r['reason']}",
                r["digest"] if r["ok"] else r["message"],
            ]
            for r in run["push_results"]
        ),
        empty=f"build #{run_id} had no push targets",
    )
