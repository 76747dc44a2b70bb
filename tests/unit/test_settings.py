from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from dockyard.settings import Settings


def test_defaults_are_token_auth_on_loopback() -> None:
    settings = Settings()
    assert settings.host == "127.0.0.1"
    assert settings.auth_mode == "token"
    assert settings.storage_driver == "filesystem"


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10"])
def test_token_mode_listens_anywhere(host: str) -> None:
    assert Settings(host=host).host == host


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1.2.3", "::1", "localhost"])
def test_dev_mode_on_loopback(host: str) -> None:
    assert Settings(host=host, auth_mode="dev").host == host


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.org", "localhost.example.org"])
def test_dev_mode_refuses_other_hosts(host: str) -> None:
    with pytest.raises(ValidationError, match="loopback"):
        Settings(host=host, auth_mode="dev")


@pytest.mark.parametrize(
    ("username", "password"),
    [("", ""), ("admin", ""), ("", "secret")],
)
def test_basic_mode_needs_credentials(username: str, password: str) -> None:
    with pytest.raises(ValidationError, match="admin_username and admin_password"):
        Settings(auth_mode="basic", admin_username=username, admin_password=SecretStr(password))


def test_basic_mode_may_listen_anywhere() -> None:
    settings = Settings(
        host="0.0.0.0", auth_mode="basic", admin_username="admin", admin_password=SecretStr("pw-7f3a9")
    )
    assert settings.admin_password.get_secret_value() == "pw-7f3a9"
    assert "pw-7f3a9" not in repr(settings), "the password never shows in logs"


def test_environment_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKYARD_PORT", "6001")
    monkeypatch.setenv("DOCKYARD_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DOCKYARD_ACCESS_LOG", "false")
    settings = Settings()
    assert settings.port == 6001
    assert settings.data_dir == tmp_path
    assert settings.access_log is False
    assert Settings(port=7000).port == 7000, "keyword arguments (the CLI) beat the environment"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DOCKYARD_STORAGE_DRIVER", "s3-typo"),
        ("DOCKYARD_AUTH_MODE", "none"),
        ("DOCKYARD_PORT", "70000"),
        ("DOCKYARD_LOG_LEVEL", "verbose"),
        ("DOCKYARD_MAX_MANIFEST_BYTES", "0"),
    ],
)
def test_invalid_values_are_errors(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


def test_toml_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "dockyard.toml"
    config.write_text(
        f"""
host = "0.0.0.0"
port = 5050
data_dir = "{tmp_path / "data"}"
auth_mode = "basic"
admin_username = "admin"
admin_password = "from-file"
gc_grace_seconds = 60.5
"""
    )
    monkeypatch.setenv("DOCKYARD_CONFIG", str(config))
    settings = Settings()
    assert (settings.host, settings.port, settings.auth_mode) == ("0.0.0.0", 5050, "basic")
    assert settings.data_dir == tmp_path / "data"
    assert settings.admin_password.get_secret_value() == "from-file"
    assert settings.gc_grace_seconds == 60.5

    monkeypatch.setenv("DOCKYARD_PORT", "5051")
    assert Settings().port == 5051, "the environment beats the file"


def test_toml_file_with_an_unknown_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "dockyard.toml"
    config.write_text("prot = 5050\n")
    monkeypatch.setenv("DOCKYARD_CONFIG", str(config))
    with pytest.raises(ValidationError, match="prot"):
        Settings()


def test_missing_toml_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKYARD_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ValueError, match="not a file"):
        Settings()


def test_effective_paths(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.effective_database_url == f"sqlite+aiosqlite:///{tmp_path.resolve() / 'dockyard.db'}"
    assert settings.effective_storage_root == tmp_path.resolve() / "storage"
    custom = Settings(
        data_dir=tmp_path, database_url="postgresql+asyncpg://u@h/db", storage_root=tmp_path / "blobs"
    )
    assert custom.effective_database_url == "postgresql+asyncpg://u@h/db"
    assert custom.effective_storage_root == tmp_path.resolve() / "blobs"


def test_to_env_round_trip(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    original = Settings(
        host="::",
        port=5123,
        workers=3,
        data_dir=tmp_path / "data",
        database_url="postgresql+asyncpg://postgres@127.0.0.1:5432/x",
        storage_root=tmp_path / "blobs",
        auth_mode="basic",
        admin_username="admin",
        admin_password=SecretStr("p@ss word=1"),
        max_manifest_bytes=1234,
        gc_interval_seconds=0,
        gc_grace_seconds=12.5,
        upload_purge_seconds=99,
        log_level="debug",
        access_log=False,
    )
    env = original.to_env()
    assert all(name.startswith("DOCKYARD_") for name in env)
    assert all(isinstance(value, str) for value in env.values())
    assert env["DOCKYARD_ADMIN_PASSWORD"] == "p@ss word=1"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert Settings() == original


def test_to_env_round_trip_of_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    original = Settings()
    env = original.to_env()
    assert "DOCKYARD_STORAGE_ROOT" not in env, "None is left out, not written as 'None'"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert Settings() == original
