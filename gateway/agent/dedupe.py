"""The idempotency cache (PROTOCOL.md 10): finished results by key, 5 minutes, 1000 entries.

Pure: the clock is passed in. Expired entries are swept whenever the cache is touched, so no
background task is needed; past ``max_entries`` the oldest entries go first.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

import attrs

V = TypeVar("V")

TTL_MS = 300_000
MAX_ENTRIES = 1000


@attrs.define
class IdempotencyCache(Generic[V]):
    ttl_ms: int = TTL_MS
    max_entries: int = MAX_ENTRIES
    _entries: OrderedDict[str, tuple[int, V]] = attrs.field(factory=OrderedDict, init=False)

    def get(self, key: str, now_ms: int) -> V | None:
        self.sweep(now_ms)
        entry = self._entries.get(key)
        return entry[1] if entry is not None else None

    def put(self, key: str, value: V, now_ms: int) -> None:
        self._entries.pop(key, None)
        self._entries[key] = (now_ms, value)
        self.sweep(now_ms)

    def sweep(self, now_ms: int) -> None:
        # entries are in insertion order, which is time order: stop at the first fresh one
        while self._entries:
            key, (ts, _) = next(iter(self._entries.items()))
            if now_ms - ts <= self.ttl_ms and len(self._entries) <= self.max_entries:
                break
            del self._entries[key]

    def values(self) -> list[V]:
        return [value for _, value in self._entries.values()]

    def __len__(self) -> int:
        return len(self._entries)
