"""``trio.run`` for CLI commands, with Ctrl-C as a cancellation.

Left to trio's default, SIGINT raises ``KeyboardInterrupt`` wherever Python happens to be --
possibly inside a background task of the client library (trio-websocket's reader, answering
a close frame). On its way out of that task, the interrupt meets a checkpoint while the
task's nursery is being cancelled; the ``Cancelled`` raised there replaces it, the nursery
absorbs the ``Cancelled``, and the Ctrl-C is gone: ``logs --follow`` kept running (the flake
of ``test_logs_follow_sees_new_lines_and_survives_a_restart``; reproduced by raising the
interrupt exactly there).

Here a signal receiver takes SIGINT instead and cancels the command's whole task tree, which
unwinds through the ordinary cancellation paths (an agent run is still aborted on the
gateway, sockets still get their close frames); then :func:`run` raises
``KeyboardInterrupt`` for ``main`` to turn into exit 130. A second Ctrl-C while that unwinds
is trio's default again: immediate.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import trio

T = TypeVar("T")


def run(async_fn: Callable[..., Awaitable[T]], *args: object) -> T:
    if threading.current_thread() is not threading.main_thread():
        return trio.run(async_fn, *args)  # no signals here (tests call main() from threads)
    interrupted = False
    result: list[T] = []

    async def watch(signals: AsyncIterator[int], scope: trio.CancelScope) -> None:
        nonlocal interrupted
        async for _ in signals:
            interrupted = True
            scope.cancel()
            return

    async def main() -> None:
        with trio.open_signal_receiver(signal.SIGINT) as signals:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(watch, signals, nursery.cancel_scope)
                result.append(await async_fn(*args))
                nursery.cancel_scope.cancel()  # done: the watcher too

    try:
        trio.run(main)
    except BaseExceptionGroup as group:
        raise _single(group) from None
    if interrupted or not result:
        raise KeyboardInterrupt
    return result[0]


def _single(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The command's own error out of the nursery's group (the watcher only ever ends by
    cancellation); the group itself if there really are several."""
    leaves: list[BaseException] = []
    stack: list[BaseException] = [group]
    while stack:
        exc = stack.pop()
        if isinstance(exc, BaseExceptionGroup):
            stack.extend(exc.exceptions)
        elif not isinstance(exc, trio.Cancelled):
            leaves.append(exc)
    return leaves[0] if len(leaves) == 1 else group
