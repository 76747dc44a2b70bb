"""The catalog commands of the ``dockyard`` CLI (``image``, ``workspace usage``/``policy``,
``credentials``), run as a user runs them: subprocesses with their own config file against a
token-mode server, with images pushed over the Distribution API as that user."""

from __future__ import annotations

import gzip
import json
import os
import re
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import Cli
from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, oci_as, unique
from tests.support.oci import OCI_CONFIG, OCI_LAYER, Blob, Manifest, encode, oci_manifest
from tests.support.servers import RunningRegistry

INSPECTION_DEADLINE = 60.0  # seconds a pushed version may stay pending (inspected in the background)
LAYER_BYTES = 1_500_000  # stored uncompressed in the gzip stream, so both sizes read "1.5 MB"

Json = dict[str, Any]


@pytest.fixture(scope="module")
def admin(token_registry: RunningRegistry, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    made = Cli(token_registry, tmp_path_factory.mktemp("admin") / "cli.toml")
    made.ok("login", token_registry.url, "-u", ADMIN, "--password-stdin", stdin=ADMIN_PASSWORD + "\n")
    return made


@pytest.fixture
def me(admin: Cli, token_registry: RunningRegistry, tmp_path: Path) -> Cli:
    """A fresh user, logged in with the CLI."""
    name = unique("cataloguer")
    admin.ok("user", "create", name, "--password-stdin", stdin=PASSWORD + "\n")
    made = Cli(token_registry, tmp_path / "me" / "cli.toml")
    made.ok("login", token_registry.url, "-u", name, "--password-stdin", stdin=PASSWORD + "\n")
    return made


def username(cli: Cli) -> str:
    name: str = cli.json("whoami")["username"]
    return name


def new_workspace(cli: Cli, label: str) -> str:
    name = unique(label)
    cli.ok("workspace", "create", name)
    return name


def config_for(architecture: str) -> Blob:
    document = {
        "architecture": architecture,
        "os": "linux",
        "config": {"Labels": {"test.nonce": unique("config")}},
        "rootfs": {"type": "layers", "diff_ids": []},
    }
    return Blob(encode(document), OCI_CONFIG)


def stored_layer() -> Blob:
    """A gzip layer of random bytes stored without compression: both its sizes are ~1.5 MB."""
    return Blob(gzip.compress(os.urandom(LAYER_BYTES), compresslevel=0, mtime=0), OCI_LAYER)


def push(registry: RunningRegistry, user: str, repository: str, tag: str, manifest: Manifest) -> None:
    with oci_as(registry, user, PASSWORD) as oci:
        response = oci.push(repository, manifest, tag)
        assert response.status_code == 201, f"{response.status_code} {response.text[:300]}"


def wait_inspected(cli: Cli, image: str, version: str) -> Json:
    """Poll ``image show --json`` until the version is no longer ``pending``."""
    deadline = time.monotonic() + INSPECTION_DEADLINE
    while True:
        done = cli.run("image", "show", image, "--json")
        if done.returncode == 0:
            versions: dict[str, Json] = {v["version"]: v for v in json.loads(done.stdout)["versions"]}
            found = versions.get(version)
            if found is not None and found["status"] != "pending":
                return found
        assert time.monotonic() < deadline, (
            f"{image}:{version} was not inspected within {INSPECTION_DEADLINE}s:\n{done.stdout}{done.stderr}"
        )
        time.sleep(0.1)


def row(table: str, first: str) -> list[str]:
    """The cells of the table line whose first cell is ``first`` (cells hold no spaces here)."""
    found = [line.split() for line in table.splitlines() if line.split()[:1] == [first]]
    assert len(found) == 1, f"expected one row for {first!r} in:\n{table}"
    return found[0]


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_pushed_image_listed_shown_resolved_runnable_and_measured(
    me: Cli, token_registry: RunningRegistry
) -> None:
    user, ws = username(me), new_workspace(me, "lab")
    image = f"{ws}/aligner"
    layer = stored_layer()
    first, second = config_for("amd64"), config_for("amd64")
    v1 = oci_manifest(first, [layer])
    push(token_registry, user, image, "1.0", v1)

    found = wait_inspected(me, image, "1.0")
    assert found["status"] == "available", found
    assert (found["source"], found["platforms"], found["has_amd64"]) == ("internal", ["linux/amd64"], True)
    assert found["digest"] == v1.digest
    assert found["compressed_size"] == first.size + layer.size
    assert found["uncompressed_size"] == first.size + LAYER_BYTES

    # The list has a Source column and counts what it shows.
    listed = me.ok("image", "list", "--workspace", ws)
    assert row(listed, "NAME")[:3] == ["NAME", "SOURCE", "TYPE"]
    assert row(listed, image)[1:4] == ["internal", "tool", "1.0"]
    assert "1 of 1 image" in listed
    assert me.json("image", "list", "--workspace", ws, "--source", "external")["total"] == 0
    page = me.json("image", "list", "--workspace", ws, "--status", "available", "--platform", "linux/amd64")
    assert [i["name"] for i in page["items"]] == [image]

    shown = me.ok("image", "show", image)
    assert row(shown, "1.0") == [
        "1.0", "internal", "tool", "available", "linux/amd64", "yes", "1.5", "MB", "1.5", "MB",
        v1.digest[:19],
    ]  # fmt: skip
    built = [line for line in shown.splitlines() if line.startswith("built:")]
    assert len(built) == 1, shown
    assert built[0].endswith(f" by {user}"), shown

    # resolve prints only the pinned reference, ready for docker pull $(...).
    resolved = me.run("image", "resolve", f"{image}:1.0")
    assert resolved.returncode == 0, resolved.stderr
    assert resolved.stdout == f"{token_registry.host}/{image}@{v1.digest}\n"
    assert me.json("image", "resolve", f"{image}:1.0")["digest"] == v1.digest
    bad = me.fails("image", "resolve", image)
    assert bad.returncode == 2
    assert "NAME:VERSION" in bad.stderr

    runnable = me.ok("image", "runnable", "--workspace", ws)
    assert row(runnable, image)[1:5] == ["1.0", "internal", "tool", "available"]
    assert f"{token_registry.host}/{image}@{v1.digest}" in runnable
    assert [(r["image"], r["pull"]) for r in me.json("image", "runnable", "--workspace", ws)] == [
        (image, f"{token_registry.host}/{image}@{v1.digest}")
    ]

    # This server, as a public upstream, verifies the image registered as an external one.
    me.ok("repo", "visibility", image, "public")
    me.ok("image", "add", f"{token_registry.host}/{image}:1.0", "-w", ws, "--name", "mirror")
    checked = me.ok("image", "verify", f"{ws}/mirror", "1.0")
    assert f"{ws}/mirror:1.0 is reachable" in checked
    assert f"  digest: {v1.digest}\n  platforms: linux/amd64\n  size: 1.5 MB\n" in checked
    assert me.ok("image", "resolve", f"{ws}/mirror:1.0") == f"{token_registry.host}/{image}@{v1.digest}\n"

    # A second version shares the layer: the image counts it once.
    push(token_registry, user, image, "2.0", oci_manifest(second, [layer]))
    assert wait_inspected(me, image, "2.0")["status"] == "available"
    usage = me.json("image", "usage", image)
    assert usage["bytes"] == layer.size + first.size + second.size
    assert {v["version"]: v["bytes"] for v in usage["versions"]} == {
        "1.0": layer.size + first.size,
        "2.0": layer.size + second.size,
    }
    printed = me.ok("image", "usage", image)
    assert f"{image}: 1.5 MB stored" in printed
    assert row(printed, "2.0") == ["2.0", "1.5", "MB"]
    assert me.json("workspace", "usage", ws)["bytes"] == usage["bytes"]
    printed = me.ok("workspace", "usage", ws)
    assert f"{ws}: 1.5 MB stored" in printed
    assert row(printed, image)[1:3] == ["1.5", "MB"]

    kinds = [e["kind"] for e in me.json("image", "events", image)]
    assert {"created", "pushed", "inspected"} <= set(kinds)
    assert "pushed" in me.ok("image", "events", image)
    # A change is history with what it was and what it became.
    me.ok("image", "set", image, "2.0", "--region", "eu", "--region", "us")
    modified = [line for line in me.ok("image", "events", image).splitlines() if " modified " in line]
    assert len(modified) == 2  # newest first: the regions, then 'repo visibility' above
    assert re.search(r" 2\.0 +regions: none -> eu, us$", modified[0].rstrip()), modified
    assert re.search(r" - +visibility: private -> public$", modified[1].rstrip()), modified


def test_arm64_only_push_flagged_and_refused_by_policy(me: Cli, token_registry: RunningRegistry) -> None:
    user, ws = username(me), new_workspace(me, "arm")
    image = f"{ws}/armtool"
    assert "allowed" in me.ok("workspace", "policy", ws)
    push(token_registry, user, image, "1.0", oci_manifest(config_for("arm64"), [stored_layer()]))
    found = wait_inspected(me, image, "1.0")
    assert (found["status"], found["has_amd64"]) == ("available", False)
    shown = me.ok("image", "show", image)
    assert "NO" in row(shown, "1.0")
    lines = shown.splitlines()
    heading = lines.index("1.0:")
    assert "warning: this image has no linux/amd64 platform" in lines[heading + 1]
    assert "docker buildx build --platform linux/amd64,linux/arm64" in lines[heading + 1]

    # The owner turns the policy on: the next arm64-only push is refused, with the reason,
    assert "refused" in me.ok("workspace", "policy", ws, "--require-amd64")
    assert me.json("workspace", "policy", ws) == {"require_amd64": True}
    manifest = oci_manifest(config_for("arm64"), [stored_layer()])
    with oci_as(token_registry, user, PASSWORD) as oci:
        oci.push_blobs(image, manifest.blobs)
        refused = oci.put_manifest(image, "2.0", manifest)
    assert refused.status_code == 403, refused.text
    (error,) = refused.json()["errors"]
    assert error["code"] == "DENIED"
    assert error["message"].startswith(f"the workspace '{ws}' requires linux/amd64")
    assert [v["version"] for v in me.json("image", "show", image)["versions"]] == ["1.0"]
    # and the version pushed before is no longer resolved, until the policy is off again.
    blocked = me.fails("image", "resolve", f"{image}:1.0")
    assert f"the workspace '{ws}' requires linux/amd64 and this version has linux/arm64" in blocked.stderr
    assert "allowed" in me.ok("workspace", "policy", ws, "--no-require-amd64")
    assert me.ok("image", "resolve", f"{image}:1.0") == f"{token_registry.host}/{image}@{found['digest']}\n"

    # Immutable tags: shown, set (replacing), cleared.
    assert me.ok("workspace", "immutable-tags", ws) == f"{ws}: no immutable tags; a push may move any tag.\n"
    said = me.ok("workspace", "immutable-tags", ws, "--pattern", "v*", "-p", "1.*", "--except", "v*-rc")
    assert said == f"{ws}: tags matching v*, 1.* are immutable (except: v*-rc).\n"
    assert me.json("workspace", "immutable-tags", ws) == {"patterns": ["v*", "1.*"], "exceptions": ["v*-rc"]}
    assert "tag pattern 'a/b'" in me.fails("workspace", "immutable-tags", ws, "-p", "a/b").stderr
    assert "no immutable tags" in me.ok("workspace", "immutable-tags", ws, "--clear")


def test_external_images_registered_verified_changed_removed(me: Cli) -> None:
    ws = new_workspace(me, "ext")
    samtools = f"{ws}/samtools"

    added = me.ok("image", "add", "quay.io/biocontainers/samtools:1.19--h50ea8bc_0", "--workspace", ws)
    assert f"Registered {samtools}:1.19--h50ea8bc_0 (external, tool, unverified)." in added
    assert f"{samtools} is private: members of its workspace and those given access" in added
    assert f"Filled in from the reference: name {samtools}, version 1.19--h50ea8bc_0." in added
    assert "warning: external images are not copied into Dockyard" in added
    assert "pin the digest" not in added  # a release tag: no moving-tag warning

    # Docker Hub short names are normalised; 'latest' is a moving tag.
    added = me.ok("image", "add", "alpine", "-w", ws, "--name", "base", "--description", "Alpine")
    assert f"Registered {ws}/base:latest" in added
    assert "Filled in from the reference: version latest." in added
    assert "Reference: docker.io/library/alpine:latest (normalised from 'alpine')." in added
    assert "warning: no tag given, so tag 'latest' is used and it moves: pin the digest" in added

    # A URL is refused with the fix; so is a second image of the same name.
    refused = me.fails("image", "add", "https://quay.io/biocontainers/samtools:1.19", "-w", ws)
    assert refused.returncode == 1
    assert "drop the scheme" in refused.stderr
    assert "use quay.io/biocontainers/samtools:1.19" in refused.stderr
    duplicate = me.fails("image", "add", "quay.io/biocontainers/samtools:1.20", "-w", ws)
    assert "already exists" in duplicate.stderr

    listed = me.ok("image", "list", "--workspace", ws, "--source", "external")
    assert row(listed, samtools)[1:4] == ["external", "tool", "1.19--h50ea8bc_0"]
    assert "2 of 2 images" in listed

    # show: the upstream and the warnings under their version; ECR account and region.
    ecr = "123456789012.dkr.ecr.us-west-2.amazonaws.com/ns/mapper:2.1"
    me.ok("image", "add", ecr, "-w", ws)
    shown = me.ok("image", "show", f"{ws}/mapper")
    assert "upstream: 123456789012.dkr.ecr.us-west-2.amazonaws.com (ecr)" in shown
    assert "ECR: account 123456789012, region us-west-2" in shown
    lines = me.ok("image", "show", samtools).splitlines()
    heading = lines.index("1.19--h50ea8bc_0:")
    assert "  upstream: quay.io (quay)" in lines[heading + 1 : heading + 5]
    assert any(line.startswith("  warning: external images are not copied") for line in lines[heading:])

    # A version pointing at a closed loopback port: verify explains why it is unreachable.
    local = f"127.0.0.1:{closed_port()}/bio/samtools:1.19"
    added = me.ok("image", "add-version", samtools, local, "--version", "local")
    assert f"Registered {samtools}:local" in added
    checked = me.fails("image", "verify", samtools, "local")
    assert checked.returncode == 1
    assert f"{samtools}:local is unreachable" in checked.stdout
    assert "reason: unreachable: could not reach" in checked.stdout
    assert "the connection was refused" in checked.stderr
    version = me.json("image", "show", samtools)["versions"][-1]
    assert (version["version"], version["status"]) == ("local", "unreachable")
    assert version["checked_at"] is not None

    changed = me.ok("image", "set", samtools, "local", "--type", "bench", "--cluster", "c1", "--region", "eu")
    assert "bench, regions eu, clusters c1" in changed
    assert "visibility:  private" in me.ok("image", "show", samtools)

    # One visibility per image: the image's command and the repository's change the one setting.
    said = me.ok("image", "visibility", samtools, "public")
    assert said == f"{samtools} is public: anyone may see it and pull it, signed in or not.\n"
    assert "visibility:  public" in me.ok("image", "show", samtools)
    assert f"{samtools} is private." in me.ok("repo", "visibility", samtools, "private")
    assert "visibility:  private" in me.ok("image", "show", samtools)
    assert "use 'private' or 'public'" in me.fails("image", "visibility", samtools, "workspace").stderr
    made = me.ok("image", "add", "quay.io/lab/open:1", "-w", ws, "--visibility", "public")
    assert f"{ws}/open is public: anyone may see it" in made
    me.ok("image", "add-version", f"{ws}/open", "quay.io/lab/open:2")  # a version takes the image's
    assert me.json("image", "show", f"{ws}/open")["visibility"] == "public"
    assert row(me.ok("image", "show", samtools), "local")[2] == "bench"
    me.ok("image", "describe", samtools, "Sequence alignment [tools]")
    assert "description: Sequence alignment [tools]" in me.ok("image", "show", samtools)
    assert "verified" in [e["kind"] for e in me.json("image", "events", samtools)]

    assert "nothing was deleted" in me.fails("image", "remove", samtools, "local").stderr
    me.ok("image", "remove", samtools, "local", "--yes")
    assert [v["version"] for v in me.json("image", "show", samtools)["versions"]] == ["1.19--h50ea8bc_0"]
    assert "no version" in me.fails("version", "delete", samtools, "local", "--yes").stderr
    assert "Deleted image" in me.ok("image", "delete", samtools, stdin="y\n")
    assert "not found" in me.fails("image", "show", samtools).stderr
    assert me.json("image", "events", samtools)[0]["kind"] == "image.deleted"


def test_upstream_credentials_set_list_remove(me: Cli) -> None:
    ws = new_workspace(me, "creds")
    secret = "s3cret-" + unique("token")
    registry = f"127.0.0.1:{closed_port()}"
    assert "No credentials kept." in me.ok("credentials", "list", ws)

    saved = me.ok("credentials", "set", ws, registry, "-u", "bob", "--secret-stdin", stdin=secret + "\n")
    assert f"{ws} keeps credentials for {registry} as bob." in saved
    listed = me.ok("credentials", "list", ws)
    assert row(listed, registry)[1] == "bob"
    as_json = me.ok("credentials", "list", ws, "--json")
    assert [(c["registry"], c["username"]) for c in json.loads(as_json)] == [(registry, "bob")]
    assert secret not in listed + as_json

    assert (
        "--secret-stdin" in me.fails("credentials", "set", ws, registry, "-u", "bob", "--secret-stdin").stderr
    )
    me.ok("credentials", "remove", ws, registry)
    assert "No credentials kept." in me.ok("credentials", "list", ws)
    assert "keeps no registry profile" in me.fails("credentials", "remove", ws, registry).stderr
