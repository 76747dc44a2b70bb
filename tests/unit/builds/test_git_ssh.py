"""git's environment for a build: nothing of the server account's git or SSH set-up.

``ssh -G`` prints the configuration the real OpenSSH resolves from a command line (without
connecting anywhere): that is what these tests read.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

from dockyard.builds.gitsource import git_env, ssh_command


def resolved(command: str, env: dict[str, str]) -> dict[str, list[str]]:
    """What ``command`` (a ``GIT_SSH_COMMAND``) makes ssh use for ``git@example.org``."""
    done = subprocess.run(
        [*shlex.split(command), "-G", "-p", "2222", "git@example.org"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    options: dict[str, list[str]] = {}
    for line in done.stdout.splitlines():
        key, _, value = line.partition(" ")
        options.setdefault(key, []).append(value)
    return options


def test_git_gets_only_its_own_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "SSH_AUTH_SOCK": "/run/user/0/agent.sock",
        "GIT_SSH_COMMAND": "ssh -i /root/.ssh/id_ed25519",
        "GIT_CONFIG_GLOBAL": "/root/.gitconfig",
        "HOME": "/root",
        "XDG_CONFIG_HOME": "/root/.config",
    }.items():
        monkeypatch.setenv(name, value)
    home = tmp_path / "git-home"
    env = git_env(home, ["https", "ssh"])
    assert sorted(env) == [
        "GIT_ALLOW_PROTOCOL", "GIT_ASKPASS", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_NOSYSTEM", "GIT_SSH_COMMAND",
        "GIT_SSH_VARIANT", "GIT_TERMINAL_PROMPT", "HOME", "LC_ALL", "PATH", "SSH_ASKPASS",
    ]  # fmt: skip
    assert (env["HOME"], env["GIT_CONFIG_NOSYSTEM"], env["GIT_CONFIG_GLOBAL"]) == (str(home), "1", os.devnull)
    assert env["GIT_ALLOW_PROTOCOL"] == "https:ssh"
    words = shlex.split(env["GIT_SSH_COMMAND"])
    assert words[:3] == ["ssh", "-F", os.devnull]


def test_ssh_uses_no_key_agent_or_known_hosts_of_the_account(tmp_path: Path) -> None:
    home = tmp_path / "git%dhome"  # ssh would put the account's home for an unescaped %d
    env = git_env(home, ["ssh"])
    options = resolved(env["GIT_SSH_COMMAND"], env)
    assert options["identityfile"] == ["none"]  # not ~/.ssh/id_rsa, id_ed25519, ...
    assert options["identityagent"] == ["none"]
    assert options["identitiesonly"] == ["yes"]
    assert options["batchmode"] == ["yes"]
    assert options["userknownhostsfile"] == [str(home / "known_hosts")]
    assert options["stricthostkeychecking"] == ["accept-new"]
    assert options["user"] == ["git"]
    assert "proxycommand" not in options


def test_a_key_given_for_the_build_is_the_only_one(tmp_path: Path) -> None:
    key = tmp_path / 'a "workspace" key %u'  # spaces, quotes, % reach ssh as they are
    options = resolved(ssh_command(tmp_path / "known_hosts", key), {"PATH": os.environ["PATH"]})
    # -G shows IdentityFile before its %-tokens are expanded, where %% becomes %.
    assert options["identityfile"] == [str(key).replace("%", "%%")]
    assert options["identitiesonly"] == ["yes"]
    assert options["identityagent"] == ["none"]
