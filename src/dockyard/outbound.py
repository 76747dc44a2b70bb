"""Where the server may connect on a user's behalf: the one place that decides.

Every connection to a destination a user chose goes through here: verifying an external
image (the registry, its token service and every redirect), a git clone of a build context,
a build's push to an external registry, a webhook's delivery. A destination is allowed when each address it
resolves to is a public one, or when an administrator allowed it in ``outbound_allow``
(``DOCKYARD_OUTBOUND_ALLOW``), whose entries are

- networks or addresses: ``10.20.0.0/16``, ``127.0.0.1``, ``fd00::/8`` (any port);
- an address with a port: ``127.0.0.1:5000``, ``[::1]:5000`` (that port only);
- host names: ``registry.lab`` (any port) or ``registry.lab:5000``: connections to that name
  may go wherever it resolves.

Refused without an allowance: loopback, private (RFC 1918, ``fc00::/7``), link-local
(``169.254.0.0/16``, ``fe80::/10``), unspecified, multicast, shared (CGNAT ``100.64.0.0/10``)
and reserved or documentation ranges, also written as IPv4-mapped, NAT64 or 6to4 IPv6.

The decision is made on the addresses actually connected to: a name is resolved once, every
address it resolves to is checked (one refused address refuses the name: a rebinding DNS
server may hand out a public and a private one), and the connection goes to those checked
addresses, never to a second lookup. So ``localhost``, or any name that resolves to
127.0.0.1, is refused like the address itself. A refusal happens before any connection
attempt, so it tells nothing about what listens there.

HTTP goes through :meth:`OutboundPolicy.client`, whose transport makes this check in its
connect, for every connection: redirects are checked hop by hop whoever follows them.
Proxy environment variables are not used by that client: through a proxy the check would be
on the proxy's address, not the destination's.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Lookup = Callable[[str, int], Awaitable[list[str]]]  # (host, port) -> addresses, like getaddrinfo

SETTING = "DOCKYARD_OUTBOUND_ALLOW"
_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network
_LOOPBACK = "a loopback address"
_PRIVATE = "a private address"
_LINK_LOCAL = "a link-local address"
_RESERVED = "a reserved address"
_MULTICAST = "a multicast address"
# First match wins. IPv6 forms that carry an IPv4 address are judged by that address first.
_REFUSED: list[tuple[IPNetwork, str]] = [
    (_V4("0.0.0.0/32"), "the unspecified address"),
    (_V4("0.0.0.0/8"), "a 'this network' address"),
    (_V4("10.0.0.0/8"), _PRIVATE),
    (_V4("100.64.0.0/10"), "a shared (carrier-grade NAT) address"),
    (_V4("127.0.0.0/8"), _LOOPBACK),
    (_V4("169.254.0.0/16"), _LINK_LOCAL),
    (_V4("172.16.0.0/12"), _PRIVATE),
    (_V4("192.0.0.0/24"), _RESERVED),
    (_V4("192.0.2.0/24"), "a documentation address"),
    (_V4("192.88.99.0/24"), _RESERVED),
    (_V4("192.168.0.0/16"), _PRIVATE),
    (_V4("198.18.0.0/15"), _RESERVED),
    (_V4("198.51.100.0/24"), "a documentation address"),
    (_V4("203.0.113.0/24"), "a documentation address"),
    (_V4("224.0.0.0/4"), _MULTICAST),
    (_V4("240.0.0.0/4"), _RESERVED),  # with 255.255.255.255, the broadcast address
    (_V6("::/128"), "the unspecified address"),
    (_V6("::1/128"), _LOOPBACK),
    (_V6("::/8"), _RESERVED),  # IPv4-compatible and other unassigned forms
    (_V6("64:ff9b:1::/48"), _RESERVED),
    (_V6("100::/64"), _RESERVED),
    (_V6("2001::/23"), _RESERVED),
    (_V6("2001:db8::/32"), "a documentation address"),
    (_V6("fc00::/7"), _PRIVATE),
    (_V6("fe80::/10"), _LINK_LOCAL),
    (_V6("fec0::/10"), _PRIVATE),  # deprecated site-local
    (_V6("ff00::/8"), _MULTICAST),
]
_GLOBAL_UNICAST_V6 = _V6("2000::/3")
_NAT64 = _V6("64:ff9b::/96")


class OutboundRefused(Exception):
    """A destination the policy refuses; ``message`` is what the user is told."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries and reaches (mapped, NAT64, 6to4), if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def classify(address: IPAddress) -> str | None:
    """What kind of non-public address this is ("a loopback address"), None for a public one."""
    inner = embedded_ipv4(address)
    if inner is not None:
        return classify(inner)
    for network, label in _REFUSED:
        if address.version == network.version and address in network:
            return label
    if isinstance(address, ipaddress.IPv6Address) and address not in _GLOBAL_UNICAST_V6:
        return _RESERVED  # outside 2000::/3 nothing is assigned for public use
    return None


