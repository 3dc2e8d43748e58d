"""How much request body the HTTP APIs hold at once: a byte budget, and a body deadline.

A body is read whole before it is parsed (a chat request is one JSON document), and then
lives as parsed objects for as long as its request runs: a 19 MB ``/v1/chat/completions``
body costs four or five times that by the time it is a conversation. Twenty of them at once
took the process to 1.7 GB (issue 16), and memory freed by Python is not all given back.
So the memory must not be taken in the first place:

* Bodies of more than :data:`SMALL_BODY` bytes reserve their size (``Content-Length``, or
  the endpoint's limit when the length is not declared) from one budget per gateway,
  ``gateway.http.maxBodyBytesInFlight`` (64 MiB), *before* a byte is read, and give it back
  when their request has been answered. A request that does not fit waits its turn, first
  come first served -- its bytes meanwhile stay in the kernel's socket buffers, not in our
  memory -- and is answered ``503`` (retryable) if its turn has not come within the body
  deadline. One body larger than the whole budget is read alone. Small bodies (every
  ``/tools/invoke`` call, most chat requests) never wait.
* The whole body must arrive within ``gateway.http.bodyTimeoutMs`` (60 s) of the first
  read, else ``408 Request body timeout``: a body sent a byte a second cannot hold a
  request (and its reservation) open for ever.

Memory for request bodies therefore stays within about five times the budget, whatever
the number of clients (measured: 20 concurrent 19 MB chat requests, +290 MB at peak with the
default 64 MiB; BENCHMARKS.md).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import trio

SMALL_BODY = 256 * 1024
RESERVED = "gateway.body_reserved"  # the scope key holding a request's reservation


class _Waiter:
    __slots__ = ("size", "woken")

    def __init__(self, size: int) -> None:
        self.size = size
        self.woken = trio.Event()


class ByteBudget:
    """A weighted, first-come-first-served semaphore counted in bytes."""

    def __init__(self) -> None:
        self.in_use = 0
        self._queue: deque[_Waiter] = deque()

    def _fits(self, size: int, capacity: int) -> bool:
        return self.in_use == 0 or self.in_use + size <= capacity

    async def acquire(self, size: int, capacity: int) -> None:
        """Take ``size`` bytes of ``capacity`` (read on every call: the setting is hot);
        wait behind earlier requests until they fit.

        Cancellation: a cancelled waiter leaves the queue having taken nothing.
        """
        if not self._queue and self._fits(size, capacity):
            self.in_use += size
            return
        me = _Waiter(size)
        self._queue.append(me)
        try:
            while not (self._queue[0] is me and self._fits(size, capacity)):
                await me.woken.wait()
                me.woken = trio.Event()
        except BaseException:
            self._queue.remove(me)
            self._wake()
            raise
        self._queue.popleft()
        self.in_use += size
        self._wake()  # the next one may fit as well

    def release(self, size: int) -> None:
        self.in_use -= size
        self._wake()

    def _wake(self) -> None:
        if self._queue:
            self._queue[0].woken.set()

    @property
    def waiting(self) -> int:
        return len(self._queue)


def release(budget: ByteBudget, scope: dict[str, Any]) -> None:
    """Give back what the request in ``scope`` reserved (once it has been answered)."""
    size = scope.pop(RESERVED, 0)
    if size:
        budget.release(size)
