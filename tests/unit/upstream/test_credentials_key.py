"""The credentials key file is made once and only ever read whole, even by a worker that
starts while another is still writing it."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from dockyard.upstream import credentials


def test_a_worker_starting_while_the_key_is_written_reads_a_whole_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "keys" / "credentials.key"
    generate = Fernet.generate_key
    seen: list[bytes] = []

    def generate_while_another_worker_starts() -> bytes:
        # The first worker is between creating its key and having it in place: a second worker
        # starts now (deterministically, no threads) and loads the key.
        monkeypatch.setattr(Fernet, "generate_key", generate)
        seen.append(credentials._load_key(path))
        return generate()

    monkeypatch.setattr(Fernet, "generate_key", generate_while_another_worker_starts)
    first = credentials._load_key(path)

    (second,) = seen
    assert second == first  # both workers hold the one key in the file
    Fernet(first)  # a whole, valid key (a half-written file would be refused here)
    assert path.read_bytes().strip() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["credentials.key"]  # no scratch left


def test_an_existing_key_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "credentials.key"
    key = Fernet.generate_key()
    path.write_bytes(key + b"\n")
    assert credentials._load_key(path) == key
