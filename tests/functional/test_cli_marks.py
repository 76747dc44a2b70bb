"""The trust-mark commands of the ``dockyard`` CLI, run as subprocesses against a token-mode
server: ``workspace mark`` (admins only), ``workspace key add|list|remove``, the MARKS column
and ``--mark`` filter of ``image list``, the signature line of ``version show``."""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import Cli
from tests.support.cosign import ecdsa_key, payload, public_pem, push_signature, sign
from tests.support.identity import ADMIN, ADMIN_PASSWORD, PASSWORD, oci_as, unique
from tests.support.oci import oci_manifest
from tests.support.servers import RunningRegistry


def test_workspace_marks_and_trusted_keys_through_the_cli(
    token_registry: RunningRegistry, tmp_path: Path
) -> None:
    admin = Cli(token_registry, tmp_path / "admin" / "cli.toml")
    admin.ok("login", token_registry.url, "-u", ADMIN, "--password-stdin", stdin=ADMIN_PASSWORD + "\n")
    user = unique("clisigner")
    admin.ok("user", "create", user, "--password-stdin", stdin=PASSWORD + "\n")
    me = Cli(token_registry, tmp_path / "me" / "cli.toml")
    me.ok("login", token_registry.url, "-u", user, "--password-stdin", stdin=PASSWORD + "\n")

    image = f"{user}/tool"
    manifest = oci_manifest()
    key = ecdsa_key()
    with oci_as(token_registry, user, PASSWORD) as oci:
        oci.push(image, manifest, "1.0")
        data = payload(f"{token_registry.host}/{image}", manifest.digest)
        push_signature(oci, image, manifest.digest, data, sign(key, data))

    refused = me.fails("workspace", "mark", user, "official")
    assert "administrator" in refused.stderr
    assert "is now official" in admin.ok("workspace", "mark", user, "official")

    pem = tmp_path / "cosign.pub"
    pem.write_text(public_pem(key))
    added = me.ok("workspace", "key", "add", user, "release", str(pem))
    assert "ecdsa-p256" in added
    assert "release" in me.ok("workspace", "key", "list", user)

    listed = me.ok("image", "list", "--workspace", user, "--mark", "signed")
    assert "MARKS" in listed
    assert image in listed
    assert "official, signed" in listed
    shown = me.ok("version", "show", image, "1.0")
    assert "signature: verified by sha256:" in shown
    assert "No SBOM attached." in me.ok("version", "sbom", image, "1.0")

    key_id = me.json("workspace", "key", "list", user)[0]["key_id"]
    me.ok("workspace", "key", "remove", user, key_id)
    assert image not in me.ok("image", "list", "--workspace", user, "--mark", "signed")
    assert "signature attached" in me.ok("image", "list", "--workspace", user)
