"""The client's address behind trusted proxies: the rightmost X-Forwarded-For entry that is
not itself a trusted proxy, and only when the peer is one."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from dockyard.ops.forwarded import client_address, parse_networks, with_client
from dockyard.settings import Settings

TRUSTED = parse_networks(["10.0.0.1", "192.168.0.0/16", "fd00::/8"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("10.0.0.1", ["203.0.113.9"], "203.0.113.9"),
        # entries to the left of the first untrusted one were written by the client
        ("10.0.0.1", ["198.51.100.1, 203.0.113.9, 192.168.4.4"], "203.0.113.9"),
        # several header lines are one list, in order
        ("10.0.0.1", ["198.51.100.1", "203.0.113.9"], "203.0.113.9"),
        ("fd00::5", ["2001:db8::7"], "2001:db8::7"),
        ("::ffff:10.0.0.1", ["203.0.113.9"], "203.0.113.9"),
        # every entry is a trusted proxy: the leftmost is the client
        ("10.0.0.1", ["192.168.1.1, 192.168.1.2"], "192.168.1.1"),
        # an untrusted peer: the header is ignored
        ("203.0.113.50", ["198.51.100.1"], "203.0.113.50"),
        ("127.0.0.1", ["198.51.100.1"], "127.0.0.1"),
        # no header, or garbage where an address should be: the peer
        ("10.0.0.1", [], "10.0.0.1"),
        ("10.0.0.1", ["unknown"], "10.0.0.1"),
        ("10.0.0.1", ["198.51.100.1, not-an-address"], "10.0.0.1"),
    ],
)
def test_client_address(peer: str, forwarded: list[str], expected: str) -> None:
    assert client_address(peer, forwarded, TRUSTED) == expected


def test_nothing_is_trusted_by_default() -> None:
    assert client_address("127.0.0.1", ["203.0.113.9"], ()) == "127.0.0.1"
    scope = {"type": "http", "client": ("127.0.0.1", 5000), "headers": [(b"x-forwarded-for", b"203.0.113.9")]}
    assert with_client(scope, ()) is scope


def test_the_scope_gets_the_client() -> None:
    scope = {"type": "http", "client": ("10.0.0.1", 5000), "headers": [(b"x-forwarded-for", b"203.0.113.9")]}
    assert with_client(scope, TRUSTED)["client"] == ("203.0.113.9", 5000)
    assert scope["client"] == ("10.0.0.1", 5000)


def test_settings_refuse_what_is_not_an_address() -> None:
    assert Settings(trusted_proxies=["10.0.0.0/8", "::1"]).trusted_proxies == ["10.0.0.0/8", "::1"]
    with pytest.raises(ValidationError, match=re.escape("'10.0.0.300' is not an IP address or CIDR block")):
        Settings(trusted_proxies=["10.0.0.300"])
    with pytest.raises(ValueError, match=re.escape("'proxy.local' is not an IP address or CIDR block")):
        parse_networks(["proxy.local"])