def ip_literal(text: str) -> IPAddress | None:
    """``text`` as an IP address, None when it is not one (a host name)."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def normalise_host(host: str) -> str:
    """A host as compared and resolved: lowercase, without IPv6 brackets or a final dot."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host[:-1] if host.endswith(".") and ip_literal(host[:-1]) is None else host


def split_host_port(text: str) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]``, ``[v6]:port`` or a bare IPv6 address as (host, port)."""
    text = text.strip()
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"{text!r} is not host[:port]")
        return host, _port(rest[1:], text) if rest else None
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, _port(port, text)
    return text, None


def _port(text: str, entry: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"{entry!r} has no valid port (1-65535)")
    return int(text)


@dataclass(frozen=True)
class Allowance:
    """One entry of ``outbound_allow``: a network (any port), an address and port, or a name."""

    network: IPNetwork | None = None
    name: str | None = None
    port: int | None = None

    @classmethod
    def parse(cls, entry: str) -> Allowance:
        """An entry as an admin writes it; ValueError with the reason for a bad one."""
        text = entry.strip()
        if not text or len(text) > 300 or any(ch.isspace() for ch in text):
            raise ValueError(f"{entry[:100]!r} is not a network, an address or a host[:port]")
        if "://" in text:
            raise ValueError(f"{text[:100]!r} is a URL: give its host[:port] (registry.lab:5000)")
        if "/" in text:
            try:
                return cls(network=ipaddress.ip_network(text, strict=False))
            except ValueError:
                raise ValueError(f"{text[:100]!r} is not a network (like 10.20.0.0/16)") from None
        if ip_literal(text) is not None:  # a bare address (an IPv6 one has colons, not a port)
            return cls(network=ipaddress.ip_network(text))
        host, port = split_host_port(text)
        found = ip_literal(host)
        if found is not None:
            return cls(network=ipaddress.ip_network(found), port=port)
        name = normalise_host(host)
        labels = name.split(".")
        if not all(label and len(label) < 64 and label.replace("-", "").isalnum() for label in labels):
            raise ValueError(f"{text[:100]!r} is not a network, an address or a host[:port]")
        return cls(name=name, port=port)

    def covers(self, host: str, address: IPAddress, port: int | None) -> bool:
        """Whether a connection asked for as ``host`` to ``address``:``port`` is allowed by this
        (``port`` None: on some port)."""
        if self.port is not None and port is not None and self.port != port:
            return False
        if self.name is not None:
            return self.name == host
        assert self.network is not None
        candidates = [address] + [inner for inner in [embedded_ipv4(address)] if inner is not None]
        return any(c.version == self.network.version and c in self.network for c in candidates)


def parse_allowances(entries: Iterable[str]) -> list[Allowance]:
    return [Allowance.parse(entry) for entry in entries]


def setting_entries(value: object) -> object:
    """``DOCKYARD_OUTBOUND_ALLOW`` as a JSON list (like the other list settings) or comma-separated."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        return json.loads(text)
    return [part.strip() for part in text.split(",") if part.strip()]


def checked_entries(entries: list[str]) -> list[str]:
    """The setting's entries, once each one parses (ValueError naming a bad one)."""
    parse_allowances(entries)
    return entries


