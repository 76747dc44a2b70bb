"""Run the ASGI app under uvicorn (uvloop, httptools), with zero-copy file responses.

uvicorn has no ``http.response.zerocopy`` support, so Dockyard ships a small subclass of
its httptools protocol that adds it: a handler sends ``{"type": "http.response.zerocopy",
"file": f, "offset": o, "count": n}`` after the response start, and the kernel copies the
file to the socket with ``os.sendfile``. uvloop has no native ``loop.sendfile``, so the
protocol does it itself: once the transport's buffer is empty, worker threads call
``sendfile`` in bounded steps on a duplicate of the socket's descriptor (never the
descriptor itself: should the client go away, uvloop closes its descriptor and the next
connection may get the same number, while the duplicate still names the old socket), and
the event loop waits for the socket to become writable between steps, so a client that
stops reading holds no thread. Nothing else writes to this socket until the response is
complete, since its ASGI cycle is waiting.

The same subclass receives request bodies in larger steps (fewer event-loop round trips)
without uvicorn's extra copy of each step,
and sets TCP_NODELAY itself: with several workers uvicorn hands each process the listening
socket rebuilt from its descriptor, whose ``proto`` reads 0, so asyncio's own check skips
it, and small responses (written as head and body) then wait ~40 ms on Nagle and delayed
ACKs (measured: 1,430 req/s with two workers, 3,600 with one, before this).

Worker processes die with the supervisor: should it be killed outright (``kill -9``, the
OOM killer), uvicorn has no chance to stop them, and orphaned workers would keep the port,
so that a restart fails with "address already in use". Each worker asks the kernel for
SIGTERM when its parent dies (Linux ``PR_SET_PDEATHSIG``), and then checks that its parent
is still the supervisor, since one that died before the request sends nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import select
import shutil
import signal
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from dockyard.settings import Settings

if TYPE_CHECKING:
    from dockyard.app.asgi import Dockyard

log = logging.getLogger("dockyard.server")

ZEROCOPY = "http.response.zerocopy"
BODY_HIGH_WATER = 1024 * 1024
SEND_TIMEOUT = 60.0  # seconds: a client that reads nothing for this long is dropped
SEND_STEP = 64 * 1024 * 1024  # bytes per thread hand-off at most
STEP_PATIENCE_MS = 20  # how long a step thread waits for a full socket before handing back

SUPERVISOR_ENV = "DOCKYARD_SUPERVISOR_PID"  # set by run() for the worker processes it starts
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

_sendfile_threads: ThreadPoolExecutor | None = None


def _threads() -> ThreadPoolExecutor:
    global _sendfile_threads
    if _sendfile_threads is None:
        _sendfile_threads = ThreadPoolExecutor(max_workers=64, thread_name_prefix="sendfile")
    return _sendfile_threads


def sendfile_step(out_fd: int, in_fd: int, offset: int, count: int) -> int:
    """Send up to ``min(count, SEND_STEP)`` bytes. When the socket stays full for
    ``STEP_PATIENCE_MS`` the step ends early (0 if nothing went), so a slow reader never
    holds a thread for long; a fast one rarely makes the thread hand back at all."""
    sent = 0
    limit = min(count, SEND_STEP)
    poller = select.poll()
    poller.register(out_fd, select.POLLOUT)
    while sent < limit:
        try:
            n = os.sendfile(out_fd, in_fd, offset + sent, limit - sent)
        except BlockingIOError:
            if poller.poll(STEP_PATIENCE_MS):
                continue
            break
        if n == 0:
            raise ConnectionError("the file ended early or the peer closed")
        sent += n
    return sent


async def writable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_writer(fd, wake)
    try:
        await asyncio.wait_for(ready, SEND_TIMEOUT)
    finally:
        loop.remove_writer(fd)


async def send_file(
    loop: asyncio.AbstractEventLoop, sock_fd: int, in_fd: int, offset: int, count: int
) -> None:
    """Copy ``count`` bytes of ``in_fd`` from ``offset`` to the (non-blocking) socket."""
    out_fd = os.dup(sock_fd)
    try:
        end = offset + count
        while offset < end:
            sent = await loop.run_in_executor(_threads(), sendfile_step, out_fd, in_fd, offset, end - offset)
            if sent == 0:
                try:
                    await writable(loop, out_fd)
                except TimeoutError:
                    raise ConnectionError("the client stopped reading") from None
            offset += sent
    finally:
        os.close(out_fd)


class ZeroCopyHttpToolsProtocol(HttpToolsProtocol):
    # uvicorn narrows BaseProtocol's BaseTransport to Transport; we keep its signature.
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        cycle.scope.setdefault("extensions", {})[ZEROCOPY] = {}
        plain_send = cycle.send
        loop = self.loop

        async def send(message: dict[str, Any]) -> None:
            if message["type"] != ZEROCOPY:
                await plain_send(message)
                return
            transport = cycle.transport
            count = int(message["count"])
            if cycle.scope["method"] != "HEAD" and count:
                # Wait until the response head has left the transport's buffer: with a
                # high-water mark of 0 the transport pauses us while anything is queued.
                transport.set_write_buffer_limits(high=0)
                try:
                    if cycle.flow.write_paused:
                        await cycle.flow.drain()
                finally:
                    transport.set_write_buffer_limits()
                if cycle.disconnected:
                    return
                sock_fd = transport.get_extra_info("socket").fileno()
                in_fd = message["file"].fileno()
                offset = int(message.get("offset", 0))
                try:
                    await send_file(loop, sock_fd, in_fd, offset, count)
                except (ConnectionError, OSError) as exc:
                    log.info("client went away during a file response: %s", exc)
                    cycle.disconnected = True
                    transport.close()
                    return
                cycle.expected_content_length -= count
            await plain_send(
                {"type": "http.response.body", "body": b"", "more_body": message.get("more_body", False)}
            )

        async def receive() -> dict[str, Any]:
            # uvicorn's own receive copies the body (bytes(bytearray)) on every step; this one
            # hands the bytearray over and starts a new one (same protocol otherwise).
            if cycle.waiting_for_100_continue and not cycle.transport.is_closing():
                cycle.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                cycle.waiting_for_100_continue = False
            if not cycle.disconnected and not cycle.response_complete:
                cycle.flow.resume_reading()
                await cycle.message_event.wait()
                cycle.message_event.clear()
            if cycle.disconnected or cycle.response_complete:
                return {"type": "http.disconnect"}
            body, cycle.body = cycle.body, bytearray()
            return {"type": "http.request", "body": body, "more_body": cycle.more_body}

        async def run(scope: Any, _receive: Any, _send: Any) -> None:
            await app(scope, receive, send)

        # Handed to the app rather than stored on ``cycle``: ``cycle.send = send`` would make a
        # reference cycle (cycle -> send -> cycle) per request, which only the garbage
        # collector frees, and its full collections (70-100 ms) were what set the p99.
        super()._start_asgi_task(cycle, run)

    def on_body(self, body: bytes) -> None:
        if (self.parser.should_upgrade() and self._should_upgrade()) or self.cycle.response_complete:
            return
        self.cycle.body += body
        if len(self.cycle.body) > BODY_HIGH_WATER:
            self.flow.pause_reading()
        self.cycle.message_event.set()


def die_with_parent(supervisor: int) -> None:
    """Have the kernel send SIGTERM to this process when its parent dies (a graceful stop:
    the listening socket closes first, running jobs go back to the queue); exit now if the
    parent is no longer ``supervisor`` (it died before the request could take effect)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != supervisor:
        raise SystemExit(f"the server's supervisor process {supervisor} is gone; worker {os.getpid()} stops")


