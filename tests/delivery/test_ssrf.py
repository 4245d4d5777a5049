"""The SSRF guard: loopback, private, link-local, metadata and the forms that hide them
(decimal, hex, octal, short IPv4; IPv4-mapped, NAT64, 6to4 IPv6; DNS names resolving to
them) are refused unless private targets are allowed."""

from __future__ import annotations

import pytest

from cryptopulse.delivery.ssrf import UnsafeTarget, resolve_target

UNSAFE = [
    "http://127.0.0.1/hook",
    "http://2130706433/hook",  # decimal 127.0.0.1
    "http://0x7f000001/hook",  # hex
    "http://0177.0.0.1/hook",  # octal
    "http://127.1/hook",  # short form
    "http://0/hook",
    "http://0.0.0.0/hook",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",  # IPv4-mapped
    "http://[::ffff:7f00:1]/hook",
    "http://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 of 169.254.169.254
    "http://[2002:a00:1::]/hook",  # 6to4 of 10.0.0.1
    "http://169.254.169.254/latest/meta-data",  # cloud metadata
    "http://2852039166/latest",  # decimal 169.254.169.254
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",  # shared address space
    "http://[fe80::1]/",
    "http://[fd00:ec2::254]/",  # AWS IPv6 metadata (unique local)
    "http://224.0.0.1/",
    "http://localhost:8080/hook",  # resolves to loopback
]


@pytest.mark.parametrize("url", UNSAFE)
async def test_refused(url: str) -> None:
    with pytest.raises(UnsafeTarget):
        await resolve_target(url)


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/x", "http://user:pw@93.184.216.34/", "http:///nohost", "javascript:1"],
)
async def test_malformed_refused(url: str) -> None:
    with pytest.raises(UnsafeTarget):
        await resolve_target(url)


async def test_public_literal_allowed() -> None:
    target = await resolve_target("https://93.184.216.34:8443/hook")
    assert (target.scheme, target.port, [str(a) for a in target.addresses]) == (
        "https",
        8443,
        ["93.184.216.34"],
    )


async def test_dns_answers_are_all_checked() -> None:
    async def public(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "2606:2800:220:1::1"]

    async def rebinding(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "127.0.0.1"]

    target = await resolve_target("https://hooks.example/x", resolver=public)
    assert target.host == "hooks.example" and len(target.addresses) == 2
    with pytest.raises(UnsafeTarget, match="127.0.0.1"):
        await resolve_target("https://hooks.example/x", resolver=rebinding)


async def test_unresolvable_name_refused() -> None:
    async def nxdomain(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    with pytest.raises(UnsafeTarget, match="does not resolve"):
        await resolve_target("https://nope.invalid/x", resolver=nxdomain)


async def test_private_allowed_by_setting() -> None:
    target = await resolve_target("http://127.0.0.1:9/x", allow_private=True)
    assert str(target.addresses[0]) == "127.0.0.1"
