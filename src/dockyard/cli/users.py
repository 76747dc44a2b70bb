"""``dockyard user ...`` (accounts) and ``dockyard token ...`` (your personal access tokens)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from dockyard.cli import output
from dockyard.cli.client import Client, connect, seg
from dockyard.cli.numbers import MAX_ID, token_days
from dockyard.cli.session import read_secret

user_app = typer.Typer(
    help="User accounts (creating, listing and disabling them is for admins).", no_args_is_help=True
)
token_app = typer.Typer(
    help="Your personal access tokens (passwords for docker login and scripts).", no_args_is_help=True
)

PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input.")
]
Scopes = Annotated[
    list[str] | None,
    typer.Option("--scope", "-s", help="pull, push, delete or api; repeat it. Default: all four."),
]
ExpiresDays = Annotated[
    float | None,
    typer.Option("--expires-days", parser=token_days, help="Days until the token expires. Default: never."),
]


@user_app.command("create")
def create_user(
    name: Annotated[str, typer.Argument(help="The username (also names the user's personal workspace).")],
    admin: Annotated[bool, typer.Option("--admin", help="Make the user an admin.")] = False,
    email: Annotated[str | None, typer.Option(help="Email address.")] = None,
    full_name: Annotated[str | None, typer.Option(help="Full name.")] = None,
    password_stdin: PasswordStdin = False,
) -> None:
    """Create a user (admins)."""
    password = read_secret(password_stdin, f"Password for {name}", confirm=True)
    body = {"username": name, "password": password, "is_admin": admin, "email": email, "full_name": full_name}
    with connect() as api:
        user = api.post("/users", body)
    output.say(f"Created user {user['username']}{' (admin)' if user['is_admin'] else ''}.")


PAGE = 1000


def _all_users(api: Client, search: str | None) -> list[dict[str, Any]]:
    """Every user (matching ``search``), a page of the API at a time."""
    found: list[dict[str, Any]] = []
    while True:
        page = api.get("/users", q=search, last=found[-1]["username"] if found else None, limit=PAGE)
        found.extend(page)
        if len(page) < PAGE:
            return found


@user_app.command("list")
def list_users(
    search: Annotated[
        str | None,
        typer.Option("--search", "-s", help="Only users whose name, full name or email contains this."),
    ] = None,
    json: output.JsonFlag = False,
) -> None:
    """List users (admins)."""
    with connect() as api:
        users = _all_users(api, search)
    if json:
        output.print_json(users)
        return
    output.table(
        ["USERNAME", "ADMIN", "DISABLED", "CREATED", "LAST LOGIN", "EMAIL"],
        (
            [u["username"], u["is_admin"], u["disabled"], output.when(u["created_at"]),
             output.when(u["last_login_at"]), u["email"]]
            for u in users
        ),
        empty="No users.",
    )  # fmt: skip


@user_app.command("passwd")
def passwd(
    name: Annotated[str | None, typer.Argument(help="Whose password (admins); default: yours.")] = None,
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin",
            help="Read from standard input: your current password and the new one on two lines "
            "(only the new one when an admin sets someone else's).",
        ),
    ] = False,
) -> None:
    """Change your password (give the current one), or set another user's (admins)."""
    with connect() as api:
        me = api.get("/user")["username"]
        username = name or me
        body: dict[str, Any] = {}
        if username == me:
            body["current_password"] = read_secret(password_stdin, "Current password")
        body["password"] = read_secret(password_stdin, f"New password for {username}", confirm=True)
        api.patch(f"/users/{seg(username)}", body)
    output.say(f"Password of {username} changed.")


def _set_disabled(name: str, disabled: bool) -> None:
    with connect() as api:
        api.patch(f"/users/{seg(name)}", {"disabled": disabled})
    output.say(f"User {name} {'disabled' if disabled else 'enabled'}.")


@user_app.command("disable")
def disable(name: Annotated[str, typer.Argument(help="The username.")]) -> None:
    """Disable an account: its logins and tokens stop working (admins)."""
    _set_disabled(name, True)


@user_app.command("enable")
def enable(name: Annotated[str, typer.Argument(help="The username.")]) -> None:
    """Enable a disabled account again (admins)."""
    _set_disabled(name, False)


def show_new_token(created: dict[str, Any], login: str | None = None) -> None:
    """A freshly created token; its secret is shown this once."""
    info = created["info"]
    output.say(
        f"Created token {info['name']!r} (id {info['id']}, scopes {','.join(info['scopes'])}, "
        f"expires {output.when(info['expires_at'])})."
    )
    if login is not None:
        output.say(f"Login:  {login}")
    output.say("Secret (shown only now; copy it somewhere safe):")
    output.say("")
    output.say(f"    {created['secret']}")
    output.say("")


@token_app.command("create")
def create_token(
    name: Annotated[str, typer.Argument(help="Where it is used, like 'laptop' or 'ci'.")],
    scope: Scopes = None,
    expires_days: ExpiresDays = None,
    json: output.JsonFlag = False,
) -> None:
    """Create a personal access token and print its secret once."""
    body: dict[str, Any] = {"name": name, "expires_in_days": expires_days}
    if scope:
        body["scopes"] = scope
    with connect() as api:
        created = api.post("/user/tokens", body)
    if json:
        output.print_json(created)
    else:
        show_new_token(created)


def token_table(tokens: list[dict[str, Any]]) -> None:
    output.table(
        ["ID", "NAME", "PREFIX", "SCOPES", "CREATED", "EXPIRES", "LAST USED", "STATE"],
        (
            [t["id"], t["name"], t["prefix"] + "...", t["scopes"], output.when(t["created_at"]),
             output.when(t["expires_at"]), output.when(t["last_used_at"], "-"),
             "revoked" if t["revoked"] else "active"]
            for t in tokens
        ),
        empty="No tokens.",
    )  # fmt: skip


@token_app.command("list")
def list_tokens(json: output.JsonFlag = False) -> None:
    """List your personal access tokens."""
    with connect() as api:
        tokens = api.get("/user/tokens")
    if json:
        output.print_json(tokens)
    else:
        token_table(tokens)


@token_app.command("revoke")
def revoke_token(
    token_id: Annotated[int, typer.Argument(metavar="ID", min=1, max=MAX_ID, help="From 'token list'.")],
) -> None:
    """Revoke one of your tokens; it stops working at once."""
    with connect() as api:
        api.delete(f"/user/tokens/{token_id}")
    output.say(f"Token {token_id} revoked.")


def register(app: typer.Typer) -> None:
    app.add_typer(user_app, name="user", rich_help_panel=output.PANEL)
    app.add_typer(token_app, name="token", rich_help_panel=output.PANEL)