async def _getaddrinfo(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class OutboundPolicy:
    """The server's outbound policy, from ``outbound_allow``.

    ``lookup`` resolves names (the event loop's ``getaddrinfo`` by default); tests hand in
    their own to play a DNS server.
    """

    def __init__(self, allow: Iterable[str] = (), *, lookup: Lookup | None = None) -> None:
        self.allowances = parse_allowances(allow)
        self.lookup = lookup or _getaddrinfo

    def refusal(self, host: str, address: IPAddress, port: int | None) -> str | None:
        """Why connecting to ``address`` (asked for as ``host``) on ``port`` is refused; None when
        allowed (``port`` None: allowed on some port)."""
        kind = classify(address)
        name = normalise_host(host)
        if kind is None or any(allowance.covers(name, address, port) for allowance in self.allowances):
            return None
        # For a name, not the address: that would tell users what internal names resolve to.
        verb = "is" if ip_literal(name) is not None else "resolves to"
        return f"destination {name} {verb} {kind}, which an administrator has not allowed ({SETTING})"

    async def addresses(self, host: str, port: int | None) -> list[IPAddress]:
        """The addresses to connect to for ``host``:``port``, every one checked.

        Raises :class:`OutboundRefused` when any of them is refused, and ``OSError`` (a
        ``socket.gaierror``) when the name does not resolve. ``port`` None checks whether
        some port is allowed (for early feedback, when the port is not known yet).
        """
        name = normalise_host(host)
        literal = ip_literal(name)
        if literal is not None:
            found = [literal]
        else:
            found = []
            for text in await self.lookup(name, port or 0):
                address = ip_literal(text)
                if address is not None and address not in found:
                    found.append(address)
            if not found:
                raise socket.gaierror(socket.EAI_NONAME, f"{name} has no address")
        for address in found:
            reason = self.refusal(name, address, port)
            if reason is not None:
                raise OutboundRefused(reason)
        return found

    async def check(self, host: str, port: int | None, *, wait: float = 5.0) -> None:
        """Raise :class:`OutboundRefused` now for a destination that would be refused.

        Early feedback (a build definition saved), never the guard itself: the connection is
        checked again when it is made. So a name that does not resolve (yet), or not within
        ``wait`` seconds, passes here.
        """
        try:
            async with asyncio.timeout(wait):
                await self.addresses(host, port)
        except (OSError, TimeoutError):
            pass

    def transport(self, *, verify: ssl.SSLContext | bool = True) -> httpx.AsyncHTTPTransport:
        """An httpx transport whose every connection goes through :meth:`addresses`."""
        return _GuardedTransport(self, verify=verify)

    def client(self, **options: Any) -> OutboundClient:
        """An httpx client on :meth:`transport`; ``options`` go to ``httpx.AsyncClient``."""
        return OutboundClient(self, **options)


class OutboundClient(httpx.AsyncClient):
    """An ``httpx.AsyncClient`` that connects only where its policy allows (and ignores proxy
    variables, see the module docstring)."""

    def __init__(
        self, policy: OutboundPolicy, *, verify: ssl.SSLContext | bool = True, **options: Any
    ) -> None:
        super().__init__(transport=policy.transport(verify=verify), trust_env=False, **options)
        self.policy = policy


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting to the addresses the policy checked."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self.policy = policy
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109  # httpcore's backend signature
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):  # the lookup counts towards the connect timeout
                addresses = await self.policy.addresses(host, port)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"looking up {host} took too long") from exc
        except OSError as exc:  # httpx makes this a ConnectError whose cause is the gaierror
            raise httpcore.ConnectError(str(exc)) from exc
        failure: Exception | None = None
        for address in addresses:  # an IP address: the inner backend does no lookup of its own
            try:
                return await self.inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109  # httpcore's backend signature
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise OutboundRefused("connections to Unix sockets are never made on a user's behalf")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


_CONTEXTS: dict[bool, ssl.SSLContext] = {}


def _ssl_context(verify: ssl.SSLContext | bool) -> ssl.SSLContext:
    """A transport's TLS context: the caller's own (a profile's CA bundle), else one per process
    for verification on and off. Loading the CA store costs tens of milliseconds of event-loop
    time; made twice per client, it cost every upstream request that much (a cold cache pull
    made a client per blob)."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    context = _CONTEXTS.get(verify)
    if context is None:
        context = _CONTEXTS[verify] = httpx.create_ssl_context(verify=verify)
    return context


class _GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, policy: OutboundPolicy, *, verify: ssl.SSLContext | bool) -> None:
        context = _ssl_context(verify)
        super().__init__(verify=context)
        # httpx takes no network backend, so the pool it made (unused: no connection was opened)
        # is replaced by the same pool (httpx's default limits) on ours. httpx is pinned, and
        # tests/unit/test_outbound.py fails on a version whose transport no longer uses ``_pool``.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=_GuardedBackend(policy),
        )


def loopback_registry(registry: str) -> bool:
    """Whether ``host[:port]`` names this machine (``localhost``, 127.0.0.0/8, ``::1``): such
    registries are spoken to over plain HTTP, as a local test registry is."""
    try:
        host = normalise_host(split_host_port(registry)[0])
    except ValueError:
        return False
    address = ip_literal(host)
    return host == "localhost" or (address is not None and classify(address) == _LOOPBACK)
