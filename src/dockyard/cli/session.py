"""``dockyard login``, ``logout`` and ``whoami``.

``login`` checks the password, then creates a personal access token named
``cli@<hostname>`` and stores it (never the password) with the server URL and username.
``logout`` revokes that token on the server and forgets it.
"""

from __future__ import annotations

import socket
import sys
from typing import Annotated

import typer

from dockyard.cli import config, output
from dockyard.cli.client import Client, connect, resolve, seg
from dockyard.cli.errors import ApiError, CliError

LOGIN_SCOPES = ["pull", "push", "delete", "api"]


def read_secret(from_stdin: bool, prompt: str, *, confirm: bool = False) -> str:
    """A password from one line of stdin (``--password-stdin``) or a hidden prompt."""
    if from_stdin:
        value = sys.stdin.readline().rstrip("\r\n")
        if not value:
            raise CliError("--password-stdin: nothing on standard input", exit_code=2)
        return value
    value = str(typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm))
    if not value:
        raise CliError("empty password", exit_code=2)
    return value


def _revoke_quietly(login: config.Login) -> None:
    """Revoke a previous login's token; it may be gone already."""
    if login.token_id is None:
        return
    try:
        with Client(login.url, login.token) as api:
            api.delete(f"/user/tokens/{login.token_id}")
    except CliError:
        pass


def login(
    url: Annotated[str | None, typer.Argument(help="The server, like https://registry.example.org.")] = None,
    username: Annotated[str | None, typer.Option("--username", "-u", help="Your username.")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Log in: store a new personal access token for this computer (not your password)."""
    target = resolve(url)
    if not username:
        username = target.login.username if target.login and target.login.username else None
    if not username:
        username = str(typer.prompt("Username"))
    password = read_secret(password_stdin, "Password")
    with Client(target.url, basic=(username, password)) as api:
        try:
            user = api.get("/user")
        except ApiError as exc:
            if exc.status == 401:
                raise CliError(
                    f"login to {target.url} failed: wrong username or password ({exc.message})"
                ) from None
            raise
        created = api.post(
            "/user/tokens", {"name": f"cli@{socket.gethostname()}"[:100], "scopes": LOGIN_SCOPES}
        )
    path = config.config_path()
    previous = config.load(path)
    config.save(path, config.Login(target.url, user["username"], created["secret"], created["info"]["id"]))
    if previous is not None and previous.token:  # the file holds one login: end the one it replaces
        _revoke_quietly(previous)
    output.say(f"Logged in to {target.url} as {user['username']}{' (admin)' if user['is_admin'] else ''}.")
    output.note(f"A token named {created['info']['name']!r} is stored in {path}.")


def logout() -> None:
    """Revoke the stored token on the server and forget it."""
    target = resolve()
    stored = target.login
    path = config.config_path()
    if stored is None or not stored.token:
        output.say(f"Not logged in to {target.url}.")
        return
    try:
        with Client(target.url, stored.token) as api:
            token_id = stored.token_id
            if token_id is None:  # an older or hand-written file: find the token by its prefix
                found = [t for t in api.get("/user/tokens") if stored.token.startswith(t["prefix"])]
                token_id = found[0]["id"] if found else None
            if token_id is not None:
                api.delete(f"/user/tokens/{seg(token_id)}")
    except ApiError as exc:
        if exc.status != 401:
            raise
        output.note("The server no longer accepted the token (revoked or expired already).")
    config.save(path, config.Login(stored.url, stored.username))
    output.say(f"Logged out of {target.url}; the token is revoked.")


def whoami(json: output.JsonFlag = False) -> None:
    """Show who you are on the server."""
    with connect() as api:
        user = api.get("/user")
    if json:
        output.print_json(user)
        return
    flags = [f for f, on in (("admin", user["is_admin"]), ("disabled", user["disabled"])) if on]
    output.say(f"{user['username']}{' (' + ', '.join(flags) + ')' if flags else ''} on {api.url}")


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel=output.PANEL)(login)
    app.command(rich_help_panel=output.PANEL)(logout)
    app.command(rich_help_panel=output.PANEL)(whoami)
