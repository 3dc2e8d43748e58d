"""Shared-secret authentication, scopes and the failed-attempt limiter.

The decisions are pure (the clock is passed in as ``now_ms``); the only I/O is
:func:`load_or_create_token`, which keeps a generated token in the state dir (0600).

Rate limiting follows the reference: only *wrong* secrets count (a missing one does not),
keyed by client IP; ``maxAttempts`` wrong tries inside ``windowMs`` lock that IP out for
``lockoutMs``; success clears the IP's record; loopback is exempt unless configured not to be.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from pathlib import Path

import attrs

from .config.model import RateLimit
from .config.settings import AuthSettings
from .errors import RateLimited, Unauthorized
from .fsutil import write_atomic
from .origins import is_loopback_ip
from .protocol.handshake import ConnectAuth
from .protocol.scopes import ADMIN as ADMIN
from .protocol.scopes import APPROVALS as APPROVALS
from .protocol.scopes import PAIRING as PAIRING
from .protocol.scopes import READ as READ
from .protocol.scopes import WRITE as WRITE
from .protocol.scopes import scope_allows as scope_allows

log = logging.getLogger("gateway")


def stored_token(path: Path) -> str | None:
    """The generated token kept in ``path``, if there is one (an unreadable file counts as
    none: a new token is generated, and storing it says why it could not be kept)."""
    try:
        return path.read_text().strip() or None
    except (FileNotFoundError, NotADirectoryError):
        return None


def load_or_create_token(path: Path) -> str:
    """The generated token: read it back if stored, else create one (0600, atomic)."""
    existing = stored_token(path)
    if existing:
        return existing
    token = secrets.token_urlsafe(32)
    write_atomic(path, token + "\n", secret=True)
    return token


class PendingToken:
    """The gateway's generated token, stored only by a start that serves.

    ``get`` returns the stored token, else one made up for this process; ``store`` writes it
    once a generation is bound. A start that fails (port taken, lock held) leaves no token
    behind that nobody saw -- the next successful start generates and prints its own.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pending: str | None = None
        self.store_error: str | None = None  # why a new token could not be kept

    def get(self) -> str:
        stored = stored_token(self.path)
        if stored:
            return stored
        if self._pending is None:
            self._pending = secrets.token_urlsafe(32)
        return self._pending

    def store(self, token: str | None) -> bool:
        """Write ``token`` if it is this process's new one and none is stored yet; True
        when it is new now (the banner then shows it). A state dir that cannot take it
        (full, read-only) is logged: the token is valid for this run only."""
        if token is None or token != self._pending or stored_token(self.path):
            return False
        try:
            write_atomic(self.path, token + "\n", secret=True)
        except OSError as exc:
            self.store_error = exc.strerror or str(exc)
            log.warning(
                "cannot store the generated token in %s (%s): it is valid for this run only",
                self.path,
                self.store_error,
            )
        return True


def secrets_equal(presented: str, expected: str) -> bool:
    """Constant-time comparison on UTF-8 bytes."""
    return hmac.compare_digest(presented.encode(), expected.encode())


@attrs.frozen
class AuthFailure:
    message: str
    detail_code: str
    counts: bool  # a wrong secret counts toward the limiter; a missing one does not

    def error(self) -> Unauthorized:
        return Unauthorized(
            self.message,
            details={"code": self.detail_code, "recommendedNextStep": "update_auth_credentials"},
        )


def _hint(client_id: str, client_mode: str) -> str:
    if client_id in ("cli", "gateway-client") or client_mode == "cli":
        return "set gateway.remote.token to match gateway.auth.token"
    if client_mode in ("ui", "webchat"):
        return "open the dashboard URL and paste the token in Control UI settings"
    return "provide gateway auth token"


