"""Workload 8: token issuance (Dockyard only: the reference registry has no token server).

``GET /auth/token`` for a pull scope with Basic credentials, ``manifest_connections`` (64)
concurrent hey clients for ``manifest_seconds``, three ways of signing in: a robot token, a
personal access token and a password. Every answer must be 200: a refusal (a 429 of the login
throttle, say) is an error of the run, not a token. Runs on the archive workloads' token-mode
Dockyard (started here if they did not run), set up by :class:`bench.token_auth.Target`.
"""

from __future__ import annotations

from bench import loadtools
from bench.servers import DOCKYARD, Server
from bench.token_auth import Target
from bench.workloads.archives import ArchiveLab
from bench.workloads.base import Context

KINDS = {"robot": "robot token", "pat": "personal access token", "password": "password"}


class TokenIssuance:
    name = "token-issuance"
    phase = "tokens"

    def __init__(self, lab: ArchiveLab) -> None:
        self.lab = lab
        self.target: Target | None = None

    def prepare(self, ctx: Context, server: Server) -> None:
        if server.name == DOCKYARD and self.target is None:
            self.target = Target("tokens", self.lab.api_server(ctx))

    def run(self, ctx: Context, server: Server, round_no: int) -> None:
        if server.name != DOCKYARD or self.target is None:
            return  # the reference has no token server: nothing to compare
        cfg, target = ctx.cfg, self.target
        url = f"{target.server.url}{target.token_path('pull')}"
        for kind, label in KINDS.items():
            headers = {"Authorization": getattr(target, kind)}
            # A password login that is not remembered costs argon2 (~30 ms): a long timeout.
            res = loadtools.hey_get(url, headers, cfg.manifest_connections, cfg.manifest_seconds, 60)
            if res.requests == 0 or res.errors:
                raise RuntimeError(
                    f"token issuance ({label}): {res.errors} errors in {res.requests} requests"
                )
            ctx.results.add(f"tokens_{kind}_rps", DOCKYARD, res.rps, **res.as_dict())
            ctx.results.add(f"tokens_{kind}_p99", DOCKYARD, res.p99_ms)
            ctx.say(f"tokens ({label}) {res.rps:,.0f}/s, p99 {res.p99_ms:.1f} ms")
