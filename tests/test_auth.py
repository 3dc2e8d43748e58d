"""Shared-secret checks, scopes and the failed-auth limiter (OPERATIONS.md B.1, B.4). Pure."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from gateway.auth import (
    ADMIN,
    APPROVALS,
    PAIRING,
    READ,
    WRITE,
    RateLimiter,
    check_bearer,
    check_secret,
    granted_scopes,
    load_or_create_token,
    rate_limited_error,
    scope_allows,
    secrets_equal,
)
from gateway.config.model import RateLimit
from gateway.config.settings import AuthSettings
from gateway.origins import is_loopback_ip
from gateway.protocol.frames import ErrorCode
from gateway.protocol.handshake import ConnectAuth

TOKEN_AUTH = AuthSettings("token", "right-token", None, "config")
PASSWORD_AUTH = AuthSettings("password", None, "right-pw", "config")
NO_AUTH = AuthSettings("none", None, None, "none")

CLI_HINT = "set gateway.remote.token to match gateway.auth.token"
UI_HINT = "open the dashboard URL and paste the token in Control UI settings"
OTHER_HINT = "provide gateway auth token"

# -- check_secret ---------------------------------------------------------------------------


def test_matching_token_passes() -> None:
    assert check_secret(TOKEN_AUTH, ConnectAuth(token="right-token"), "test", "test") is None


def test_matching_password_passes() -> None:
    assert check_secret(PASSWORD_AUTH, ConnectAuth(password="right-pw"), "test", "test") is None


@pytest.mark.parametrize(
    "presented", [None, ConnectAuth(), ConnectAuth(token="x"), ConnectAuth(password="")]
)
def test_mode_none_accepts_anything(presented: ConnectAuth | None) -> None:
    assert check_secret(NO_AUTH, presented, "test", "test") is None


@pytest.mark.parametrize(
    "presented", [None, ConnectAuth(), ConnectAuth(token=""), ConnectAuth(password="right-token")]
)
def test_token_missing(presented: ConnectAuth | None) -> None:
    failure = check_secret(TOKEN_AUTH, presented, "test", "test")
    assert failure is not None
    assert failure.detail_code == "AUTH_TOKEN_MISSING"
    assert failure.message == f"unauthorized: gateway token missing ({OTHER_HINT})"
    assert failure.counts is False


def test_token_mismatch_counts() -> None:
    failure = check_secret(TOKEN_AUTH, ConnectAuth(token="wrong"), "test", "test")
    assert failure is not None
    assert failure.detail_code == "AUTH_TOKEN_MISMATCH"
    assert failure.message == f"unauthorized: gateway token mismatch ({OTHER_HINT})"
    assert failure.counts is True


def test_token_is_not_accepted_as_password() -> None:
    failure = check_secret(PASSWORD_AUTH, ConnectAuth(token="right-pw"), "test", "test")
    assert failure is not None
    assert failure.detail_code == "AUTH_PASSWORD_MISSING"
    assert failure.counts is False


def test_password_mismatch() -> None:
    failure = check_secret(PASSWORD_AUTH, ConnectAuth(password="nope"), "test", "test")
    assert failure is not None
    assert failure.detail_code == "AUTH_PASSWORD_MISMATCH"
    assert (
        failure.message == "unauthorized: gateway password mismatch (provide gateway auth password)"
    )
    assert failure.counts is True


@pytest.mark.parametrize(
    ("client_id", "client_mode", "hint"),
    [
        ("cli", "cli", CLI_HINT),
        ("cli", "test", CLI_HINT),
        ("gateway-client", "backend", CLI_HINT),
        ("some-tool", "cli", CLI_HINT),
        ("control-ui", "ui", UI_HINT),
        ("webchat-ui", "webchat", UI_HINT),
        ("node-host", "node", OTHER_HINT),
        ("test", "test", OTHER_HINT),
    ],
)
def test_hint_depends_on_the_client(client_id: str, client_mode: str, hint: str) -> None:
    missing = check_secret(TOKEN_AUTH, None, client_id, client_mode)
    assert missing is not None
    assert missing.message == f"unauthorized: gateway token missing ({hint})"
    mismatch = check_secret(TOKEN_AUTH, ConnectAuth(token="bad"), client_id, client_mode)
    assert mismatch is not None
    assert mismatch.message == f"unauthorized: gateway token mismatch ({hint})"


@pytest.mark.parametrize(
    ("client_id", "client_mode", "hint"),
    [
        ("cli", "cli", "set gateway.remote.password to match gateway.auth.password"),
        (
            "control-ui",
            "ui",
            "open the dashboard URL and paste the password in Control UI settings",
        ),
        ("test", "test", "provide gateway auth password"),
    ],
)
def test_password_hints_say_password(client_id: str, client_mode: str, hint: str) -> None:
    failure = check_secret(PASSWORD_AUTH, None, client_id, client_mode)
    assert failure is not None
    assert failure.message == f"unauthorized: gateway password missing ({hint})"
    assert "token" not in failure.message


def test_failure_error_shape() -> None:
    failure = check_secret(TOKEN_AUTH, ConnectAuth(token="wrong"), "test", "test")
    assert failure is not None
    shape = failure.error().shape()
    assert shape.code == ErrorCode.INVALID_REQUEST
    assert shape.message == failure.message
    assert shape.details == {
        "code": "AUTH_TOKEN_MISMATCH",
        "recommendedNextStep": "update_auth_credentials",
    }


def test_rate_limited_error_shape() -> None:
    shape = rate_limited_error(1234).shape()
    assert shape.code == ErrorCode.INVALID_REQUEST
    assert shape.message == "unauthorized: too many failed authentication attempts (retry later)"
    assert isinstance(shape.details, dict)
    assert shape.details["code"] == "AUTH_RATE_LIMITED"
    assert shape.retryable is True
    assert shape.retry_after_ms == 1234


# -- secrets_equal / check_bearer -----------------------------------------------------------


def test_secrets_equal() -> None:
    """FAILURE-MODES 19: secrets are compared in constant time (hmac.compare_digest)."""
    assert secrets_equal("abc", "abc")
    assert not secrets_equal("abc", "abd")
    assert not secrets_equal("abc", "abcd")
    assert not secrets_equal("", "abc")
    assert secrets_equal("pässwörd-🔑", "pässwörd-🔑")
    assert not secrets_equal("pässwörd", "passwörd")


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        ("Bearer right-token", True),
        ("bearer right-token", True),
        ("BEARER right-token", True),
        ("Bearer  right-token ", True),
        ("Bearer wrong", False),
        ("Bearer", False),
        ("Bearer ", False),
        ("Basic right-token", False),
        ("right-token", False),
        ("", False),
        (None, False),
    ],
)
def test_check_bearer_token_mode(header: str | None, ok: bool) -> None:
    assert check_bearer(TOKEN_AUTH, header) is ok


def test_check_bearer_password_mode_uses_the_password() -> None:
    assert check_bearer(PASSWORD_AUTH, "Bearer right-pw") is True
    assert check_bearer(PASSWORD_AUTH, "Bearer right-token") is False


def test_check_bearer_mode_none() -> None:
    assert check_bearer(NO_AUTH, None) is True
    assert check_bearer(NO_AUTH, "Bearer anything") is True


def test_check_bearer_without_expected_secret_refuses() -> None:
    broken = AuthSettings("token", None, None, "none")
    assert check_bearer(broken, "Bearer ") is False
    assert check_bearer(broken, "Bearer x") is False


# -- scopes ---------------------------------------------------------------------------------


def test_granted_scopes() -> None:
    assert granted_scopes("operator", None) == [ADMIN]
    assert granted_scopes("operator", []) == [ADMIN]
    assert granted_scopes("operator", [READ]) == [READ]
    assert granted_scopes("operator", [WRITE, READ, WRITE]) == [WRITE, READ]
    assert granted_scopes("node", [ADMIN]) == []
    assert granted_scopes("node", None) == []


@pytest.mark.parametrize("required", [ADMIN, READ, WRITE, APPROVALS, PAIRING, "operator.custom"])
def test_admin_satisfies_every_scope(required: str) -> None:
    assert scope_allows([ADMIN], required)


def test_write_satisfies_read() -> None:
    assert scope_allows([WRITE], READ)
    assert scope_allows([WRITE], WRITE)
    assert not scope_allows([WRITE], ADMIN)
    assert not scope_allows([WRITE], PAIRING)


def test_read_does_not_satisfy_write() -> None:
    assert scope_allows([READ], READ)
    assert not scope_allows([READ], WRITE)
    assert not scope_allows([READ], ADMIN)


def test_exact_scope_otherwise() -> None:
    assert scope_allows([PAIRING], PAIRING)
    assert not scope_allows([PAIRING], APPROVALS)
    assert not scope_allows([APPROVALS], READ)
    assert not scope_allows([], READ)


# -- RateLimiter ----------------------------------------------------------------------------

IP = "203.0.113.7"
OTHER_IP = "198.51.100.9"
POLICY = RateLimit(max_attempts=3, window_ms=1_000, lockout_ms=5_000, exempt_loopback=True)


def test_no_failures_no_lockout() -> None:
    limiter = RateLimiter(POLICY)
    assert limiter.retry_after_ms(IP, 0) is None


def test_lockout_after_max_attempts_within_window() -> None:
    limiter = RateLimiter(POLICY)
    limiter.record_failure(IP, 100)
    limiter.record_failure(IP, 200)
    assert limiter.retry_after_ms(IP, 250) is None  # two wrong tries: still allowed
    limiter.record_failure(IP, 300)
    assert limiter.retry_after_ms(IP, 300) == 5_000
    assert limiter.retry_after_ms(IP, 1_300) == 4_000
    # other clients are unaffected
    assert limiter.retry_after_ms(OTHER_IP, 300) is None


def test_lockout_expires_after_lockout_ms() -> None:
    limiter = RateLimiter(POLICY)
    for t in (0, 1, 2):
        limiter.record_failure(IP, t)
    assert limiter.retry_after_ms(IP, 5_001) == 1
    assert limiter.retry_after_ms(IP, 5_002) is None
    assert limiter.retry_after_ms(IP, 99_999) is None


def test_after_lockout_the_count_starts_over() -> None:
    limiter = RateLimiter(POLICY)
    for t in (0, 1, 2):
        limiter.record_failure(IP, t)
    limiter.record_failure(IP, 6_000)
    limiter.record_failure(IP, 6_001)
    assert limiter.retry_after_ms(IP, 6_002) is None
    limiter.record_failure(IP, 6_002)
    assert limiter.retry_after_ms(IP, 6_002) == 5_000


def test_failures_outside_the_window_do_not_accumulate() -> None:
    limiter = RateLimiter(POLICY)
    for t in range(0, 20_000, 600):  # only ~2 failures ever inside a 1000 ms window
        limiter.record_failure(IP, t)
        assert limiter.retry_after_ms(IP, t) is None


def test_failures_spread_just_inside_the_window_do_lock() -> None:
    limiter = RateLimiter(POLICY)
    for t in (0, 499, 999):
        limiter.record_failure(IP, t)
    assert limiter.retry_after_ms(IP, 999) == 5_000


def test_success_resets() -> None:
    limiter = RateLimiter(POLICY)
    limiter.record_failure(IP, 0)
    limiter.record_failure(IP, 1)
    limiter.record_success(IP)
    limiter.record_failure(IP, 2)
    limiter.record_failure(IP, 3)
    assert limiter.retry_after_ms(IP, 3) is None
    limiter.record_failure(IP, 4)
    assert limiter.retry_after_ms(IP, 4) == 5_000
    limiter.record_success(IP)
    assert limiter.retry_after_ms(IP, 5) is None


def test_success_for_an_unknown_ip_or_none_is_harmless() -> None:
    limiter = RateLimiter(POLICY)
    limiter.record_success(IP)
    limiter.record_success(None)
    assert limiter.retry_after_ms(IP, 0) is None


def test_unknown_ip_is_never_limited() -> None:
    limiter = RateLimiter(POLICY)
    for t in range(10):
        limiter.record_failure(None, t)
    assert limiter.retry_after_ms(None, 10) is None


@pytest.mark.parametrize("ip", ["127.0.0.1", "127.8.9.10", "::1"])
def test_loopback_is_exempt_by_default(ip: str) -> None:
    limiter = RateLimiter(POLICY)
    for t in range(10):
        limiter.record_failure(ip, t)
    assert limiter.retry_after_ms(ip, 10) is None


@pytest.mark.parametrize("ip", ["127.0.0.1", "::1"])
def test_loopback_is_limited_when_not_exempt(ip: str) -> None:
    policy = RateLimit(max_attempts=3, window_ms=1_000, lockout_ms=5_000, exempt_loopback=False)
    limiter = RateLimiter(policy)
    for t in range(3):
        limiter.record_failure(ip, t)
    assert limiter.retry_after_ms(ip, 3) == 4_999


def test_default_policy_is_ten_in_a_minute_for_five_minutes() -> None:
    limiter = RateLimiter(RateLimit())
    for t in range(9):
        limiter.record_failure(IP, t * 1_000)
    assert limiter.retry_after_ms(IP, 9_000) is None
    limiter.record_failure(IP, 59_000)
    assert limiter.retry_after_ms(IP, 59_000) == 300_000


@pytest.mark.parametrize("max_keys", [1, 2, 3, 8])
def test_records_are_bounded_by_max_keys(max_keys: int) -> None:
    limiter = RateLimiter(POLICY, max_keys=max_keys)
    for i in range(4 * max_keys + 5):
        limiter.record_failure(f"10.0.{i // 250}.{i % 250}", i)
        assert len(limiter._records) <= max_keys


def test_eviction_prefers_stale_records_over_lockouts() -> None:
    policy = RateLimit(max_attempts=2, window_ms=1_000, lockout_ms=100_000, exempt_loopback=True)
    limiter = RateLimiter(policy, max_keys=2)
    limiter.record_failure(IP, 0)
    limiter.record_failure(IP, 1)  # locked until 100_001
    limiter.record_failure(OTHER_IP, 0)  # one old failure, not locked
    limiter.record_failure("192.0.2.1", 5_000)  # full: the stale record must go, not the lockout
    assert limiter.retry_after_ms(IP, 5_000) == 95_001
    assert set(limiter._records) == {IP, "192.0.2.1"}


def test_is_loopback_ip() -> None:
    assert is_loopback_ip("127.0.0.1")
    assert is_loopback_ip("::1")
    assert not is_loopback_ip("10.0.0.1")
    assert not is_loopback_ip("not-an-ip")
    assert not is_loopback_ip("")
    assert not is_loopback_ip(None)


# -- load_or_create_token -------------------------------------------------------------------


def test_token_file_is_created_0600_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "state" / "gateway.token"
    first = load_or_create_token(path)
    assert len(first) >= 32
    assert path.read_text().strip() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = load_or_create_token(path)
    assert second == first
    assert sorted(p.name for p in path.parent.iterdir()) == ["gateway.token"]


def test_existing_token_is_read_back(tmp_path: Path) -> None:
    path = tmp_path / "gateway.token"
    path.write_text("  preset-token\n")
    assert load_or_create_token(path) == "preset-token"


def test_empty_token_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "gateway.token"
    path.write_text("\n")
    token = load_or_create_token(path)
    assert token
    assert path.read_text().strip() == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_fresh_tokens_differ(tmp_path: Path) -> None:
    assert load_or_create_token(tmp_path / "a") != load_or_create_token(tmp_path / "b")
