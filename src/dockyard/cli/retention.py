"""``dockyard retention add|list|remove|run|runs``: a workspace's retention rules (maintainers
manage and run them; members read them and their runs)."""

from __future__ import annotations

import sys
import time
from typing import Annotated, Any

import typer

from dockyard.cli import output
from dockyard.cli.client import Client, connect, seg
from dockyard.cli.errors import CliError
from dockyard.cli.workspaces import Ws

retention_app = typer.Typer(
    help="Retention rules: keep the latest tags, delete untagged manifests or tags not pulled for days.",
    no_args_is_help=True,
)
RuleId = Annotated[int, typer.Argument(metavar="RULE", help="The rule's id (see 'dockyard retention list').")]
POLL_SECONDS = 0.5


def register(app: typer.Typer) -> None:
    app.add_typer(retention_app, name="retention")


def _base(workspace: str) -> str:
    return f"/workspaces/{seg(workspace)}/retention"


@retention_app.command("add")
def add(
    workspace: Ws,
    keep_last: Annotated[
        int | None, typer.Option("--keep-last", help="Keep the latest N tags per repository.")
    ] = None,
    by: Annotated[
        str, typer.Option("--by", help="With --keep-last: 'pushed' (push time) or 'semver'.")
    ] = "pushed",
    untagged_days: Annotated[
        int | None, typer.Option("--untagged-days", help="Delete untagged manifests older than D days.")
    ] = None,
    not_pulled_days: Annotated[
        int | None, typer.Option("--not-pulled-days", help="Delete tags not pulled for D days.")
    ] = None,
    repository: Annotated[
        str | None, typer.Option("--repository", "-r", help="Only this repository (default: all of them).")
    ] = None,
    tags: Annotated[str, typer.Option("--tags", help="Only tags matching this pattern, like 'v*'.")] = "",
    every_hours: Annotated[
        int, typer.Option("--every-hours", help="Run every H hours (default 0: only when started).")
    ] = 0,
    daily_at: Annotated[
        int | None,
        typer.Option("--daily-at", help="Run daily at this hour, 0-23 UTC (instead of --every-hours)."),
    ] = None,
    json: output.JsonFlag = False,
) -> None:
    """Add a rule: exactly one of --keep-last, --untagged-days, --not-pulled-days."""
    chosen = [v is not None for v in (keep_last, untagged_days, not_pulled_days)]
    if sum(chosen) != 1:
        raise CliError("give exactly one of --keep-last, --untagged-days, --not-pulled-days", exit_code=2)
    body: dict[str, Any] = {
        "repository": repository,
        "tag_pattern": tags,
        "every_hours": every_hours,
        "daily_at": daily_at,
    }
    if keep_last is not None:
        body |= {"kind": "keep_last", "count": keep_last, "ordering": by}
    elif untagged_days is not None:
        body |= {"kind": "untagged", "days": untagged_days}
    else:
        body |= {"kind": "not_pulled", "days": not_pulled_days}
    with connect() as api:
        rule = api.post(f"{_base(workspace)}/rules", body)
    if json:
        output.print_json(rule)
    else:
        output.say(f"Added rule {rule['id']}: {rule['description']}{_schedule(rule)}.")


def _schedule(rule: dict[str, Any]) -> str:
    return f", {rule['schedule']}"


@retention_app.command("list")
def list_rules(workspace: Ws, json: output.JsonFlag = False) -> None:
    """The workspace's rules."""
    with connect() as api:
        rules = api.get(f"{_base(workspace)}/rules")
    if json:
        output.print_json(rules)
        return
    output.table(
        ["ID", "RULE", "SCHEDULE", "NEXT RUN", "ENABLED"],
        (
            [
                r["id"],
                r["description"],
                r["schedule"],
                output.when(r["next_run_at"], "-"),
                "yes" if r["enabled"] else "no",
            ]
            for r in rules
        ),
        empty=f"{workspace} has no retention rules.",
    )


@retention_app.command("remove")
def remove(workspace: Ws, rule: RuleId) -> None:
    """Remove a rule (its runs stay in the history)."""
    with connect() as api:
        api.delete(f"{_base(workspace)}/rules/{rule}")
    output.say(f"Removed rule {rule} of {workspace}.")


def _items(run: dict[str, Any]) -> None:
    output.table(
        ["ACTION", "REPOSITORY", "TAG", "DIGEST", "WHY"],
        (
            [i["action"], i["repository"], i["tag"] or "(untagged)", i["digest"][:19], i["reason"]]
            for i in run["items"]
        ),
        empty="Nothing to delete.",
    )


def _follow(api: Client, workspace: str, run: dict[str, Any]) -> dict[str, Any]:
    """Poll a queued run until it ends, showing its progress on stderr."""
    shown = ""
    while run["status"] in ("queued", "running"):
        line = "queued" if run["status"] == "queued" else f"deleted {run['deleted']} of {run['total']}"
        if line != shown and sys.stderr.isatty():
            print(f"\rrun {run['id']}: {line}   ", end="", file=sys.stderr, flush=True)
        shown = line
        time.sleep(POLL_SECONDS)
        run = api.get(f"{_base(workspace)}/runs/{run['id']}")
    if shown and sys.stderr.isatty():
        print(file=sys.stderr)
    return run


@retention_app.command("run")
def run(
    workspace: Ws,
    rule: RuleId,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would go; delete nothing.")] = False,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Queue the run and return its id.")] = False,
    json: output.JsonFlag = False,
) -> None:
    """Run a rule now: a dry run lists what would go; a real run deletes it (shown as it goes)."""
    with connect() as api:
        found = api.post(f"{_base(workspace)}/rules/{rule}/runs", {"dry_run": dry_run})
        if not dry_run and not no_wait:
            found = _follow(api, workspace, found)
    if json:
        output.print_json(found)
        return
    if dry_run:
        output.say(
            f"Dry run {found['id']}: {found['rule']}: would delete {found['deleted']}, keep {found['kept']}."
        )
        _items(found)
    elif found["status"] in ("queued", "running"):
        output.say(
            f"Run {found['id']} queued (job {found['job_id']}); see 'dockyard retention runs {workspace}'."
        )
    else:
        output.say(f"Run {found['id']} {found['status']}: {found['rule']}: deleted {found['deleted']}.")
        _items(found)
        if found["status"] != "succeeded":
            raise CliError(f"run {found['id']} failed: {found['error']}")


@retention_app.command("runs")
def runs(
    workspace: Ws,
    show: Annotated[int | None, typer.Option("--run", help="Show one run with what went.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=200)] = 20,
    json: output.JsonFlag = False,
) -> None:
    """The workspace's retention runs, newest first."""
    with connect() as api:
        found = (
            api.get(f"{_base(workspace)}/runs/{show}")
            if show
            else api.get(f"{_base(workspace)}/runs", limit=limit)
        )
    if json:
        output.print_json(found)
        return
    if show:
        output.say(
            f"Run {found['id']} ({'dry run' if found['dry_run'] else 'real'}) "
            f"{found['status']}: {found['rule']}"
        )
        _items(found)
        return
    output.table(
        ["RUN", "RULE", "KIND", "STATUS", "DELETED", "KEPT", "BY", "FINISHED"],
        (
            [
                r["id"],
                r["rule"],
                "dry run" if r["dry_run"] else "real",
                r["status"],
                r["deleted"],
                r["kept"],
                r["started_by"],
                output.when(r["finished_at"], "-"),
            ]
            for r in found
        ),
        empty=f"{workspace} has no retention runs.",
    )
