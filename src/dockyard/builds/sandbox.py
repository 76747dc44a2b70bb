"""What a RUN step of a build may see and reach.

RUN steps run with runc (``buildah bud --isolation oci``), in PID, IPC, UTS, mount, cgroup
and network namespaces of their own, with runc's minimal ``/dev`` (null, zero, full,
random, urandom, tty, ptmx, pts, shm, mqueue) and without CAP_MKNOD, CAP_NET_RAW and
CAP_AUDIT_WRITE (the audit log is not namespaced). ``--isolation chroot``, which builds used
before, shares the server's PID and network namespaces and bind-mounts its ``/dev``: a RUN
step saw every process of the machine with its command line, could create device nodes
for the server's disks, and could connect to the server's loopback services (its own API,
a PostgreSQL with trust authentication). The PID and UTS namespaces are buildah's default
with runc; ``--pid private`` or ``--uts private`` given explicitly make buildah 1.28 add a
bridge interface even with ``--network none``, so they are left out on purpose.

The network is a setting of the definition (:data:`dockyard.builds.spec.NETWORK_MODES`):

- ``none`` (the default): a network namespace with only its own loopback. Base images are
  pulled and the image pushed by buildah itself, outside the RUN steps, so ``FROM`` works
  without it; what a RUN step downloads must come in through the context instead.
- ``egress``: a network namespace held open by a small process (``unshare --net``), wired
  to the outside by slirp4netns, a user-mode network stack: every connection a RUN step
  makes is opened by slirp4netns as an ordinary socket of the server, and
  ``--disable-host-loopback`` refuses those that would land on the server's loopback
  (127.0.0.0/8, also by way of 10.0.2.2). ``--disable-dns`` closes 10.0.2.3, which would
  otherwise lead to the server's resolver on any port; RUN steps use the nameservers
  buildah writes into their ``/etc/resolv.conf``. slirp4netns runs as root and parses the
  build's packets, so it runs sandboxed (``--enable-sandbox``, ``--enable-seccomp``).
  slirp4netns rather than a bridge (CNI) because it needs nothing of the host: no bridge,
  no iptables rules, no ip_forward; and each build gets a network of its own, where on a
  shared bridge concurrent builds could reach each other. Egress still reaches whatever
  the server could reach at other addresses: hosts on its private networks, link-local
  addresses, and this machine's services listening on its non-loopback addresses. Keep
  those behind a firewall if builds must not reach them.

The holder (``cat`` reading a pipe) and slirp4netns (its ``--exit-fd``) both end by
themselves when the worker goes away, even if it is killed; their process groups are
recorded like buildah's for the reaper.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import IO

from dockyard.builds.builder import BuildFailed
from dockyard.builds.spec import NO_NETWORK, NetworkMode

DROPPED_CAPABILITIES = ("MKNOD", "NET_RAW", "AUDIT_WRITE")
SLIRP_MTU = "65520"  # slirp4netns' (and podman's) choice: fewer, larger packets through user space
READY_SECONDS = 30.0  # for the namespace and slirp4netns to come up


def isolation_args(network: str | None) -> list[str]:
    """``buildah bud`` options for RUN steps; ``network`` is a namespace path (egress) or None."""
    return [
        "--isolation", "oci", "--cgroupns", "private",
        "--cap-drop", ",".join(DROPPED_CAPABILITIES),
        "--network", "none" if network is None else f"ns:{network}",
    ]  # fmt: skip


@contextlib.asynccontextmanager
async def run_network(
    mode: NetworkMode, folder: Path, started: Callable[[int], None]
) -> AsyncIterator[str | None]:
    """The network namespace RUN steps join for ``mode``: None for ``none``, else the path
    of a namespace with a way out (see the module's docstring), torn down on exit."""
    if mode == NO_NETWORK:
        yield None
        return
    holder = await _spawn(
        ["unshare", "--net", "--", "sh", "-c", "echo ready && exec cat >/dev/null"],
        started,
        stdin=asyncio.subprocess.PIPE,  # cat ends at EOF: when we close it, or when we die
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        await _holder_ready(holder)
        async with _slirp(holder.pid, folder, started):
            yield f"/proc/{holder.pid}/ns/net"
    finally:
        await _kill(holder)


async def _spawn(
    argv: list[str],
    started: Callable[[int], None],
    *,
    stdin: int | IO[bytes],
    stdout: int | IO[bytes],
    pass_fds: tuple[int, ...] = (),
) -> asyncio.subprocess.Process:
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=stdin,
            stdout=stdout,
            stderr=asyncio.subprocess.STDOUT,
            pass_fds=pass_fds,
            start_new_session=True,
        )
    except FileNotFoundError:
        raise BuildFailed(
            f"network 'egress' needs {argv[0]} on the build server; ask an administrator to install it"
        ) from None
    started(process.pid)
    return process


async def _holder_ready(holder: asyncio.subprocess.Process) -> None:
    assert holder.stdout is not None
    try:
        line = await asyncio.wait_for(holder.stdout.readline(), READY_SECONDS)
    except TimeoutError:
        line = b""
    if line.strip() != b"ready":
        why = line.decode("utf-8", "replace").strip() or "no answer"
        raise BuildFailed(f"could not make a network namespace for the RUN steps: {why}")
    # Never wire slirp4netns into the server's own namespace (it would add a route there).
    if os.stat(f"/proc/{holder.pid}/ns/net").st_ino == os.stat("/proc/self/ns/net").st_ino:
        raise BuildFailed("could not make a network namespace for the RUN steps: unshare did not")


@contextlib.asynccontextmanager
async def _slirp(pid: int, folder: Path, started: Callable[[int], None]) -> AsyncIterator[None]:
    """slirp4netns wired to ``pid``'s network namespace, ready, until the block ends."""
    ready_r, ready_w = os.pipe()
    exit_r, exit_w = os.pipe()  # slirp4netns ends when exit_w closes: at the end, or if we die
    log_path = folder / "slirp4netns.log"
    argv = [
        "slirp4netns", "--configure", "--mtu", SLIRP_MTU,
        "--disable-host-loopback", "--disable-dns", "--enable-sandbox", "--enable-seccomp",
        "--ready-fd", str(ready_w), "--exit-fd", str(exit_r), str(pid), "tap0",
    ]  # fmt: skip
    try:
        with log_path.open("wb") as log:
            process = await _spawn(
                argv, started, stdin=asyncio.subprocess.DEVNULL, stdout=log, pass_fds=(ready_w, exit_r)
            )
    except BaseException:
        os.close(ready_r)
        os.close(exit_w)
        raise
    finally:
        os.close(ready_w)  # the child holds its own copies
        os.close(exit_r)
    try:
        if not await _ready(ready_r):
            await _kill(process)
            why = log_path.read_text(errors="replace").strip().splitlines()
            raise BuildFailed(
                "could not connect the RUN steps' network (slirp4netns): "
                + (why[-1] if why else f"exit status {process.returncode}")
            )
        yield
    finally:
        os.close(exit_w)
        await _kill(process)


async def _ready(fd: int) -> bool:
    """Whether slirp4netns wrote to its ready fd (EOF: it ended first) within the time."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0)
    )
    try:
        return bool(await asyncio.wait_for(reader.read(1), READY_SECONDS))
    except TimeoutError:
        return False
    finally:
        transport.close()  # closes fd


async def _kill(process: asyncio.subprocess.Process) -> None:
    """Kill ``process``'s group (neither holds anything worth a clean ending) and reap it."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(BaseException):
        await asyncio.shield(process.wait())
