"""Where the CLI keeps its login: the server URL, the username and a personal access token
(never a password).

The file is ``$DOCKYARD_CLI_CONFIG``, else ``$XDG_CONFIG_HOME/dockyard/cli.toml``, else
``~/.config/dockyard/cli.toml``. It is TOML, written atomically with mode 0600::

    url = "https://registry.example.org"
    username = "alice"
    token = "dyk_..."
    token_id = 12
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from dockyard.cli.errors import CliError

CONFIG_ENV = "DOCKYARD_CLI_CONFIG"
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class Login:
    """What ``dockyard login`` stored."""

    url: str
    username: str = ""
    token: str = ""
    token_id: int | None = None


def config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if explicit := env.get(CONFIG_ENV):
        return Path(explicit).expanduser()
    xdg = env.get("XDG_CONFIG_HOME", "")
    # The XDG spec says to ignore a relative XDG_CONFIG_HOME.
    root = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".config"
    return root / "dockyard" / "cli.toml"


def normalize_url(url: str) -> str:
    """``host:port`` -> ``https://host:port`` (``http://`` for loopback), no trailing slash."""
    url = url.strip().rstrip("/")
    if "://" not in url:
        host = urlsplit("//" + url).hostname or ""
        url = ("http://" if host in LOOPBACK_HOSTS else "https://") + url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CliError(f"{url!r} is not a server URL (like https://registry.example.org)", exit_code=2)
    return url


def load(path: Path) -> Login | None:
    """The stored login, or None if there is no file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CliError(
            f"{path} is not valid TOML ({exc})", hint="fix it, or delete it and log in again"
        ) from None
    url, username, token, token_id = (data.get(k) for k in ("url", "username", "token", "token_id"))
    if not isinstance(url, str) or not url:
        return None
    username = username if isinstance(username, str) else ""
    token = token if isinstance(token, str) else ""
    return Login(
        normalize_url(url), username, token, token_id if isinstance(token_id, int) and token else None
    )


def dumps(login: Login) -> str:
    # JSON string escapes are valid TOML basic-string escapes.
    lines = [f"url = {json.dumps(login.url)}"]
    if login.username:
        lines.append(f"username = {json.dumps(login.username)}")
    if login.token:
        lines.append(f"token = {json.dumps(login.token)}")
    if login.token_id is not None:
        lines.append(f"token_id = {int(login.token_id)}")
    return "# Written by 'dockyard login'; holds a personal access token, keep it private.\n" + (
        "\n".join(lines) + "\n"
    )


def save(path: Path, login: Login) -> None:
    """Write the file atomically (a temporary file renamed over it), readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            os.fchmod(out.fileno(), 0o600)
            out.write(dumps(login))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise CliError(f"cannot write {path}: {exc.strerror}") from None
