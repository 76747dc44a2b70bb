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
        work = ctx.tmp / f"image-{server.name}-{round_no}"
        push, pull, size, _ref = push_and_pull(ctx, work, f"{server.host}/bench/image-{round_no}")
        ctx.results.add("image_push_s", server.name, push, bytes=size)
        ctx.results.add("image_pull_s", server.name, pull)
        ctx.results.add("image_total_s", server.name, push + pull)
        ctx.say(f"image {size / 1e6:,.0f} MB: push {push:.2f} s, pull {pull:.2f} s")


def push_and_pull(ctx: Context, work: Path, repo: str, creds: str = "") -> tuple[float, float, int, str]:
    """A fresh layout (new layers: nothing is already in the registry or skopeo's cache) pushed
    to ``repo`` (``host/path``) and pulled back into ``work``, which is removed after; the
    seconds of each, the image's bytes and its reference (``repo:tag``). ``creds``
    (``user:password``) for skopeo's ``--dest-creds``/``--src-creds`` (it gets a Bearer
    token), else anonymous."""
    cfg = ctx.cfg
    layout_dir, pulled = work / "layout", work / "pulled"
    push_creds = [f"--dest-creds={creds}"] if creds else ["--dest-no-creds"]
    pull_creds = [f"--src-creds={creds}"] if creds else ["--src-no-creds"]
    try:
        layout = build_layout(layout_dir, ctx.source, cfg.image_layers, cfg.layer_size)
        ref = f"docker://{repo}:{layout.tag}"
        os.sync()
        push = skopeo_copy(ctx, "--dest-tls-verify=false", *push_creds, f"oci:{layout_dir}:{layout.tag}", ref)
        pull = skopeo_copy(ctx, "--src-tls-verify=false", *pull_creds, ref, f"oci:{pulled}:{layout.tag}")
        _check_pulled(pulled, layout.layers)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return push, pull, layout.total_bytes, f"{repo}:{layout.tag}"


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
