"""The origin policy, pure (CONTROL-UI.md 3): each step of the algorithm, and its edges."""

from __future__ import annotations

import pytest

from gateway.origins import (
    OriginPolicy,
    OriginRequest,
    check_host,
    check_origin,
    is_origin,
    parse_origin,
)

PORT = 18789
POLICY = OriginPolicy(gateway_port=PORT)


def request(origin: str | None, peer: str = "127.0.0.1", **kw: object) -> OriginRequest:
    return OriginRequest(origin=origin, peer_ip=peer, **kw)  # type: ignore[arg-type]


def test_clients_without_an_origin_are_not_browsers() -> None:
    assert check_origin(request(None), POLICY).allowed
    assert check_origin(request(""), POLICY).reason == "no-origin"
    assert check_origin(request(None, peer="203.0.113.9"), POLICY).allowed


@pytest.mark.parametrize(
    "origin",
    [
        f"http://127.0.0.1:{PORT}",
        f"http://localhost:{PORT}",
        f"http://LOCALHOST:{PORT}",
        f"http://[::1]:{PORT}",
        f"http://127.8.9.10:{PORT}",
    ],
)
def test_loopback_page_on_the_gateways_own_port_is_allowed(origin: str) -> None:
    verdict = check_origin(request(origin), POLICY)
    assert verdict.allowed
    assert verdict.reason == "loopback"


@pytest.mark.parametrize(
    "origin",
    [
        "http://127.0.0.1:3000",  # another local program's page
        "http://localhost",  # port 80
        "https://evil.example",
        f"http://evil.example:{PORT}",  # DNS rebinding: a name that is not loopback
        f"http://127.0.0.1.nip.io:{PORT}",
    ],
)
def test_other_pages_are_refused(origin: str) -> None:
    verdict = check_origin(request(origin), POLICY)
    assert not verdict.allowed
    assert verdict.reason == "origin not allowed"


@pytest.mark.parametrize(
    "origin",
    ["null", "NULL", "not a url", "file://", "http://", "x" * 300, "http://a/b", " http://a"],
)
def test_unparseable_or_null_origins_are_refused(origin: str) -> None:
    verdict = check_origin(request(origin), POLICY)
    assert not verdict.allowed
    assert verdict.reason == "origin missing or invalid"


def test_loopback_origin_from_a_remote_or_forwarded_peer_is_not_local() -> None:
    origin = f"http://127.0.0.1:{PORT}"
    assert not check_origin(request(origin, peer="192.168.1.5"), POLICY).allowed
    assert not check_origin(request(origin, forwarded=True), POLICY).allowed
    assert not check_origin(request(origin, peer_is_trusted_proxy=True), POLICY).allowed


def test_allowlist_exact_default_port_and_wildcard() -> None:
    policy = OriginPolicy(("https://ui.example.com", "HTTP://Host:8080/"), gateway_port=PORT)
    assert check_origin(request("https://ui.example.com", peer="10.0.0.9"), policy).allowed
    assert check_origin(request("https://ui.example.com:443", peer="10.0.0.9"), policy).allowed
    assert check_origin(request("http://host:8080", peer="10.0.0.9"), policy).reason == "allowlist"
    assert not check_origin(request("https://ui.example.com:8443", peer="10.0.0.9"), policy).allowed
    assert not check_origin(request("http://ui.example.com", peer="10.0.0.9"), policy).allowed
    everyone = OriginPolicy(("*",), gateway_port=PORT)
    assert check_origin(request("https://anything.example", peer="10.0.0.9"), everyone).allowed
    # a listed origin also works on a loopback page of another port
    listed = OriginPolicy(("http://localhost:5173",), gateway_port=PORT)
    assert check_origin(request("http://localhost:5173"), listed).allowed


def test_forwarded_host_needs_a_trusted_proxy() -> None:
    policy = OriginPolicy(("https://ui.example.com",), gateway_port=PORT)
    untrusted = request("https://ui.example.com", forwarded_host="ui.example.com", forwarded=True)
    verdict = check_origin(untrusted, policy)
    assert not verdict.allowed
    assert verdict.reason == "forwarded host from an untrusted proxy"
    trusted = request(
        "https://ui.example.com",
        forwarded_host="ui.example.com",
        forwarded_proto="http",
        forwarded=True,
        peer_is_trusted_proxy=True,
    )
    assert check_origin(trusted, policy).reason == "forwarded scheme does not match the origin"
    ok = request(
        "https://ui.example.com",
        forwarded_proto="https",
        forwarded=True,
        peer_is_trusted_proxy=True,
    )
    assert check_origin(ok, policy).allowed


