"""SSRF guard for webhook URLs, at registration and again at send time.

A target is refused when any address it names or resolves to is not globally routable:
loopback, private, link-local (cloud metadata 169.254.169.254), shared (100.64/10),
multicast, reserved, unspecified, and the IPv6 forms hiding those (IPv4-mapped, NAT64,
6to4, Teredo). IPv4 literals are read the way C resolvers read them, so `2130706433`,
`0x7f.1` and `0177.0.0.1` are the loopback address they mean. A DNS name is resolved and
every answer checked; the sender then connects to the checked address (no second lookup
that a rebinding DNS server could answer differently).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["Resolver", "Target", "UnsafeTarget", "check_address", "parse_target", "resolve_target"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LEGACY_V4 = re.compile(r"^[0-9a-fA-FxX.]+$")


class UnsafeTarget(ValueError):
    """The URL is not an allowed webhook target; the message says why."""


@dataclass(frozen=True, slots=True)
class Target:
    scheme: str
    host: str  # as written, lower case, without brackets
    port: int
    addresses: tuple[IPAddress, ...]  # checked; empty until resolved


def parse_target(url: str) -> Target:
    """Scheme, host and port of `url` (http or https, no credentials in it)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeTarget(f"not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise UnsafeTarget("the URL must be http:// or https://")
    if not parts.hostname:
        raise UnsafeTarget("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeTarget("credentials in the URL are not allowed")
    default = 443 if parts.scheme == "https" else 80
    return Target(parts.scheme, parts.hostname.lower(), port or default, ())


def literal_address(host: str) -> IPAddress | None:
    """The address a host names literally, in any form a resolver accepts, else None."""
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        pass
    if _LEGACY_V4.match(host):
        try:  # inet_aton reads decimal, hex, octal and short forms (127.1)
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _embedded_v4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def check_address(address: IPAddress) -> None:
    """Raise `UnsafeTarget` unless `address` (and any IPv4 inside it) is public."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_v4(address)
        if inner is not None:
            check_address(inner)
    if not address.is_global or address.is_multicast:
        raise UnsafeTarget(f"{address} is not a public address")


_RESOLVE_TIMEOUT_S = 5.0


async def _system_resolver(host: str, port: int) -> list[str]:
    async with asyncio.timeout(_RESOLVE_TIMEOUT_S):
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def resolve_target(
    url: str, *, allow_private: bool = False, resolver: Resolver | None = None
) -> Target:
    """The target with its checked addresses; `UnsafeTarget` if any is not allowed."""
    target = parse_target(url)
    literal = literal_address(target.host)
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        try:
            answers = await (resolver or _system_resolver)(target.host, target.port)
        except (OSError, ValueError, TimeoutError) as exc:  # ValueError: IDNA label errors
            raise UnsafeTarget(f"{target.host} does not resolve: {exc or 'timeout'}") from None
        addresses = [ipaddress.ip_address(a.split("%")[0]) for a in answers]
        if not addresses:
            raise UnsafeTarget(f"{target.host} does not resolve")
    if not allow_private:
        for address in addresses:
            check_address(address)
    return Target(target.scheme, target.host, target.port, tuple(dict.fromkeys(addresses)))
