"""Workload 4: push and pull a whole multi-layer OCI image with skopeo (wall time)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from bench.data import build_layout
from bench.loadtools import ToolError, require
from bench.servers import Server
from bench.workloads.base import Context


class Image:
    name = "image"
    phase = "image"

    def prepare(self, ctx: Context, server: Server) -> None:
        require("skopeo", "skopeo")

    def run(self, ctx: Context, server: Server, round_no: int) -> None:
        cfg = ctx.cfg
        work = ctx.tmp / f"image-{server.name}-{round_no}"
        layout_dir, pulled = work / "layout", work / "pulled"
        try:
            # Fresh layers for every push: nothing is already in the registry or skopeo's cache.
            layout = build_layout(layout_dir, ctx.source, cfg.image_layers, cfg.layer_size)
            ref = f"docker://{server.host}/bench/image-{round_no}:{layout.tag}"
            os.sync()
            push = skopeo_copy(
                ctx, "--dest-tls-verify=false", "--dest-no-creds", f"oci:{layout_dir}:{layout.tag}", ref
            )
            pull = skopeo_copy(
                ctx, "--src-tls-verify=false", "--src-no-creds", ref, f"oci:{pulled}:{layout.tag}"
            )
            _check_pulled(pulled, layout.layers)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        ctx.results.add("image_push_s", server.name, push, bytes=layout.total_bytes)
        ctx.results.add("image_pull_s", server.name, pull)
        ctx.results.add("image_total_s", server.name, push + pull)
        mb = layout.total_bytes / 1e6
        ctx.say(f"image {mb:,.0f} MB: push {push:.2f} s, pull {pull:.2f} s")


def skopeo_copy(ctx: Context, *args: str) -> float:
    """``skopeo copy --quiet ARGS`` (the last two: source and destination); its wall time.

    An empty auth file and ``TMPDIR`` in the run's scratch folder: no login or layer of the
    user's is used."""
    auth = ctx.tmp / "auth.json"
    if not auth.exists():
        auth.write_text('{"auths": {}}')
    env = dict(os.environ, REGISTRY_AUTH_FILE=str(auth), TMPDIR=str(ctx.tmp))
    argv = [require("skopeo", "skopeo"), "--insecure-policy", "copy", "--quiet", *args]
    start = time.perf_counter()
    try:
        out = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=ctx.cfg.skopeo_timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise ToolError(f"skopeo copy took over {ctx.cfg.skopeo_timeout:.0f}s") from exc
    elapsed = time.perf_counter() - start
    if out.returncode != 0:
        raise ToolError(f"skopeo copy {args[-2]} {args[-1]}: {out.stderr.strip()[-600:]}")
    return elapsed


def _check_pulled(layout: Path, layers: int) -> None:
    blobs = list((layout / "blobs" / "sha256").iterdir())
    if len(blobs) < layers + 2:
        raise RuntimeError(f"pulled image has {len(blobs)} blobs, expected {layers + 2}")
