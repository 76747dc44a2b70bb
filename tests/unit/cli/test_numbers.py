"""Numeric options of the CLI: out of bounds, NaN or infinite, they are a usage error that
names the option (exit status 2), never a traceback and never a request.

``nan`` used to reach the request body, which JSON cannot encode: the command died with a
traceback before it sent anything. The server named here does not exist, so a command that
got past its options would fail to connect instead.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dockyard.api.v1 import inputs
from dockyard.auth import jwt_tokens, tokens
from dockyard.cli import numbers
from dockyard.cli.main import app
from dockyard.tenancy import requests

DAYS = ["nan", "NaN", "inf", "-inf", "1e308", "1" * 5000, "0", "0.0001", "-1", "many"]
IDS = ["0", "2147483648", "9" * 5000, "x"]


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("DOCKYARD_URL", "http://127.0.0.1:9")  # the discard port: nothing answers
    monkeypatch.setenv("DOCKYARD_TOKEN", "dyk_not_a_token")
    return CliRunner()


def _usage_error(runner: CliRunner, *args: str, option: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception  # not a crash
    text = " ".join(re.sub("[│╭╮╰╯─]", " ", result.output).split())  # the error box, unwrapped
    assert f"Invalid value for '{option}'" in text, result.output
    return text


@pytest.mark.parametrize("days", DAYS)
@pytest.mark.parametrize(
    "command",
    [
        ["access", "approve", "1"],
        ["repo", "grant", "lab/tool", "someone"],
        ["token", "create", "laptop"],
        ["robot", "token", "lab", "ci"],
    ],
    ids=" ".join,
)
def test_days_must_be_a_finite_number_in_bounds(runner: CliRunner, command: list[str], days: str) -> None:
    output = _usage_error(runner, *command, "--expires-days", days, option="--expires-days")
    assert "is not a number" in output


@pytest.mark.parametrize("value", IDS)
@pytest.mark.parametrize(
    "command",
    [
        ["access", "approve"],
        ["access", "reject"],
        ["token", "revoke"],
        ["robot", "revoke", "lab", "ci"],
        ["build", "logs"],
        ["build", "cancel"],
    ],
    ids=" ".join,
)
def test_ids_must_be_in_bounds(runner: CliRunner, command: list[str], value: str) -> None:
    _usage_error(runner, *command, value, option="ID" if command[0] != "build" else "run_id")


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["gc", "--grace-seconds", "nan"], "--grace-seconds"),
        (["gc", "--grace-seconds", "inf"], "--grace-seconds"),
        (["gc", "--grace-seconds", "-1"], "--grace-seconds"),
        (["serve", "--port", "70000"], "--port"),
        (["serve", "--workers", "100000"], "--workers"),
        (["worker", "--concurrency", "0"], "--concurrency"),
        (["build", "history", "lab/tool", "--limit", "0"], "--limit"),
        (["image", "list", "--offset", "2147483648"], "--offset"),
        (["image", "upload", __file__, "--chunk-size", "99999999"], "--chunk-size"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else value,
)
def test_other_numbers_are_bounded(runner: CliRunner, args: list[str], option: str) -> None:
    _usage_error(runner, *args, option=option)


def test_the_cli_bounds_are_the_servers() -> None:
    assert numbers.MAX_ID == inputs.MAX_ID
    assert numbers.MIN_DAYS == jwt_tokens.MIN_LIFETIME_DAYS
    assert numbers.MAX_GRANT_DAYS == requests.MAX_GRANT_DAYS
    assert numbers.MAX_TOKEN_DAYS == tokens.MAX_TOKEN_DAYS
