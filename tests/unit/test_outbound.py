"""The outbound policy: which addresses are refused, what an allowance allows, and that the HTTP
client checks the address it really connects to (a name resolved once, every redirect hop),
before any connection is attempted.

Connections are only ever made to loopback listeners of the test; refusals of other ranges
are tested on the decision itself, which makes no connection.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from pydantic import ValidationError

from dockyard.outbound import (
    Allowance,
    OutboundPolicy,
    OutboundRefused,
    classify,
    loopback_registry,
)
from dockyard.settings import Settings
from dockyard.upstream.client import Failed, resolve
from tests.support.outbound import canary, http_server

NOT_ALLOWED = "which an administrator has not allowed (DOCKYARD_OUTBOUND_ALLOW)"
LOOPBACK = "a loopback address"
PRIVATE = "a private address"
LINK_LOCAL = "a link-local address"
RESERVED = "a reserved address"
MULTICAST = "a multicast address"


def names(table: dict[str, list[str]]) -> Callable[[str, int], Awaitable[list[str]]]:
    """A DNS server in a dict; an unknown name does not resolve."""

    async def lookup(host: str, port: int) -> list[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    return lookup


async def no_lookup(host: str, port: int) -> list[str]:
    raise AssertionError(f"{host} was looked up, but an address needs no lookup")


# --------------------------------------------------------------------------- the decision


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", LOOPBACK),
        ("127.255.0.9", LOOPBACK),
        ("::1", LOOPBACK),
        ("10.0.0.1", PRIVATE),
        ("172.16.0.1", PRIVATE),
        ("172.31.255.254", PRIVATE),
        ("192.168.1.1", PRIVATE),
        ("fc00::1", PRIVATE),
        ("fd12:3456::1", PRIVATE),
        ("169.254.169.254", LINK_LOCAL),
        ("fe80::1", LINK_LOCAL),
        ("0.0.0.0", "the unspecified address"),
        ("::", "the unspecified address"),
        ("0.1.2.3", "a 'this network' address"),
        ("100.64.0.1", "a shared (carrier-grade NAT) address"),
        ("100.127.255.254", "a shared (carrier-grade NAT) address"),
        ("224.0.0.1", MULTICAST),
        ("239.255.255.250", MULTICAST),
        ("ff02::1", MULTICAST),
        ("240.0.0.1", RESERVED),
        ("255.255.255.255", RESERVED),
        ("198.18.0.1", RESERVED),
        ("192.0.2.1", "a documentation address"),
        ("2001:db8::1", "a documentation address"),
        ("fec0::1", PRIVATE),
        ("4000::1", RESERVED),
        # IPv6 forms that reach an IPv4 address are judged by it
        ("::ffff:127.0.0.1", LOOPBACK),
        ("::ffff:10.0.0.1", PRIVATE),
        ("::ffff:169.254.169.254", LINK_LOCAL),
        ("64:ff9b::a9fe:a9fe", LINK_LOCAL),  # NAT64 of 169.254.169.254
        ("2002:7f00:1::1", LOOPBACK),  # 6to4 of 127.0.0.1
        ("::127.0.0.1", RESERVED),  # IPv4-compatible (deprecated)
        # public
        ("93.184.215.14", None),
        ("8.8.8.8", None),
        ("100.128.0.1", None),
        ("172.32.0.1", None),
        ("2606:4700:4700::1111", None),
        ("::ffff:8.8.8.8", None),
        ("64:ff9b::808:808", None),
    ],
)
def test_addresses_are_classified(address: str, kind: str | None) -> None:
    assert classify(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("127.0.0.1", f"destination 127.0.0.1 is a loopback address, {NOT_ALLOWED}"),
        ("[::1]", f"destination ::1 is a loopback address, {NOT_ALLOWED}"),
        ("10.0.0.1", f"destination 10.0.0.1 is a private address, {NOT_ALLOWED}"),
        ("169.254.169.254", f"destination 169.254.169.254 is a link-local address, {NOT_ALLOWED}"),
        ("::ffff:127.0.0.1", f"destination ::ffff:127.0.0.1 is a loopback address, {NOT_ALLOWED}"),
    ],
)
async def test_an_address_is_refused_naming_it_without_a_lookup(host: str, message: str) -> None:
    with pytest.raises(OutboundRefused) as refused:
        await OutboundPolicy(lookup=no_lookup).addresses(host, 5432)
    assert refused.value.message == message


async def test_a_public_address_is_allowed_as_it_is() -> None:
    found = await OutboundPolicy(lookup=no_lookup).addresses("93.184.215.14", 443)
    assert found == [ipaddress.ip_address("93.184.215.14")]


async def test_a_name_resolving_to_loopback_is_refused_without_telling_its_address() -> None:
    policy = OutboundPolicy(lookup=names({"registry.test": ["127.0.0.1"]}))
    with pytest.raises(OutboundRefused) as refused:
        await policy.addresses("registry.test", 443)
    assert refused.value.message == f"destination registry.test resolves to a loopback address, {NOT_ALLOWED}"


async def test_localhost_is_refused_with_the_real_resolver() -> None:
    with pytest.raises(OutboundRefused) as refused:
        await OutboundPolicy().addresses("localhost", 5432)
    assert refused.value.message == f"destination localhost resolves to a loopback address, {NOT_ALLOWED}"


async def test_one_private_answer_refuses_the_name() -> None:
    """A rebinding DNS server may answer with a public and a private address."""
    policy = OutboundPolicy(lookup=names({"rebind.test": ["93.184.215.14", "10.0.0.1"]}))
    with pytest.raises(
        OutboundRefused, match=re.escape("destination rebind.test resolves to a private address")
    ):
        await policy.addresses("rebind.test", 443)


async def test_a_public_name_gives_its_addresses() -> None:
    policy = OutboundPolicy(
        lookup=names({"registry.test": ["93.184.215.14", "2606:4700::1", "93.184.215.14"]})
    )
    assert await policy.addresses("Registry.Test.", 443) == [
        ipaddress.ip_address("93.184.215.14"),
        ipaddress.ip_address("2606:4700::1"),
    ]


# --------------------------------------------------------------------------- allowances


@pytest.mark.parametrize(
    ("entry", "host", "address", "port", "allowed"),
    [
        ("127.0.0.0/8", "127.0.0.1", "127.0.0.1", 5000, True),
        ("127.0.0.0/8", "localhost", "127.0.0.1", 80, True),
        ("127.0.0.0/8", "::ffff:127.0.0.1", "::ffff:127.0.0.1", 80, True),
        ("127.0.0.0/8", "::1", "::1", 80, False),
        ("10.20.0.0/16", "10.20.3.4", "10.20.3.4", 443, True),
        ("10.20.0.0/16", "10.21.0.1", "10.21.0.1", 443, False),
        ("10.20.0.1", "10.20.0.1", "10.20.0.1", 443, True),
        ("fd00::/8", "fd00::5", "fd00::5", 443, True),
        ("::1", "::1", "::1", 8080, True),
        ("127.0.0.1:5000", "127.0.0.1", "127.0.0.1", 5000, True),
        ("127.0.0.1:5000", "127.0.0.1", "127.0.0.1", 5001, False),
        ("[::1]:5000", "::1", "::1", 5000, True),
        ("[::1]:5000", "::1", "::1", 5432, False),
        ("registry.lab", "registry.lab", "10.0.0.7", 443, True),
        ("Registry.Lab:5000", "registry.lab", "10.0.0.7", 5000, True),
        ("registry.lab:5000", "registry.lab", "10.0.0.7", 443, False),
        ("registry.lab", "other.lab", "10.0.0.7", 443, False),
    ],
)
def test_an_allowance_covers_what_it_names(
    entry: str, host: str, address: str, port: int, allowed: bool
) -> None:
    assert Allowance.parse(entry).covers(host, ipaddress.ip_address(address), port) is allowed


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("", "is not a network, an address or a host[:port]"),
        ("two words", "is not a network, an address or a host[:port]"),
        ("10.0.0.0/33", "is not a network"),
        ("registry.lab:0", "has no valid port"),
        ("127.0.0.1:99999", "has no valid port"),
        ("[::1]5000", "is not host[:port]"),
        ("http://registry.lab", "is a URL: give its host[:port]"),
        ("bad_name!", "is not a network, an address or a host[:port]"),
    ],
)
def test_a_bad_allowance_is_refused_with_the_reason(entry: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        Allowance.parse(entry)


async def test_an_allowed_address_and_port_leave_other_ports_refused() -> None:
    policy = OutboundPolicy(["127.0.0.1:5000"], lookup=no_lookup)
    assert await policy.addresses("127.0.0.1", 5000) == [ipaddress.ip_address("127.0.0.1")]
    with pytest.raises(OutboundRefused, match=re.escape("destination 127.0.0.1 is a loopback address")):
        await policy.addresses("127.0.0.1", 5432)


async def test_an_allowed_name_may_resolve_to_a_private_address() -> None:
    policy = OutboundPolicy(
        ["registry.lab"], lookup=names({"registry.lab": ["10.0.0.7"], "other.lab": ["10.0.0.7"]})
    )
    assert await policy.addresses("registry.lab", 443) == [ipaddress.ip_address("10.0.0.7")]
    with pytest.raises(
        OutboundRefused, match=re.escape("destination other.lab resolves to a private address")
    ):
        await policy.addresses("other.lab", 443)


def test_the_setting_takes_a_json_list_or_commas(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().outbound_allow == []
    monkeypatch.setenv("DOCKYARD_OUTBOUND_ALLOW", "127.0.0.0/8, registry.lab:5000")
    assert Settings().outbound_allow == ["127.0.0.0/8", "registry.lab:5000"]
    monkeypatch.setenv("DOCKYARD_OUTBOUND_ALLOW", '["[::1]:5000", "10.1.0.0/16"]')
    settings = Settings()
    assert settings.outbound_allow == ["[::1]:5000", "10.1.0.0/16"]
    monkeypatch.setenv("DOCKYARD_OUTBOUND_ALLOW", settings.to_env()["DOCKYARD_OUTBOUND_ALLOW"])
    assert Settings().outbound_allow == ["[::1]:5000", "10.1.0.0/16"]  # as worker processes read it


def test_a_bad_setting_entry_stops_the_server_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_OUTBOUND_ALLOW", "127.0.0.1, 10.0.0.0/33")
    with pytest.raises(ValidationError, match=r"'10.0.0.0/33' is not a network \(like 10.20.0.0/16\)"):
        Settings()


@pytest.mark.parametrize(
    ("registry", "loopback"),
    [
        ("localhost", True),
        ("localhost:5000", True),
        ("127.0.0.1:5000", True),
        ("127.3.2.1", True),
        ("[::1]:5000", True),
        ("[::ffff:127.0.0.1]:5000", True),
        ("10.0.0.1:5000", False),
        ("quay.io", False),
        ("localhost.example.org", False),
        ("localhost:99999", False),
    ],
)
def test_loopback_registries_are_told_apart(registry: str, loopback: bool) -> None:
    assert loopback_registry(registry) is loopback


# --------------------------------------------------------------------------- the HTTP client


async def test_a_refused_destination_is_never_connected_to() -> None:
    policy = OutboundPolicy(lookup=names({"registry.test": ["127.0.0.1"]}))
    with canary() as target:
        async with policy.client() as client:
            for url in (f"http://{target.host}/v2/", f"http://registry.test:{target.port}/v2/"):
                with pytest.raises(OutboundRefused, match="a loopback address"):
                    await client.get(url)
        assert target.accepted == 0


async def test_the_client_connects_to_the_address_it_checked(tmp_path: Path) -> None:
    """``registry.test`` exists only in the policy's lookup: the request can only succeed if the
    connection goes to the address checked, with no second lookup."""
    (tmp_path / "hello.txt").write_text("hello")
    with http_server(tmp_path) as host:
        port = int(host.rsplit(":", 1)[1])
        policy = OutboundPolicy([f"registry.test:{port}"], lookup=names({"registry.test": ["127.0.0.1"]}))
        async with policy.client() as client:
            response = await client.get(f"http://registry.test:{port}/hello.txt")
    assert (response.status_code, response.text) == (200, "hello")


async def test_every_redirect_hop_is_checked() -> None:
    """One loopback port is allowed; it redirects to another, which is refused unvisited."""
    with canary() as target:
        for location in (f"http://{target.host}", f"http://localhost:{target.port}"):
            with http_server(redirect_to=location) as front:
                policy = OutboundPolicy([front])
                async with policy.client() as client:
                    first = await client.get(f"http://{front}/v2/x/manifests/1")
                    assert first.status_code == 307
                    with pytest.raises(OutboundRefused, match="a loopback address"):
                        await client.get(f"http://{front}/v2/x/manifests/1", follow_redirects=True)
        assert target.accepted == 0


async def test_verifying_through_a_redirect_to_a_refused_address_is_refused() -> None:
    with canary() as target, http_server(redirect_to=f"http://{target.host}") as front:
        result = await resolve(front, "x/y", "1", outbound=OutboundPolicy([front]), scheme="http")
        assert target.accepted == 0
    assert isinstance(result, Failed)
    assert (result.kind, result.message) == (
        "refused",
        f"destination 127.0.0.1 is a loopback address, {NOT_ALLOWED}",
    )


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
async def test_verifying_a_loopback_registry_is_refused_before_connecting(host: str) -> None:
    with canary() as target:
        result = await resolve(f"{host}:{target.port}", "x/y", "1", outbound=OutboundPolicy(), scheme="http")
        assert target.accepted == 0
    assert isinstance(result, Failed)
    assert result.kind == "refused"
    assert result.message.endswith(f"a loopback address, {NOT_ALLOWED}"), result.message


async def test_a_name_that_does_not_resolve_is_reported_as_such() -> None:
    result = await resolve(
        "nowhere.test", "x/y", "1", outbound=OutboundPolicy(lookup=names({})), scheme="https"
    )
    assert isinstance(result, Failed)
    assert result.kind == "unreachable"
    assert result.message.startswith("could not reach nowhere.test: its host name does not resolve (DNS)")


async def test_the_client_ignores_proxy_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through a proxy the check would be on the proxy's address, not the destination's."""
    (tmp_path / "hello.txt").write_text("direct")
    with canary() as proxy, http_server(tmp_path) as host:
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
            monkeypatch.setenv(name, f"http://{proxy.host}")
        async with OutboundPolicy([host]).client() as client:
            response = await client.get(f"http://{host}/hello.txt")
        assert proxy.accepted == 0
    assert response.text == "direct"
