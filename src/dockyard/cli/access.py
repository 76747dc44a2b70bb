"""``dockyard access ...`` (asking for and deciding access requests), ``notifications``
and ``audit``."""

from __future__ import annotations

import json as jsonlib
from typing import Annotated, Any

import typer

from dockyard.cli import output
from dockyard.cli.client import connect
from dockyard.cli.numbers import MAX_ID, grant_days

access_app = typer.Typer(
    help="Access requests: ask for pull or push; maintainers approve or reject.", no_args_is_help=True
)

RequestId = Annotated[
    int, typer.Argument(metavar="ID", min=1, max=MAX_ID, help="The request's id (see 'access list').")
]
Note = Annotated[str, typer.Option("--note", help="A note for the requester.")]


def _summary(request: dict[str, Any]) -> str:
    r = request
    text = f"Request {r['id']}: {r['requester']} asks for {r['action']} on {r['repository']} ({r['status']}"
    if request["status"] == "approved":
        text += f" until {output.when(request['grant_expires_at'])}"
    return text + ")."


@access_app.command("request")
def request(
    repository: Annotated[str, typer.Argument(metavar="REPOSITORY", help="Like 'genomics/samtools'.")],
    push: Annotated[bool, typer.Option("--push", help="Ask to push too (default: pull).")] = False,
    message: Annotated[str, typer.Option("--message", "-m", help="Why you need it.")] = "",
    json: output.JsonFlag = False,
) -> None:
    """Ask the repository's maintainers for access; they are notified."""
    body = {"repository": repository, "action": "push" if push else "pull", "message": message}
    with connect() as api:
        found = api.post("/access-requests", body)
    if json:
        output.print_json(found)
    else:
        output.say(_summary(found))


@access_app.command("list")
def list_requests(
    workspace: Annotated[
        str | None, typer.Option("--workspace", "-w", help="A workspace's requests (maintainers).")
    ] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="pending, approved, rejected or cancelled.")
    ] = None,
    mine: Annotated[bool, typer.Option("--mine", help="Only your own requests.")] = False,
    json: output.JsonFlag = False,
) -> None:
    """List your requests, or a workspace's (maintainers)."""
    with connect() as api:
        found = api.get("/access-requests", workspace=workspace, status=status, mine=mine or None)
    if json:
        output.print_json(found)
        return
    output.table(
        ["ID", "REPOSITORY", "REQUESTER", "WANTS", "STATUS", "ASKED", "DECIDED BY", "MESSAGE"],
        (
            [r["id"], r["repository"], r["requester"], r["action"], r["status"],
             output.when(r["created_at"]), r["decided_by"], r["message"]]
            for r in found
        ),
        empty="No access requests.",
    )  # fmt: skip


@access_app.command("approve")
def approve(
    request_id: RequestId,
    push: Annotated[
        bool | None, typer.Option("--push/--pull", help="Grant push or pull only (default: what was asked).")
    ] = None,
    expires_days: Annotated[
        float, typer.Option("--expires-days", parser=grant_days, help="How long the grant lasts, in days.")
    ] = 30.0,
    note: Note = "",
    json: output.JsonFlag = False,
) -> None:
    """Approve a request: the requester may pull (or push) until the grant expires (maintainers)."""
    body = {
        "action": None if push is None else ("push" if push else "pull"),
        "expires_in_days": expires_days,
        "note": note,
    }
    with connect() as api:
        found = api.post(f"/access-requests/{request_id}/approve", body)
    if json:
        output.print_json(found)
    else:
        grant = found["grant"]
        output.say(
            f"Approved: {grant['username']} may {grant['action']} {found['request']['repository']} "
            f"until {output.when(grant['expires_at'])}."
        )


@access_app.command("reject")
def reject(request_id: RequestId, note: Note = "") -> None:
    """Reject a request (maintainers)."""
    with connect() as api:
        found = api.post(f"/access-requests/{request_id}/reject", {"note": note})
    output.say(_summary(found))


@access_app.command("cancel")
def cancel(request_id: RequestId) -> None:
    """Withdraw your own pending request."""
    with connect() as api:
        found = api.post(f"/access-requests/{request_id}/cancel")
    output.say(_summary(found))


def describe(notification: dict[str, Any]) -> str:
    """One line for a notification."""
    kind, p = notification["kind"], notification["payload"]
    if kind == "access_request.created":
        return f"{p['requester']} asks for {p['action']} on {p['repository']} (request {p['request_id']})"
    if kind == "access_request.approved":
        text = f"approved: you may {p['action']} {p['repository']} until {output.when(p.get('expires_at'))}"
        return text + (f" ({p['note']})" if p.get("note") else "")
    if kind == "access_request.rejected":
        return f"rejected: your request for {p['repository']}" + (f" ({p['note']})" if p.get("note") else "")
    return f"{kind}: {jsonlib.dumps(p, sort_keys=True)}"


def notifications(
    unread: Annotated[bool, typer.Option("--unread", help="Only unread ones.")] = False,
    mark_read: Annotated[bool, typer.Option("--mark-read", help="Then mark them all read.")] = False,
    json: output.JsonFlag = False,
) -> None:
    """Your notifications, newest first (access requests and their decisions)."""
    with connect() as api:
        found = api.get("/notifications", unread=unread or None)
        if mark_read:
            api.post("/notifications/read")
    if json:
        output.print_json(found)
        return
    output.table(
        ["ID", "WHEN", "", "WHAT"],
        ([n["id"], output.when(n["created_at"]), "" if n["read"] else "new", describe(n)] for n in found),
        empty="No notifications.",
    )


def _detail(detail: dict[str, Any]) -> str:
    """``key=value`` pairs; times as dates, nulls left out."""
    parts = []
    for key, value in sorted(detail.items()):
        if value is None:
            continue
        if key.endswith("_at") and isinstance(value, int | float):
            value = output.when(value)
        parts.append(f"{key}={value if isinstance(value, str | int | float) else jsonlib.dumps(value)}")
    return " ".join(parts)


def audit(
    workspace: Annotated[
        str | None, typer.Option("--workspace", "-w", help="One workspace you own (admins: all by default).")
    ] = None,
    action: Annotated[
        str | None, typer.Option("--action", help="Only this action, like 'user.create'.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000, help="At most this many.")] = 100,
    json: output.JsonFlag = False,
) -> None:
    """The audit log, newest first (workspace owners; admins for everything)."""
    with connect() as api:
        events = api.get("/audit", workspace=workspace, action=action, limit=limit)
    if json:
        output.print_json(events)
        return
    output.table(
        ["ID", "WHEN", "ACTOR", "ACTION", "TARGET", "ADDRESS", "DETAIL"],
        (
            [e["id"], output.when(e["at"]), e["actor_name"] or e["actor_kind"], e["action"], e["target"],
             e["client_ip"], _detail(e["detail"])]
            for e in events
        ),
        empty="No audit events.",
    )  # fmt: skip


def register(app: typer.Typer) -> None:
    app.add_typer(access_app, name="access", rich_help_panel=output.PANEL)
    app.command(rich_help_panel=output.PANEL)(notifications)
    app.command(rich_help_panel=output.PANEL)(audit)
