"""Fetch a git build context: clone, check out the ref (branch, tag or commit), and find the
folder and Dockerfile inside the checkout.

Only the protocols the server allows are used (``GIT_ALLOW_PROTOCOL``, which also covers
redirects and submodules); ``file://`` is off by default because it reads the server's own
disk. No system or user git configuration is read and git never prompts for credentials.
``HOME`` is an empty folder of the build's own. ssh reads the account's home from the
password database, not ``HOME``, so it is told everything on its command line instead: no
configuration file (``-F /dev/null``), no identity but the one given (today none: workspaces
cannot hold an SSH key yet), no agent, and host keys learnt into the build's folder. The
server account's ``~/.ssh`` is never read nor written.
The folder and the Dockerfile must resolve inside the checkout (a symlink in the repository
cannot point the build at the server's files).

The repository's host is resolved and checked by the server's outbound policy before git
runs, and git is made to connect to exactly those addresses (curl's resolve list for
http(s), the address itself for git://, ssh's ``HostName``), never resolving the name again;
git follows no HTTP redirects (the place it would be sent to is not checked).
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from dockyard.builds.builder import BuildFailed, Cancelled, LogSink
from dockyard.builds.process import Deadline, run_captured, run_logged
from dockyard.builds.spec import MAX_DOCKERFILE, GitSource
from dockyard.outbound import OutboundPolicy, OutboundRefused, ip_literal

_PORTS = {"https": 443, "http": 80, "ftps": 990, "ftp": 21, "git": 9418, "ssh": 22}
_PORTS.update({"git+ssh": 22, "ssh+git": 22})
_HELPER = re.compile(r"[A-Za-z0-9][A-Za-z0-9+.-]*::")  # transport::address runs git-remote-<transport>
_SCP_LIKE = re.compile(r"(?:[^@/]+@)?(\[[^\]/]+\]|[^:/\[\]]+):")  # [user@]host:path, as git reads it


@dataclass(frozen=True)
class Checkout:
    commit: str
    context: Path
    dockerfile: Path
    dockerfile_text: str


@dataclass(frozen=True)
class GitDestination:
    scheme: str  # ssh for the scp-like form
    host: str
    port: int


def git_destination(url: str) -> GitDestination | None:
    """Where cloning ``url`` connects; None for ``file://`` (no connection). A URL that names
    no host git could reach is refused, rather than let through unchecked."""
    if _HELPER.match(url):
        raise OutboundRefused(f"the git URL {url[:100]!r} names no host that can be checked")
    if "://" in url:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme == "file":
            return None
        try:
            port = parts.port
        except ValueError:
            port = -1
        # A final dot would make curl's resolve list miss the name (and resolve it again).
        if scheme not in _PORTS or not parts.hostname or parts.hostname.endswith(".") or port == -1:
            raise OutboundRefused(f"the git URL {url[:100]!r} names no host that can be checked")
        return GitDestination(scheme, parts.hostname, port or _PORTS[scheme])
    found = _SCP_LIKE.match(url)
    if found is None:
        raise OutboundRefused(f"the git URL {url[:100]!r} names no host that can be checked")
    return GitDestination("ssh", found.group(1).strip("[]").lower(), 22)


async def check_git_url(url: str, outbound: OutboundPolicy) -> None:
    """Refuse now a repository the clone would be refused (early feedback; see ``OutboundPolicy.check``)."""
    destination = git_destination(url)
    if destination is not None:
        await outbound.check(destination.host, destination.port)


async def _pinned(url: str, outbound: OutboundPolicy) -> tuple[str, list[str], str | None]:
    """(URL, ``git -c`` options, ssh host) that make git connect only to checked addresses."""
    destination = git_destination(url)
    if destination is None:
        return url, [], None
    addresses = await outbound.addresses(destination.host, destination.port)
    literal = ip_literal(destination.host) is not None
    if destination.scheme == "git":  # git's own protocol has no resolve option: name the address
        parts = urlsplit(url)
        host = f"[{addresses[0]}]" if addresses[0].version == 6 else str(addresses[0])
        netloc = host if parts.port is None else f"{host}:{parts.port}"
        return urlunsplit(parts._replace(netloc=netloc)), [], None
    if destination.scheme.startswith(("http", "ftp")):
        options = ["-c", "http.followRedirects=false"]
        if not literal:
            listed = ",".join(f"[{a}]" if a.version == 6 else str(a) for a in addresses)
            options += ["-c", f"http.curloptResolve={destination.host}:{destination.port}:{listed}"]
        return url, options, None
    return url, [], str(addresses[0])  # ssh


def ssh_command(known_hosts: Path, identity: Path | None = None, host_name: str | None = None) -> str:
    """``GIT_SSH_COMMAND``: OpenSSH with only what is on its command line (see the module);
    ``host_name`` is the address the outbound policy checked (ssh must not resolve again)."""
    options = {
        "BatchMode": "yes",  # never a prompt (passphrase, password, host key)
        "StrictHostKeyChecking": "accept-new",  # learnt for this build only: the file is the build's
        "UserKnownHostsFile": _ssh_path(known_hosts),
        "IdentitiesOnly": "yes",
        "IdentityFile": "none" if identity is None else _ssh_path(identity),  # none: not even ~/.ssh/id_*
        "IdentityAgent": "none",
        "ConnectTimeout": "30",
    }
    if host_name is not None:
        options["HostName"] = host_name
    words = ["ssh", "-F", os.devnull]
    for name, value in options.items():
        words += ["-o", f"{name}={value}"]
    return shlex.join(words)


def _ssh_path(path: Path) -> str:
    """``path`` as ssh's own option parser reads it: quoted (a space would split it into two
    files), ``%`` doubled (ssh expands ``%d``, ``%u``... in these options)."""
    escaped = str(path).replace("%", "%%").replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def git_env(home: Path, protocols: list[str], ssh_host: str | None = None) -> dict[str, str]:
    """git's whole environment (nothing of the server's is passed on but PATH): ``home`` is
    an empty folder of the build's, where ssh also keeps the host keys it learns."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "GIT_ALLOW_PROTOCOL": ":".join(protocols),
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_ASKPASS": "/bin/false",
        "SSH_ASKPASS": "/bin/false",
        "GIT_SSH_COMMAND": ssh_command(home / "known_hosts", host_name=ssh_host),
        "GIT_SSH_VARIANT": "ssh",
        "LC_ALL": "C",
    }


