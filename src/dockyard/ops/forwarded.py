"""The client's address behind trusted reverse proxies.

A request's peer is the last hop. When that hop is a configured trusted proxy, the client
is the rightmost ``X-Forwarded-For`` entry that is not itself a trusted proxy: entries to
its left were written by the client and prove nothing. From any other peer the header is
ignored. The address found replaces ``scope["client"]`` before anything else reads it, so
that the login throttle, the audit log and the access log all see the same one. (uvicorn's
own proxy-header handling is off: it trusts 127.0.0.1 by default.)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """Addresses or CIDR blocks; ``ValueError`` names the first that is neither."""
    networks: list[Network] = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address or CIDR block (e.g. 10.0.0.0/8)") from None
    return tuple(networks)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:a.b.c.d from a dual-stack socket
    return address


def client_address(peer: str | None, forwarded_for: list[str], trusted: tuple[Network, ...]) -> str | None:
    """The client's address for a request from ``peer`` with these ``X-Forwarded-For`` values."""
    if not trusted or peer is None:
        return peer
    hop = _address(peer)
    if hop is None or not any(hop in network for network in trusted):
        return peer
    entries = [entry for value in forwarded_for for entry in value.split(",") if entry.strip()]
    for entry in reversed(entries):
        address = _address(entry)
        if address is None:
            return peer  # a trusted proxy wrote no address here: do not guess
        if not any(address in network for network in trusted):
            return str(address)
    return str(_address(entries[0])) if entries else peer


def with_client(scope: Scope, trusted: tuple[Network, ...]) -> Scope:
    """``scope`` with ``client`` set to :func:`client_address` (a copy when it changes)."""
    client = scope.get("client")
    if not trusted or not client:
        return scope
    host, port = client
    values = [value.decode("latin-1") for name, value in scope["headers"] if name == b"x-forwarded-for"]
    found = client_address(host, values, trusted)
    return scope if found == host else {**scope, "client": (found, port)}
