"""``dockyard webhook ...``: a workspace's webhooks and their delivery log (maintainers).

Events are POSTed as CloudEvents with a Standard Webhooks signature; the secret to check it
with is printed once, by ``add`` and by ``rotate-secret`` (which keeps the old secret signing
beside the new one for a grace period, so receivers switch without losing events).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from dockyard.cli import output
from dockyard.cli.client import connect, seg
from dockyard.cli.errors import CliError
from dockyard.cli.numbers import MAX_ID

webhook_app = typer.Typer(
    help="Webhooks: tell other systems what happens in a workspace (maintainers manage them).",
    no_args_is_help=True,
)

Ws = Annotated[str, typer.Argument(metavar="WORKSPACE", help="The workspace.")]
Id = Annotated[
    int, typer.Argument(metavar="ID", min=1, max=MAX_ID, help="The webhook's id (see 'webhook list').")
]
EventsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--event",
        help="An event to send (repeat for more): image.pushed, image.deleted, tag.deleted, version.deleted, "
        "repository.deleted, build.started, "
        "build.finished, import.finished, access.requested, access.approved, retention.run. Default: all.",
    ),
]


def _path(workspace: str, webhook_id: int | None = None) -> str:
    base = f"/workspaces/{seg(workspace)}/webhooks"
    return base if webhook_id is None else f"{base}/{webhook_id}"


def _events(hook: dict[str, Any]) -> str:
    return ", ".join(hook["events"]) or "all"


def _show(hook: dict[str, Any]) -> None:
    pairs: list[tuple[str, object]] = [
        ("id", hook["id"]),
        ("url", hook["url"]),
        ("events", _events(hook)),
        ("enabled", hook["enabled"]),
        ("description", hook["description"]),
        ("created", f"{output.when(hook['created_at'])} by {hook['created_by']}"),
    ]
    if hook.get("secret_rotated_at") is not None:
        rotated = output.when(hook["secret_rotated_at"])
        if hook.get("previous_secret_until") is not None:
            rotated += f"; the old secret signs too until {output.when(hook['previous_secret_until'])}"
        pairs.append(("secret rotated", rotated))
    output.fields(pairs)


def _with_secret(hook: dict[str, Any], json: bool, advice: str) -> None:
    """A webhook with its new signing secret, shown this once."""
    if json:
        output.print_json(hook)
        return
    _show(hook)
    output.say(f"secret:      {hook['secret']}")
    output.note(f"Keep the secret: it is not shown again. {advice}")


def _outcome(delivery: dict[str, Any]) -> str:
    if delivery["status_code"] is not None:
        return str(delivery["status_code"])
    return delivery["error"] or "-"


@webhook_app.command("add")
def add(
    workspace: Ws,
    url: Annotated[str, typer.Argument(help="The receiver's http:// or https:// URL.")],
    event: EventsOption = None,
    description: Annotated[str, typer.Option(help="What it is for.")] = "",
    disabled: Annotated[bool, typer.Option("--disabled", help="Add it switched off.")] = False,
    json: output.JsonFlag = False,
) -> None:
    """Add a webhook (maintainers); prints its signing secret, shown this once."""
    body = {"url": url, "events": event or [], "description": description, "enabled": not disabled}
    with connect() as api:
        hook = api.post(_path(workspace), body)
    _with_secret(hook, json, "Receivers check each event's signature with it.")


@webhook_app.command("rotate-secret")
def rotate_secret(
    workspace: Ws,
    webhook_id: Id,
    grace_hours: Annotated[
        int,
        typer.Option(
            min=0, max=168, help="Hours the old secret keeps signing beside the new one (0: it stops now)."
        ),
    ] = 24,
    json: output.JsonFlag = False,
) -> None:
    """Give a webhook a new signing secret (maintainers); prints it, shown this once."""
    with connect() as api:
        hook = api.post(f"{_path(workspace, webhook_id)}/rotate-secret", {"grace_hours": grace_hours})
    _with_secret(hook, json, "Give it to the receiver before the grace ends.")


@webhook_app.command("list")
def list_webhooks(workspace: Ws, json: output.JsonFlag = False) -> None:
    """List a workspace's webhooks (maintainers)."""
    with connect() as api:
        hooks = api.get(_path(workspace))
    if json:
        output.print_json(hooks)
        return
    output.table(
        ["ID", "URL", "EVENTS", "ENABLED", "DESCRIPTION"],
        ([h["id"], h["url"], _events(h), h["enabled"], h["description"]] for h in hooks),
        empty="No webhooks.",
    )