def _inside(root: Path, path: Path) -> bool:
    return path == root or root in path.parents


async def checkout(
    source: GitSource,
    dest: Path,
    *,
    protocols: list[str],
    outbound: OutboundPolicy,
    log: LogSink,
    deadline: Deadline,
    cancelled: Cancelled,
    check_every: float = 1.0,
    started: Callable[[int], None] | None = None,
) -> Checkout:
    try:
        async with asyncio.timeout(max(deadline.left(), 1.0)):
            url, options, ssh_host = await _pinned(source.url, outbound)
    except OutboundRefused as exc:
        raise BuildFailed(f"git clone of {source.url} refused: {exc.message}") from None
    except TimeoutError:
        raise deadline.expired() from None
    except OSError as exc:
        raise BuildFailed(f"git clone of {source.url} failed: its host does not resolve ({exc})") from None
    home = dest.parent / "git-home"
    home.mkdir(mode=0o700)
    env = git_env(home, protocols, ssh_host)
    await log.write(f"[dockyard] cloning {source.url} (ref {source.ref})")
    status = await run_logged(
        ["git", *options, "clone", "--no-checkout", "--quiet", "--", url, str(dest)],
        sink=log,
        deadline=deadline,
        cancelled=cancelled,
        env=env,
        check_every=check_every,
        started=started,
    )
    if status != 0:
        raise BuildFailed(f"git clone of {source.url} failed (exit status {status}); see the log")
    commit = None
    for candidate in (f"refs/remotes/origin/{source.ref}", f"refs/tags/{source.ref}", source.ref):
        code, output = await run_captured(
            ["git", "-C", str(dest), "rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}"], env=env
        )
        if code == 0 and output:
            commit = output.splitlines()[-1].strip()
            break
    if commit is None:
        raise BuildFailed(f"the git repository has no branch, tag or commit {source.ref!r}")
    code, output = await run_captured(
        [
            "git",
            "-C",
            str(dest),
            "-c",
            "advice.detachedHead=false",
            "checkout",
            "--quiet",
            "--detach",
            commit,
        ],
        env=env,
        seconds=max(deadline.left(), 1.0),
    )
    if code != 0:
        await log.write(output)
        raise BuildFailed(f"git checkout of {commit} failed (exit status {code})")
    await log.write(f"[dockyard] checked out commit {commit}")
    return await asyncio.to_thread(_locate, source, dest, commit)


def _locate(source: GitSource, dest: Path, commit: str) -> Checkout:
    """The context folder and Dockerfile of the checkout, both inside it."""
    root = dest.resolve()
    context = (root / source.directory).resolve() if source.directory else root
    if not _inside(root, context) or not context.is_dir():
        raise BuildFailed(f"the folder {source.directory!r} does not exist in commit {commit[:12]}")
    dockerfile = (context / source.dockerfile).resolve()
    if not _inside(root, dockerfile) or not dockerfile.is_file():
        where = f"{source.directory}/{source.dockerfile}" if source.directory else source.dockerfile
        raise BuildFailed(f"there is no Dockerfile at {where!r} in commit {commit[:12]}")
    if dockerfile.stat().st_size > MAX_DOCKERFILE:
        raise BuildFailed(f"the Dockerfile is larger than {MAX_DOCKERFILE} bytes")
    return Checkout(commit, context, dockerfile, dockerfile.read_text(errors="replace"))