def check_secret(
    settings: AuthSettings, presented: ConnectAuth | None, client_id: str, client_mode: str
) -> AuthFailure | None:
    """``None`` when the shared secret matches (or auth mode is none)."""
    if settings.mode == "none":
        return None
    hint = _hint(client_id, client_mode)
    if settings.mode == "token":
        given = presented.token if presented else None
        expected = settings.token or ""
        kind = "token"
    else:
        given = presented.password if presented else None
        expected = settings.password or ""
        kind = "password"
        hint = hint.replace("token", "password")
    upper = kind.upper()
    if not given:
        return AuthFailure(
            f"unauthorized: gateway {kind} missing ({hint})", f"AUTH_{upper}_MISSING", counts=False
        )
    if not secrets_equal(given, expected):
        return AuthFailure(
            f"unauthorized: gateway {kind} mismatch ({hint})", f"AUTH_{upper}_MISMATCH", counts=True
        )
    return None


def check_bearer(settings: AuthSettings, authorization: str | None) -> bool:
    """HTTP: ``Authorization: Bearer <token or password>``."""
    if settings.mode == "none":
        return True
    expected = settings.token if settings.mode == "token" else settings.password
    if not authorization or not expected:
        return False
    scheme, _, value = authorization.partition(" ")
    return scheme.lower() == "bearer" and secrets_equal(value.strip(), expected)


def granted_scopes(role: str, requested: list[str] | None) -> list[str]:
    """Section 3.5 step 9: shared-secret operators that ask for nothing get admin."""
    if role == "node":
        return []
    if not requested:
        return [ADMIN]
    return list(dict.fromkeys(requested))


def rate_limited_error(retry_after_ms: int) -> RateLimited:
    return RateLimited(
        "unauthorized: too many failed authentication attempts (retry later)",
        details={"code": "AUTH_RATE_LIMITED", "recommendedNextStep": "wait_then_retry"},
        retry_after_ms=retry_after_ms,
    )


@attrs.define
class _Record:
    failures: list[int] = attrs.field(factory=list)
    locked_until: int = 0


@attrs.define
class RateLimiter:
    """Failed-auth limiter keyed by client (an IP, or an IP and a browser origin); bounded
    to ``max_keys`` records.

    ``local``: the attempt is local direct (clientip.py) and not from a browser page -- only
    such attempts get the loopback exemption. ``None`` (callers that know no more) treats a
    loopback IP key as local."""

    policy: RateLimit
    max_keys: int = 10_000
    _records: dict[str, _Record] = attrs.field(factory=dict, init=False)

    def _exempt(self, key: str | None, local: bool | None) -> bool:
        if local is None:
            local = is_loopback_ip(key)
        return self.policy.exempt_loopback and local

    def retry_after_ms(
        self, key: str | None, now_ms: int, *, local: bool | None = None
    ) -> int | None:
        """Milliseconds until ``key`` may try again, or ``None`` if it may try now."""
        if key is None or self._exempt(key, local):
            return None
        record = self._records.get(key)
        if record is None or record.locked_until <= now_ms:
            return None
        return record.locked_until - now_ms

    def record_failure(self, key: str | None, now_ms: int, *, local: bool | None = None) -> None:
        if key is None or self._exempt(key, local):
            return
        record = self._records.get(key)
        if record is None:
            if len(self._records) >= self.max_keys:
                self._evict(now_ms)
            record = self._records[key] = _Record()
        window_start = now_ms - self.policy.window_ms
        record.failures = [t for t in record.failures if t > window_start]
        record.failures.append(now_ms)
        if len(record.failures) >= self.policy.max_attempts:
            record.locked_until = now_ms + self.policy.lockout_ms
            record.failures.clear()

    def record_success(self, ip: str | None) -> None:
        if ip is not None:
            self._records.pop(ip, None)

    def _evict(self, now_ms: int) -> None:
        window_start = now_ms - self.policy.window_ms
        stale = [
            ip
            for ip, r in self._records.items()
            if r.locked_until <= now_ms and all(t <= window_start for t in r.failures)
        ]
        # Prefer records that no longer matter; if none, drop the oldest half anyway so an
        # attacker rotating addresses cannot grow the table without bound.
        for ip in stale or list(self._records)[: max(1, len(self._records) // 2)]:
            del self._records[ip]
