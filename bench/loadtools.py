"""External clients: curl for blob downloads, wrk for GET load, hey for HEAD load.

Debian's wrk 4.1 waits for a body after HEAD (it hangs), and so does ``h2load --h1``;
``ab`` speaks HTTP/1.0 keep-alive, which not every server honours. ``hey`` (Debian package
``hey``) does HEAD correctly and reports percentiles, so HEAD load uses hey.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

WRK_SCRIPT = r"""
wrk.method = "GET"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d status_errors=%d socket_errors=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


class ToolError(RuntimeError):
    pass


@dataclass(frozen=True)
class LoadResult:
    tool: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int  # non-2xx answers and socket errors

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def require(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise ToolError(f"{tool} is missing: apt-get install -y --no-install-recommends {package}")
    return path


def _run(argv: list[str], timeout: float) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ToolError(f"{argv[0]} did not finish within {timeout:.0f}s") from exc
    if out.returncode != 0:
        raise ToolError(f"{' '.join(argv[:3])}... exited {out.returncode}: {out.stderr.strip()[-500:]}")
    return out.stdout


def curl_get(
    url: str,
    expected_size: int,
    clients: int,
    repeats: int,
    timeout: float,
    headers: dict[str, str] | None = None,
) -> float:
    """``clients`` concurrent curl processes, each downloading ``url`` ``repeats`` times
    on one connection into /dev/null. Returns aggregate bytes per second (wall clock)."""
    return curl_many([url] * repeats, [expected_size] * repeats, clients, timeout, headers)


def curl_many(
    urls: list[str],
    sizes: list[int],
    clients: int,
    timeout: float,
    headers: dict[str, str] | None = None,
) -> float:
    """``clients`` concurrent curl processes, each downloading ``urls`` one after the other on
    one connection into /dev/null; each answer must be 200 with its size from ``sizes``.
    Returns aggregate bytes per second (wall clock)."""
    curl = require("curl", "curl")
    argv = [curl, "-s", "-S", "-L", "--max-time", str(int(timeout)), "-w", "%{http_code} %{size_download}\\n"]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    for url in urls:
        argv += ["-o", "/dev/null", url]
    repeats = len(urls)
    start = time.perf_counter()
    procs = [
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(clients)
    ]
    outputs: list[tuple[int, str, str]] = []
    try:
        for proc in procs:
            stdout, stderr = proc.communicate(timeout=timeout + 10)
            outputs.append((proc.returncode, stdout, stderr))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    elapsed = time.perf_counter() - start
    for code, stdout, stderr in outputs:
        lines = stdout.split()
        answers = list(zip(lines[0::2], lines[1::2], strict=True))
        if code != 0 or len(answers) != repeats:
            raise ToolError(f"curl exited {code}: {stderr.strip()[-300:]}")
        for (status, size), url, expected in zip(answers, urls, sizes, strict=True):
            if status != "200" or int(size) != expected:
                raise ToolError(f"GET {url}: HTTP {status}, {size} bytes (expected {expected})")
    return clients * sum(sizes) / elapsed


def wrk_get(url: str, headers: dict[str, str], connections: int, seconds: int) -> LoadResult:
    wrk = require("wrk", "wrk")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    try:
        argv = [wrk, f"-t{min(os.cpu_count() or 2, connections)}", f"-c{connections}", f"-d{seconds}s"]
        argv += ["--timeout", "5s", "-s", script.name]
        for name, value in headers.items():
            argv += ["-H", f"{name}: {value}"]
        stdout = _run([*argv, url], timeout=seconds + 30)
    finally:
        Path(script.name).unlink(missing_ok=True)
    match = re.search(r"^BENCH (.*)$", stdout, re.MULTILINE)
    if match is None:
        raise ToolError(f"wrk printed no summary:\n{stdout[-500:]}")
    fields = {k: int(v) for k, v in (kv.split("=") for kv in match.group(1).split())}
    secs = fields["duration_us"] / 1e6
    return LoadResult(
        tool="wrk",
        requests=fields["requests"],
        seconds=secs,
        rps=fields["requests"] / secs if secs else 0.0,
        p50_ms=fields["p50_us"] / 1000,
        p99_ms=fields["p99_us"] / 1000,
        errors=fields["status_errors"] + fields["socket_errors"],
    )


def hey_head(url: str, headers: dict[str, str], connections: int, seconds: int) -> LoadResult:
    return hey_run("HEAD", url, headers, connections, seconds)


def hey_get(
    url: str, headers: dict[str, str], connections: int, seconds: int, timeout: int = 5
) -> LoadResult:
    return hey_run("GET", url, headers, connections, seconds, timeout)


def hey_run(
    method: str, url: str, headers: dict[str, str], connections: int, seconds: int, timeout: int = 5
) -> LoadResult:
    """hey for ``seconds``; a request not answered within ``timeout`` seconds is an error."""
    hey = require("hey", "hey")
    argv = [hey, "-z", f"{seconds}s", "-c", str(connections), "-m", method, "-t", str(timeout)]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    stdout = _run([*argv, url], timeout=seconds + timeout + 30)

    def number(pattern: str, missing: float | None = None) -> float:
        found = re.search(pattern, stdout)
        if found is None and missing is not None:
            return missing
        if found is None:
            raise ToolError(f"hey output lacks {pattern!r}:\n{stdout[-800:]}")
        return float(found.group(1))

    statuses = {int(code): int(n) for code, n in re.findall(r"\[(\d{3})\]\s+(\d+) responses", stdout)}
    ok = sum(n for code, n in statuses.items() if 200 <= code < 300)
    failed = sum(n for code, n in statuses.items() if code >= 300)
    _, _, error_part = stdout.partition("Error distribution:")
    socket_errors = sum(int(n) for n in re.findall(r"^\s+\[(\d+)\]", error_part, re.MULTILINE))
    total_secs = number(r"Total:\s+([\d.]+) secs")
    return LoadResult(
        tool="hey",
        requests=ok + failed,
        seconds=total_secs,
        rps=number(r"Requests/sec:\s+([\d.]+)"),
        p50_ms=number(r"50%+ in ([\d.]+) secs") * 1000,
        # hey prints no 99th percentile for fewer than 100 answers (slow password logins): NaN.
        p99_ms=number(r"99%+ in ([\d.]+) secs", math.nan) * 1000,
        errors=failed + socket_errors,
    )


def versions() -> dict[str, str]:
    found: dict[str, str] = {}
    for tool, argv in {
        "curl": ["curl", "--version"],
        "wrk": ["wrk", "-v"],
        "skopeo": ["skopeo", "--version"],
    }.items():
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
            found[tool] = ((out.stdout or out.stderr).strip().splitlines() or ["?"])[0]
        except OSError:
            found[tool] = "missing"
    found["hey"] = _dpkg_version("hey")
    return found


def _dpkg_version(package: str) -> str:
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", package],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except OSError:
        return "unknown"
    return f"{package} {out.stdout.strip()}" if out.returncode == 0 else "missing"
