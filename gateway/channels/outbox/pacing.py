"""How fast an account may send (CHANNELS.md 6.3). Pure: times (seconds, any monotonic
clock) are passed in; :meth:`Pacer.delay` says how long to wait before the next send to a
chat, :meth:`Pacer.sent` records one.

Telegram's figures (Bot FAQ): about one message per second in a chat -- short bursts are
allowed, so a chat may take ``CHAT_BURST`` at once and then one a second --, at most 20 a
minute in a group, about 30 a second for the bot. WhatsApp Cloud: 80 messages a second per
number by default, and about one every 6 s to one recipient sustained (pair rate limit
131056; we allow bursts and let the platform's error pace a long run).
"""

from __future__ import annotations

from collections import deque

import attrs


@attrs.define
class Bucket:
    """A token bucket: ``capacity`` sends at once, refilled at ``rate`` per second."""

    rate: float
    capacity: float
    tokens: float = -1.0
    at: float = 0.0

    def _fill(self, now: float) -> None:
        if self.tokens < 0:
            self.tokens, self.at = self.capacity, now
            return
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now

    def delay(self, now: float) -> float:
        self._fill(now)
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def take(self, now: float) -> None:
        self._fill(now)
        self.tokens -= 1


@attrs.define
class Window:
    """At most ``limit`` sends in any ``span`` seconds."""

    limit: int
    span: float
    times: deque[float] = attrs.field(factory=deque)

    def delay(self, now: float) -> float:
        while self.times and now - self.times[0] >= self.span:
            self.times.popleft()
        return 0.0 if len(self.times) < self.limit else self.times[0] + self.span - now

    def take(self, now: float) -> None:
        self.times.append(now)


@attrs.frozen
class Limits:
    chat_rate: float
    chat_burst: float
    group_per_minute: int | None
    account_rate: float
    account_burst: float


TELEGRAM = Limits(
    chat_rate=1.0, chat_burst=3, group_per_minute=20, account_rate=30.0, account_burst=30
)
WHATSAPP = Limits(
    chat_rate=1 / 6, chat_burst=5, group_per_minute=None, account_rate=80.0, account_burst=80
)
CHAT_BURST = TELEGRAM.chat_burst
MAX_TRACKED_CHATS = 10_000


class Pacer:
    """One account's pacing: a bucket per chat, a window per group, a bucket for all."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.account = Bucket(limits.account_rate, limits.account_burst)
        self.chats: dict[str, Bucket] = {}
        self.groups: dict[str, Window] = {}

    def _chat(self, chat: str) -> Bucket:
        bucket = self.chats.get(chat)
        if bucket is None:
            if len(self.chats) >= MAX_TRACKED_CHATS:
                self.chats.clear()  # full buckets everywhere: forgetting them costs nothing
            bucket = self.chats[chat] = Bucket(self.limits.chat_rate, self.limits.chat_burst)
        return bucket

    def delay(self, chat: str, group: bool, now: float) -> float:
        waits = [self.account.delay(now), self._chat(chat).delay(now)]
        if group and self.limits.group_per_minute is not None:
            waits.append(
                self.groups.setdefault(chat, Window(self.limits.group_per_minute, 60.0)).delay(now)
            )
        return max(waits)

    def sent(self, chat: str, group: bool, now: float) -> None:
        self.account.take(now)
        self._chat(chat).take(now)
        if group and self.limits.group_per_minute is not None:
            self.groups.setdefault(chat, Window(self.limits.group_per_minute, 60.0)).take(now)
            if len(self.groups) > MAX_TRACKED_CHATS:
                self.groups.pop(next(iter(self.groups)))
