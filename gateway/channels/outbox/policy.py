"""What the outbox does after a send attempt fails (CHANNELS.md 6.3, 6.4). Pure: the clock
and the random source are passed in.

Error classes (``SendFailure.kind``) and what follows:

=============  ==========================================================================
permanent      the platform refused this message for good (Telegram 400 ``chat not
               found``, 403 blocked; Graph 131047, 131026): the part fails, the record is
               ``failed`` -- or ``partial_failed`` when earlier parts went out -- and the
               rest of its parts are cancelled
network        certainly not sent (connect/DNS/TLS error, an ``ok:false`` 5xx): retry
rate_limit     retry no sooner than the platform's ``retry_after``
auth           the token was rejected: the record stays pending (the account is not
               linked; a new token sends it)
ambiguous      the request may have reached the platform (read timeout, reset mid-answer,
               a part found ``sending`` after a crash): ``outbox.ambiguous`` decides --
               ``resend`` sends it once more (at most one extra copy, counted), ``drop``
               gives up on it (at most once, the reference's behaviour)
=============  ==========================================================================

Retries wait 5 s, 25 s, 2 min, 10 min, then every 30 min (x U(0.8, 1.2)), or the
platform's ``retry_after`` if that is longer. A record older than ``outbox.maxAgeMs`` is
``expired`` instead of retried.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import attrs

from ...protocol.frames import ErrorCode
from .model import ErrorClass, Part, PartState, Record, RecordState

Uniform = Callable[[float, float], float]
AmbiguityPolicy = Literal["resend", "drop"]

RETRY_SCHEDULE_S = (5.0, 25.0, 120.0, 600.0)
RETRY_STEADY_S = 1800.0
JITTER = (0.8, 1.2)


@attrs.frozen
class SendFailure:
    """Why one part could not be confirmed; ``status`` is the platform's HTTP/API status."""

    kind: ErrorClass
    message: str
    retry_after_s: float | None = None
    status: int | None = None


@attrs.frozen
class Outcome:
    """The next state of a record after a failed part."""

    part_state: PartState  # pending (retry) | failed
    record_state: RecordState  # pending | failed | partial_failed | expired
    next_attempt_at: int
    error_class: ErrorClass
    error_code: str | None  # the wire code a `send` answers once the record is final
    ambiguous: bool  # the part's request may have reached the platform

    @property
    def terminal(self) -> bool:
        return self.record_state != "pending"


def retry_delay_ms(attempt: int, retry_after_s: float | None, uniform: Uniform) -> int:
    """Wait before retry number ``attempt`` (1-based)."""
    base = RETRY_SCHEDULE_S[attempt - 1] if attempt <= len(RETRY_SCHEDULE_S) else RETRY_STEADY_S
    delay = base * uniform(*JITTER)
    if retry_after_s is not None:
        delay = max(delay, retry_after_s)
    return int(delay * 1000)


def expired(record: Record, now_ms: int, max_age_ms: int) -> bool:
    return now_ms - record.created_at >= max_age_ms


def error_code(failure: SendFailure) -> str:
    """A bad request (400: no such chat, a malformed target) is the caller's; the rest is
    delivery trouble."""
    if failure.kind == "permanent" and failure.status == 400:
        return ErrorCode.INVALID_REQUEST
    return ErrorCode.UNAVAILABLE


def _given_up(record: Record, part: Part) -> RecordState:
    sent_before = any(p.state == "sent" for p in record.parts if p.idx < part.idx)
    return "partial_failed" if sent_before else "failed"


def after_failure(
    record: Record,
    part: Part,
    failure: SendFailure,
    *,
    policy: AmbiguityPolicy,
    now_ms: int,
    max_age_ms: int,
    uniform: Uniform,
) -> Outcome:
    """The record's next state after ``part`` failed with ``failure``."""
    ambiguous = failure.kind == "ambiguous"
    if failure.kind == "permanent" or (ambiguous and (policy == "drop" or part.ambiguous >= 1)):
        # an ambiguous part that was already resent once is not sent a third time
        return Outcome(
            "failed", _given_up(record, part), now_ms, failure.kind, error_code(failure), ambiguous
        )
    if expired(record, now_ms, max_age_ms):
        return Outcome("pending", "expired", now_ms, failure.kind, ErrorCode.UNAVAILABLE, ambiguous)
    delay = retry_delay_ms(record.attempts + 1, failure.retry_after_s, uniform)
    return Outcome("pending", "pending", now_ms + delay, failure.kind, None, ambiguous)


FoundSending = Literal["resend", "drop", "wait"]


def found_sending(part: Part, *, policy: AmbiguityPolicy, grace_left_ms: int) -> FoundSending:
    """A part marked ``sending`` that nobody is sending (the gateway died mid-call).

    ``grace_left_ms`` > 0: the platform may still tell us (a WhatsApp status webhook
    carrying our opaque data settles it), so wait that long first."""
    if grace_left_ms > 0:
        return "wait"
    if policy == "drop" or part.ambiguous >= 1:
        return "drop"
    return "resend"
