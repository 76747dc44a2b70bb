"""The CLI's login file and how it picks the server and token (no server needed)."""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path

import httpx
import pytest

from dockyard.cli import client, config
from dockyard.cli.client import Client, resolve
from dockyard.cli.errors import ApiError, CliError


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setattr(client._Globals, "server", None)


def test_config_path_precedence(tmp_path: Path) -> None:
    home = Path(os.environ["HOME"])
    assert config.config_path({}) == home / ".config" / "dockyard" / "cli.toml"
    assert config.config_path({"XDG_CONFIG_HOME": "relative/ignored"}) == home / ".config/dockyard/cli.toml"
    assert (
        config.config_path({"XDG_CONFIG_HOME": str(tmp_path / "xdg")}) == tmp_path / "xdg/dockyard/cli.toml"
    )
    explicit = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "DOCKYARD_CLI_CONFIG": str(tmp_path / "my.toml")}
    assert config.config_path(explicit) == tmp_path / "my.toml"


def test_save_is_private_atomic_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "cli.toml"
    login = config.Login("https://r.example.org", 'we"ird\\name', "dyk_secret", 7)
    config.save(path, login)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert config.load(path) == login
    assert tomllib.loads(path.read_text())["username"] == 'we"ird\\name'
    assert sorted(p.name for p in path.parent.iterdir()) == ["cli.toml"]  # no temporary left behind

    path.chmod(0o644)  # a file someone loosened is replaced by a private one
    config.save(path, config.Login("https://r.example.org", "alice"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert config.load(path) == config.Login("https://r.example.org", "alice", "", None)


def test_load_missing_and_broken_files(tmp_path: Path) -> None:
    assert config.load(tmp_path / "absent.toml") is None
    broken = tmp_path / "broken.toml"
    broken.write_text("url = 'unterminated\n")
    with pytest.raises(CliError, match="not valid TOML") as caught:
        config.load(broken)
    assert str(broken) in caught.value.message


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://r.example.org/", "https://r.example.org"),
        ("r.example.org:5000", "https://r.example.org:5000"),
        ("localhost:5000", "http://localhost:5000"),
        ("127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("http://10.0.0.1", "http://10.0.0.1"),
    ],
)
def test_normalize_url(given: str, expected: str) -> None:
    assert config.normalize_url(given) == expected


def test_normalize_url_refuses_other_schemes() -> None:
    with pytest.raises(CliError, match="not a server URL"):
        config.normalize_url("ftp://r.example.org")


def test_a_stored_token_goes_only_to_its_own_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "cli.toml"
    monkeypatch.setenv("DOCKYARD_CLI_CONFIG", str(path))
    monkeypatch.delenv("DOCKYARD_TOKEN", raising=False)
    with pytest.raises(CliError, match="no server"):
        resolve()
    config.save(path, config.Login("https://a.example.org", "alice", "dyk_a", 1))

    assert resolve().token == "dyk_a"
    assert resolve("https://a.example.org/").token == "dyk_a"
    other = resolve("https://b.example.org")
    assert (other.url, other.token, other.login) == ("https://b.example.org", None, None)
    monkeypatch.setattr(client._Globals, "server", "b.example.org")
    assert resolve().token is None
    monkeypatch.setenv("DOCKYARD_TOKEN", "dyk_env")
    assert resolve().token == "dyk_env"


def _answering(status: int, body: bytes, content_type: str) -> Client:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer dyk_t"
        return httpx.Response(status, content=body, headers={"content-type": content_type})

    return Client("https://r.example.org", "dyk_t", transport=httpx.MockTransport(handler))


def test_problem_details_become_one_line_errors() -> None:
    problem = b'{"type": "x", "title": "Not allowed", "status": 403, "detail": "only owners manage members"}'
    with _answering(403, problem, "application/problem+json") as api, pytest.raises(ApiError) as caught:
        api.get("/workspaces/w/members")
    assert (caught.value.status, caught.value.message) == (403, "only owners manage members")

    invalid = b'{"detail": "body.password: String should have at least 8 characters"}'
    with _answering(422, invalid, "application/problem+json") as api, pytest.raises(ApiError) as caught:
        api.post("/users", {"username": "bob", "password": "short"})
    assert caught.value.message == "password: String should have at least 8 characters"

    unknown = b'{"detail": "the token is unknown"}'
    with _answering(401, unknown, "application/problem+json") as api, pytest.raises(ApiError) as caught:
        api.get("/user")
    assert caught.value.hint is not None
    assert "dockyard login" in caught.value.hint


def test_a_server_that_is_not_dockyard() -> None:
    with (
        _answering(404, b"<html>nothing here</html>", "text/html") as api,
        pytest.raises(CliError, match="does not look like a Dockyard server"),
    ):
        api.get("/user")


def test_an_unreachable_server() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with (
        Client("https://r.example.org", transport=httpx.MockTransport(refuse)) as api,
        pytest.raises(CliError, match=r"cannot reach https://r\.example\.org: connection refused"),
    ):
        api.get("/user")
