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
from collections.abc import Awaitable, Callable
from typing import TypeVar

import trio

T = TypeVar("T")


def run(async_fn: Callable[..., Awaitable[T]], *args: object) -> T:
    interrupted = False

    async def main() -> tuple[T] | None:
        nonlocal interrupted
        with trio.CancelScope() as scope, trio.open_signal_receiver(signal.SIGINT) as signals:

            async def watch() -> None:
                nonlocal interrupted
                async for _ in signals:
                    interrupted = True
                    scope.cancel()
                    return

            trio.lowlevel.spawn_system_task(watch)
            return (await async_fn(*args),)
        return None

    result = trio.run(main)
    if interrupted or result is None:
        raise KeyboardInterrupt
    return result[0]