@webhook_app.command("show")
def show(workspace: Ws, webhook_id: Id, json: output.JsonFlag = False) -> None:
    """Show a webhook (maintainers)."""
    with connect() as api:
        hook = api.get(_path(workspace, webhook_id))
    if json:
        output.print_json(hook)
        return
    _show(hook)


@webhook_app.command("enable")
def enable(workspace: Ws, webhook_id: Id) -> None:
    """Switch a webhook on (maintainers)."""
    with connect() as api:
        api.patch(_path(workspace, webhook_id), {"enabled": True})
    output.say(f"Webhook {webhook_id} is enabled.")


@webhook_app.command("disable")
def disable(workspace: Ws, webhook_id: Id) -> None:
    """Switch a webhook off: events that happen meanwhile are not sent to it (maintainers)."""
    with connect() as api:
        api.patch(_path(workspace, webhook_id), {"enabled": False})
    output.say(f"Webhook {webhook_id} is disabled.")


@webhook_app.command("remove")
def remove(workspace: Ws, webhook_id: Id) -> None:
    """Remove a webhook and its delivery log (maintainers)."""
    with connect() as api:
        api.delete(_path(workspace, webhook_id))
    output.say(f"Removed webhook {webhook_id}.")


@webhook_app.command("test")
def send_test(workspace: Ws, webhook_id: Id, json: output.JsonFlag = False) -> None:
    """Send a test event (webhook.ping) now and say how the receiver answered."""
    with connect() as api:
        delivery = api.post(f"{_path(workspace, webhook_id)}/test")
    if json:
        output.print_json(delivery)
        return
    if delivery["state"] != "delivered":
        raise CliError(f"the test event was not delivered: {_outcome(delivery)}")
    output.say(f"Delivered: the receiver answered {delivery['status_code']} in {delivery['duration_ms']} ms.")


@webhook_app.command("deliveries")
def deliveries(
    workspace: Ws,
    webhook_id: Id,
    state: Annotated[str | None, typer.Option(help="pending, delivered or failed.")] = None,
    before: Annotated[
        int | None, typer.Option(min=1, max=MAX_ID, help="Older than this delivery id.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many.")] = 50,
    json: output.JsonFlag = False,
) -> None:
    """A webhook's delivery log, newest first, with the receiver's status codes (maintainers)."""
    params: dict[str, Any] = {"limit": limit}
    if state is not None:
        params["state"] = state
    if before is not None:
        params["before"] = before
    with connect() as api:
        found = api.get(f"{_path(workspace, webhook_id)}/deliveries", **params)
    if json:
        output.print_json(found)
        return
    output.table(
        ["ID", "EVENT", "SUBJECT", "STATE", "ATTEMPTS", "STATUS", "MS", "LAST TRY"],
        (
            [
                d["id"],
                d["type"].removeprefix("org.dockyard."),
                d["subject"],
                d["state"],
                d["attempts"],
                _outcome(d),
                d["duration_ms"] if d["duration_ms"] is not None else "-",
                output.when(d["last_attempt_at"]),
            ]
            for d in found
        ),
        empty="No deliveries.",
    )


def register(app: typer.Typer) -> None:
    app.add_typer(webhook_app, name="webhook", rich_help_panel=output.PANEL)
