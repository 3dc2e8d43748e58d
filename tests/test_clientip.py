"""Client attribution behind trusted proxies (OPERATIONS.md B.5; FAILURE-MODES 21). Pure."""

from __future__ import annotations

import pytest

from gateway.clientip import UNKNOWN, attribute, proxy_policy

PROXIES = proxy_policy(("127.0.0.1", "10.0.0.0/8", "fd00::/8"))


def h(**headers: str) -> list[tuple[bytes, bytes]]:
    return [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]


def test_without_trusted_proxies_the_peer_is_the_client_and_headers_are_not_believed() -> None:
    """FAILURE-MODES 21: forwarding headers from an untrusted peer never make it local, and
    never rename the client."""
    plain = attribute("127.0.0.1", [])
    assert (plain.ip, plain.local_direct) == ("127.0.0.1", True)
    forged = attribute("127.0.0.1", h(x_forwarded_for="198.51.100.1"))
    assert forged.ip == "127.0.0.1"
    assert forged.local_direct is False
    for name in ("forwarded", "x-real-ip", "x-forwarded-host", "x-forwarded-proto"):
        assert attribute("127.0.0.1", [(name.encode(), b"x")]).local_direct is False
    assert attribute("192.0.2.5", []).local_direct is False


def test_through_a_trusted_proxy_the_first_untrusted_hop_from_the_right_is_the_client() -> None:
    seen = attribute("127.0.0.1", h(x_forwarded_for="198.51.100.9, 203.0.113.7, 10.1.2.3"), PROXIES)
    assert seen.ip == "203.0.113.7"  # 10.1.2.3 is a trusted proxy; 198.51.100.9 was forged
    assert seen.via_proxy is True
    assert seen.local_direct is False


def test_repeated_headers_form_one_chain() -> None:
    headers = [(b"x-forwarded-for", b"203.0.113.1"), (b"x-forwarded-for", b"203.0.113.2")]
    assert attribute("10.0.0.1", headers, PROXIES).ip == "203.0.113.2"


def test_rfc7239_forwarded_is_used_without_x_forwarded_for() -> None:
    headers = h(forwarded='for=192.0.2.60;proto=http, for="[2001:db8::1]:4711"')
    assert attribute("10.9.9.9", headers, PROXIES).ip == "2001:db8::1"


def test_a_trusted_proxy_that_names_nobody_fails_closed() -> None:
    """No usable hop: the client is unknown -- one shared limiter bucket, never local."""
    for headers in ([], h(x_forwarded_for="10.0.0.2, 127.0.0.1"), h(x_forwarded_for="junk")):
        seen = attribute("127.0.0.1", headers, PROXIES)
        assert seen.ip == UNKNOWN
        assert seen.local_direct is False


def test_x_real_ip_only_with_the_fallback() -> None:
    headers = h(x_real_ip="203.0.113.50")
    assert attribute("127.0.0.1", headers, PROXIES).ip == UNKNOWN
    fallback = proxy_policy(("127.0.0.1",), True)
    assert attribute("127.0.0.1", headers, fallback).ip == "203.0.113.50"


@pytest.mark.parametrize(
    ("peer", "expected"),
    [
        ("::ffff:10.0.0.1", "203.0.113.3"),
        ("fd00::5", "203.0.113.3"),
        ("10.255.255.255", "203.0.113.3"),
    ],
)
def test_cidr_ranges_and_mapped_addresses_match(peer: str, expected: str) -> None:
    assert attribute(peer, h(x_forwarded_for="203.0.113.3"), PROXIES).ip == expected


def test_an_ipv4_mapped_peer_is_reported_as_ipv4() -> None:
    assert attribute("::ffff:192.0.2.1", []).ip == "192.0.2.1"
