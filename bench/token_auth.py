"""``python -m bench.token_auth``: manifests with Docker token auth, and token issuance.

What ``docker pull`` does on a token-mode Dockyard, beside the load tools' ceiling:

- **manifest HEAD (hey) and GET (wrk) with a Bearer token** for a private repository (a small
  OCI image in a workspace of its own; an anonymous HEAD must answer 401), 64 connections;
- **token issuance**: ``GET /auth/token`` with Basic credentials for a pull scope, 64
  concurrent hey clients, for a robot token, a personal access token and a password;
- **the ceiling**: the same hey and wrk commands against ``bench/trivial_server.py``
  answering a fixed manifest, in the same round.

``--db postgres`` gives each server a PostgreSQL database of its own (created on ``--pg``,
default ``$DOCKYARD_TEST_PG``, and dropped at the end) instead of SQLite in its data dir.

``--baseline-src DIR`` also runs a second Dockyard from another source tree (for example
``git archive main src | tar -x -C /tmp/base``), alternating with this tree's in every round:
before and after figures of a change measured in one run on the same loaded machine. Dockyard
only: the reference registry has no token server here. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import statistics
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from urllib.parse import quote

from bench import loadtools, machine, servers
from bench.api_client import ApiClient
from bench.limits import trivial_server
from bench.registry_client import OCI_MANIFEST, RegistryClient, small_image

WORKSPACE = "benchws"
REPO = f"{WORKSPACE}/manifest"
TAG = "bench"
ACCEPT = {"Accept": OCI_MANIFEST}


def basic(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


class Target:
    """A token-mode Dockyard with a private image, a robot and a personal access token."""

    def __init__(self, name: str, server: servers.Server) -> None:
        self.name = name
        self.server = server
        creds = server.credentials
        assert creds is not None
        api = ApiClient(server.port, creds)
        api.create_workspace(WORKSPACE)
        api.call("POST", f"/workspaces/{WORKSPACE}/robots", {"name": "puller"}, (201,))
        api.call(
            "PUT",
            f"/workspaces/{WORKSPACE}/robots/puller/permissions",
            {"repository": None, "role": "reader"},
        )
        made = api.call("POST", f"/workspaces/{WORKSPACE}/robots/puller/tokens", {"name": "t"}, (201,))
        self.robot = basic(f"{WORKSPACE}+puller", str(made["secret"]))
        self.pat = basic(creds[0], api.create_token("bench"))
        self.password = basic(*creds)
        api.close()
        with RegistryClient(server.port) as anon:
            challenge = anon.request("HEAD", f"/v2/{REPO}/manifests/{TAG}").header("WWW-Authenticate") or ""
        self.service = challenge.split('service="', 1)[1].split('"', 1)[0]
        push = self.token(self.password, "pull,push")
        with RegistryClient(server.port, 60.0, f"Bearer {push}") as client:
            small_image(client, REPO, TAG)
        with RegistryClient(server.port) as anon:
            status = anon.request("HEAD", f"/v2/{REPO}/manifests/{TAG}", ACCEPT).status
        if status != 401:
            raise RuntimeError(f"anonymous HEAD of the private manifest answered {status}, not 401")
        self.bearer = {**ACCEPT, "Authorization": f"Bearer {self.token(self.robot, 'pull')}"}

    def token_path(self, actions: str) -> str:
        return f"/auth/token?service={quote(self.service)}&scope=repository:{REPO}:{actions}"

    def token(self, authorization: str, actions: str) -> str:
        with RegistryClient(self.server.port, 60.0, authorization) as client:
            resp = client.request("GET", self.token_path(actions))
        if resp.status != 200:
            raise RuntimeError(f"token endpoint answered {resp.status}: {resp.body[:300]!r}")
        return str(json.loads(resp.body)["token"])


def run_round(
    targets: list[Target], ceiling_url: str, conns: int, secs: int, out: dict[str, list[float]]
) -> None:
    head = loadtools.hey_head(ceiling_url, ACCEPT, conns, 3)
    get = loadtools.wrk_get(ceiling_url, ACCEPT, conns, 3)
    out["ceiling HEAD req/s"].append(head.rps)
    out["ceiling GET req/s"].append(get.rps)
    for t in targets:
        url = f"{t.server.url}/v2/{REPO}/manifests/{TAG}"
        for method, tool in (("HEAD", loadtools.hey_head), ("GET", loadtools.wrk_get)):
            res = tool(url, t.bearer, conns, secs)
            if res.requests == 0 or res.errors > res.requests // 100:
                raise RuntimeError(f"{t.name} manifest {method}: {res.errors} errors in {res.requests}")
            out[f"{t.name} manifest {method} req/s"].append(res.rps)
            out[f"{t.name} manifest {method} p99 ms"].append(res.p99_ms)
        for kind in ("robot", "pat", "password"):
            headers = {"Authorization": getattr(t, kind)}
            # Password logins queue behind argon2 (~30 ms of CPU each): a long client timeout.
            res = loadtools.hey_get(f"{t.server.url}{t.token_path('pull')}", headers, conns, secs, 60)
            if res.requests == 0:
                raise RuntimeError(f"{t.name} token ({kind}): no answer")
            out[f"{t.name} tokens/s {kind}"].append(res.rps)
            out[f"{t.name} tokens/s {kind} p99 ms"].append(res.p99_ms)
            out[f"{t.name} tokens/s {kind} errors"].append(res.errors)
        print(f"  {t.name}: round done", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.token_auth", description=__doc__)
    p.add_argument("--rounds", type=int, default=3, choices=range(1, 11), metavar="1-10")
    p.add_argument("--seconds", type=int, default=5, choices=range(1, 61), metavar="1-60")
    p.add_argument("--connections", type=int, default=64, choices=range(1, 513), metavar="1-512")
    p.add_argument("--baseline-src", type=Path, default=None, help="a second source tree to run beside")
    p.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite", help="the servers' database")
    p.add_argument("--pg", default=servers.PG_DEFAULT, help="PostgreSQL URL (default $DOCKYARD_TEST_PG)")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    busy = machine.busy_fraction(1.0)
    print(f"CPUs {busy:.0%} busy before the run (other work makes every figure noisy); database {args.db}")
    out: dict[str, list[float]] = defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="bench-token-") as tmp, contextlib.ExitStack() as stack:
        targets: list[Target] = []
        sources = [("this", servers.REPO_ROOT / "src")]
        if args.baseline_src is not None:
            sources.insert(0, ("baseline", args.baseline_src.resolve()))
        for name, src in sources:
            url = stack.enter_context(servers.metadata_database(args.db, args.pg))
            base = Path(tmp) / name
            server = servers.start_dockyard(base, name, token_mode=True, database_url=url, src=src)
            stack.callback(server.stop)
            targets.append(Target(name, server))
        port = stack.enter_context(trivial_server("static"))
        ceiling_url = f"http://127.0.0.1:{port}/v2/{REPO}/manifests/{TAG}"
        for n in range(args.rounds):
            print(f"round {n + 1}/{args.rounds}", flush=True)
            order = targets if n % 2 == 0 else targets[::-1]
            run_round(order, ceiling_url, args.connections, args.seconds, out)
    print(f"\nmedians of {args.rounds} round(s), {args.connections} connections, {args.seconds} s runs")
    med = {k: statistics.median(v) for k, v in out.items()}
    for key in sorted(med):
        extra = ""
        for method in ("HEAD", "GET"):
            if f"manifest {method} req/s" in key:
                extra = f"  ({med[key] / med[f'ceiling {method} req/s']:.0%} of the ceiling)"
        spread = f"min {min(out[key]):,.1f} max {max(out[key]):,.1f}"
        print(f"{key:36} {med[key]:>10,.1f}{extra}   [{spread}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