def test_host_header_fallback_is_opt_in() -> None:
    on = OriginPolicy(host_header_fallback=True, gateway_port=PORT)
    lan = request("http://192.168.1.20:18789", peer="192.168.1.30", host="192.168.1.20:18789")
    assert not check_origin(lan, POLICY).allowed
    assert check_origin(lan, on).reason == "host-header"
    other = request("http://evil.example", peer="192.168.1.30", host="192.168.1.20:18789")
    assert not check_origin(other, on).allowed
    v6 = request("http://[fd00::1]:18789", peer="fd00::2", host="[fd00::1]:18789")
    assert check_origin(v6, on).allowed


def test_from_headers_reads_what_the_policy_needs() -> None:
    headers = [
        (b"Host", b"gw:18789"),
        (b"Origin", b"https://ui.example.com"),
        (b"Forwarded", b'for=1.2.3.4;proto="https";host=gw'),
        (b"X-Forwarded-Host", b"ui.example.com"),
    ]
    parsed = OriginRequest.from_headers(headers, "127.0.0.1")
    assert parsed.origin == "https://ui.example.com"
    assert parsed.host == "gw:18789"
    assert parsed.forwarded_host == "ui.example.com"
    assert parsed.forwarded_proto == "https"
    assert parsed.forwarded
    assert not parsed.local_direct
    plain = OriginRequest.from_headers([(b"origin", b"http://localhost:1")], "::1")
    assert plain.local_direct
    assert not plain.forwarded


def test_origin_syntax() -> None:
    assert parse_origin("https://Example.COM") is not None
    parsed = parse_origin("http://[::1]:8080")
    assert parsed is not None
    assert (parsed.host, parsed.port) == ("::1", 8080)
    assert is_origin("*")
    assert is_origin("https://a.example:8443")
    assert not is_origin("ws://a.example")
    assert not is_origin("https://a.example/path")
    assert not is_origin("a.example")


LOOPBACK_POLICY = OriginPolicy(("https://gw.example.com",), False, PORT, loopback_bind=True)


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        (f"127.0.0.1:{PORT}", True),
        ("localhost", True),
        ("app.localhost:8080", True),
        ("[::1]:18789", True),
        ("127.0.0.5", True),
        ("gw.example.com", True),  # an allowedOrigins host
        ("evil.example:18789", False),  # DNS rebinding
        ("0.0.0.0:18789", False),
        ("192.168.1.5", False),
    ],
)
def test_a_loopback_gateway_answers_browsers_only_under_its_own_names(
    host: str, allowed: bool
) -> None:
    """Issue 16: Host checked against the bind (DNS rebinding)."""
    browser = OriginRequest(origin=None, host=host, peer_ip="127.0.0.1", browser=True)
    assert check_host(browser, LOOPBACK_POLICY).allowed is allowed


def test_the_host_check_leaves_non_browsers_proxies_and_other_binds_alone() -> None:
    rebound = "evil.example"
    cli = OriginRequest(origin=None, host=rebound, peer_ip="127.0.0.1")
    assert check_host(cli, LOOPBACK_POLICY).allowed
    proxied = OriginRequest(
        None, rebound, peer_ip="127.0.0.1", peer_is_trusted_proxy=True, browser=True
    )
    assert check_host(proxied, LOOPBACK_POLICY).allowed
    lan = OriginPolicy((), False, PORT, loopback_bind=False)
    assert check_host(OriginRequest(None, rebound, browser=True), lan).allowed
    fallback = OriginPolicy((), True, PORT, loopback_bind=True)
    assert check_host(OriginRequest(None, rebound, browser=True), fallback).allowed


def test_browser_markers_are_read_from_headers() -> None:
    def seen(*pairs: tuple[bytes, bytes]) -> bool:
        return OriginRequest.from_headers(list(pairs), "127.0.0.1").browser

    assert seen((b"sec-fetch-mode", b"cors"))
    assert seen((b"user-agent", b"Mozilla/5.0 (X11)"))
    assert seen((b"origin", b"http://x"))
    assert not seen((b"user-agent", b"curl/8.5"))
    assert not seen()