def worker_app() -> Dockyard:
    """The app factory that uvicorn calls in each server process."""
    supervisor = os.environ.get(SUPERVISOR_ENV)
    if supervisor and int(supervisor) != os.getpid():
        die_with_parent(int(supervisor))
    # Imported here: the supervisor process never loads the application (less memory).
    from dockyard.app.asgi import from_environment

    app = from_environment()
    app.freeze_gc = True
    return app


def prepare_environment(settings: Settings) -> None:
    """Export settings for worker processes and reset the multi-process metrics folder.

    glibc's allocator is told (for the workers, which read it at start) to keep few
    per-thread arenas: the hashing, writing and sendfile threads would otherwise each get
    an arena that stays resident after the transfers that used it.
    """
    os.environ.update(settings.to_env())
    os.environ.setdefault("MALLOC_ARENA_MAX", "2")
    metrics_dir = settings.data_dir.resolve() / ".metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)


def run(settings: Settings) -> None:
    import uvicorn

    prepare_environment(settings)
    if settings.effective_workers > 1:
        os.environ[SUPERVISOR_ENV] = str(os.getpid())
    else:  # uvicorn serves in this very process: its parent is the user's shell
        os.environ.pop(SUPERVISOR_ENV, None)
    uvicorn.run(
        "dockyard.app.serving:worker_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.effective_workers,
        loop="uvloop",
        http=ZeroCopyHttpToolsProtocol,
        lifespan="on",
        access_log=False,
        proxy_headers=False,  # X-Forwarded-For is read only from trusted_proxies (ops/forwarded.py)
        log_config=None,
        timeout_keep_alive=30,
        timeout_graceful_shutdown=10,
        # uvicorn kills a worker that does not answer its supervisor's ping in time; a worker
        # answers only once it has imported the application (~2 s of CPU), which on a loaded
        # machine took over uvicorn's default of 5 s and killed healthy workers at start-up.
        timeout_worker_healthcheck=30,
    )
