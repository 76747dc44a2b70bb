"""The upload command sends a request again when the session was held for a moment.

The server records an archive refusal it found between two requests while holding the
session; a request arriving then is answered 409. The scripted server below answers the way
the real one does in that moment (the real race is exercised by the functional CLI tests).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from dockyard.cli import archives
from dockyard.cli.client import Client
from dockyard.cli.errors import CliError

BUSY = {"status": 409, "detail": "another request is working on this archive upload; try again"}


class Server:
    """Answers PUT /archives/a1 from ``puts`` in turn; GET shows ``states`` in turn."""

    def __init__(self, puts: list[tuple[int, dict[str, object]]], states: list[str]) -> None:
        self.puts = puts
        self.states = states
        self.seen: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request.method)
        if request.method == "GET":
            state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
            reason = "path traversal ('..')" if state == "failed" else None
            return httpx.Response(200, json={"state": state, "reason": reason, "processed": 0})
        status, body = self.puts.pop(0)
        return httpx.Response(status, json=body, headers={"content-type": "application/problem+json"})


def _session(server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> archives._Session:
    monkeypatch.setenv("DOCKYARD_CLI_CONFIG", str(tmp_path / "cli.toml"))
    monkeypatch.setattr(archives, "_BUSY_WAIT", 0.0)
    file = tmp_path / "a.tar"
    file.write_bytes(b"x" * 10)
    api = Client("https://r.example.org", "dyk_t", transport=httpx.MockTransport(server))
    return archives._Session(api, file, "lab", "gzip", quiet=True)


def test_a_refusal_being_recorded_is_waited_for_and_then_explained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The PUT meets the session held; the refusal is recorded a moment later.
    server = Server(puts=[(409, BUSY), (409, BUSY)], states=["receiving", "receiving", "failed"])
    session = _session(server, tmp_path, monkeypatch)
    with pytest.raises(CliError) as refused:
        session.imported("a1", 1 << 20)
    assert refused.value.message == "the archive was refused: path traversal ('..')"
    assert server.seen == ["GET", "PUT", "GET", "PUT", "GET"]


def test_a_request_that_found_the_session_held_is_sent_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    done: dict[str, object] = {"state": "done", "reason": None, "processed": 10}
    server = Server(puts=[(409, BUSY), (409, BUSY), (202, done)], states=["receiving"])
    session = _session(server, tmp_path, monkeypatch)
    assert session.imported("a1", 1 << 20)["state"] == "done"
    assert server.seen == ["GET", "PUT", "GET", "PUT", "GET", "PUT"]


def test_a_session_held_for_good_is_explained_after_the_tries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = Server(puts=[(409, BUSY)] * (archives._BUSY_TRIES + 1), states=["receiving"])
    session = _session(server, tmp_path, monkeypatch)
    with pytest.raises(CliError) as busy:
        session.imported("a1", 1 << 20)
    assert "another request is working on this archive upload" in busy.value.message
    assert server.seen.count("PUT") == archives._BUSY_TRIES + 1
