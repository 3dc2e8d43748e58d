"""The per-connection outbound queue: the pure admit policy, offer accounting and the writer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing

from gateway.outbox import Outbox, Text, admit, frame_size

# -- admit ----------------------------------------------------------------------------------


@pytest.mark.parametrize("droppable", [True, False])
@pytest.mark.parametrize("frame_bytes", [1, 100, 10_000_000])
def test_empty_buffer_always_admits(frame_bytes: int, droppable: bool) -> None:
    assert admit(0, frame_bytes, droppable, limit=100) == "queued"


@pytest.mark.parametrize("droppable", [True, False])
def test_within_limit_is_queued(droppable: bool) -> None:
    assert admit(50, 49, droppable, limit=100) == "queued"
    assert admit(50, 50, droppable, limit=100) == "queued"  # exactly at the limit


def test_over_limit_droppable_is_dropped() -> None:
    assert admit(50, 51, True, limit=100) == "dropped"
    assert admit(100, 1, True, limit=100) == "dropped"


def test_over_limit_not_droppable_closes() -> None:
    assert admit(50, 51, False, limit=100) == "close"
    assert admit(100, 1, False, limit=100) == "close"


def test_frame_size_counts_utf8_bytes() -> None:
    assert frame_size("abc") == 3
    assert frame_size("") == 0
    assert frame_size("é") == 2
    assert frame_size("🔑x") == 5


# -- offer ----------------------------------------------------------------------------------


def test_offer_accounts_queued_bytes() -> None:
    box = Outbox(limit=10)
    assert box.offer("aaaa") == "queued"
    assert box.queued_bytes == 4
    assert box.offer("bbbbbb") == "queued"
    assert box.queued_bytes == 10
    assert box.dropped == 0


def test_offer_counts_utf8_bytes() -> None:
    box = Outbox(limit=100)
    box.offer("ééé")
    assert box.queued_bytes == 6


def test_first_frame_is_taken_even_if_larger_than_the_limit() -> None:
    box = Outbox(limit=10)
    assert box.offer("x" * 50) == "queued"
    assert box.queued_bytes == 50
    assert box.offer("y", droppable=True) == "dropped"
    assert box.offer("y") == "close"


def test_over_limit_droppable_is_counted_and_not_queued() -> None:
    box = Outbox(limit=10)
    box.offer("12345678")
    assert box.offer("abc", droppable=True) == "dropped"
    assert box.offer("def", droppable=True) == "dropped"
    assert box.dropped == 2
    assert box.queued_bytes == 8
    # a frame that still fits is accepted after drops
    assert box.offer("gh", droppable=True) == "queued"
    assert box.queued_bytes == 10


def test_over_limit_not_droppable_says_close_without_queueing() -> None:
    box = Outbox(limit=10)
    box.offer("12345678")
    assert box.offer("abc") == "close"
    assert box.queued_bytes == 8
    assert box.dropped == 0


def test_frames_after_request_close_are_dropped() -> None:
    box = Outbox(limit=1000)
    box.offer("before")
    box.request_close(1000, "bye")
    assert box.close_requested
    assert box.offer("after") == "dropped"
    assert box.offer("after", droppable=True) == "dropped"
    assert box.queued_bytes == len("before")


def test_first_close_request_wins() -> None:
    box = Outbox(limit=1000)
    box.request_close(1008, "slow consumer")
    box.request_close(1012, "restart")
    assert box.close_frame == (1008, "slow consumer")


# -- run ------------------------------------------------------------------------------------


class AsDicts:
    """A FrameWriter that hands each frame to ``send`` as the ASGI message it stands for."""

    def __init__(self, send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        self._send = send

    async def send_text(self, text: Text) -> None:
        if isinstance(text, tuple):
            text = b"".join(text).decode()
        await self._send({"type": "websocket.send", "text": text})

    async def write_framed(self, data: bytes) -> None:
        await self._send({"type": "websocket.framed", "bytes": data})

    async def send_close(self, code: int, reason: str) -> None:
        await self._send({"type": "websocket.close", "code": code, "reason": reason})


class Recorder:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def send(self, message: dict[str, Any]) -> None:
        await trio.lowlevel.checkpoint()
        self.messages.append(message)


async def test_run_drains_in_order_then_closes() -> None:
    box = Outbox(limit=1000)
    for text in ("one", "two", "three"):
        assert box.offer(text) == "queued"
    box.request_close(1000, "done")
    recorder = Recorder()
    with trio.fail_after(5):
        await box.run(AsDicts(recorder.send))
    assert recorder.messages == [
        {"type": "websocket.send", "text": "one"},
        {"type": "websocket.send", "text": "two"},
        {"type": "websocket.send", "text": "three"},
        {"type": "websocket.close", "code": 1000, "reason": "done"},
    ]
    assert box.queued_bytes == 0
    assert box.finished.is_set()


async def test_run_waits_for_frames_offered_later() -> None:
    box = Outbox(limit=1000)
    recorder = Recorder()
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(box.run, AsDicts(recorder.send))
            await trio.testing.wait_all_tasks_blocked()
            assert recorder.messages == []
            box.offer("a")
            box.offer("bb")
            await trio.testing.wait_all_tasks_blocked()
            assert [m["text"] for m in recorder.messages] == ["a", "bb"]
            assert box.queued_bytes == 0
            box.offer("ccc")
            box.request_close(1012, "restart")
    assert recorder.messages[-2:] == [
        {"type": "websocket.send", "text": "ccc"},
        {"type": "websocket.close", "code": 1012, "reason": "restart"},
    ]
    assert box.queued_bytes == 0
    assert box.finished.is_set()


async def test_bytes_count_until_send_returns() -> None:
    box = Outbox(limit=1000)
    gate = trio.Event()
    sent: list[dict[str, Any]] = []

    async def slow_send(message: dict[str, Any]) -> None:
        await gate.wait()
        sent.append(message)

    box.offer("12345")
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(box.run, AsDicts(slow_send))
            await trio.testing.wait_all_tasks_blocked()
            assert box.queued_bytes == 5  # in flight still counts against the limit
            gate.set()
            await trio.testing.wait_all_tasks_blocked()
            assert box.queued_bytes == 0
            box.request_close(1000, "bye")
    assert [m["type"] for m in sent] == ["websocket.send", "websocket.close"]


async def test_finished_is_set_when_the_writer_is_cancelled() -> None:
    box = Outbox(limit=1000)
    recorder = Recorder()
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(box.run, AsDicts(recorder.send))
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
    assert box.finished.is_set()
    assert recorder.messages == []


# -- flush (a response sent by the task that made it) ----------------------------------------


def test_offer_wakes_the_writer_unless_told_not_to() -> None:
    box = Outbox(limit=1000)
    wakes: list[str] = []
    box.on_wake = lambda: wakes.append("wake")
    box.offer("response", wake=False)
    assert wakes == []
    box.offer("event")
    box.offer("dropped?", droppable=True)
    assert wakes == ["wake", "wake"]
    box.request_close(1000, "bye")  # the close frame needs the writer too
    assert wakes == ["wake", "wake", "wake"]


async def test_flush_sends_the_queue_in_order_from_the_calling_task() -> None:
    box = Outbox(limit=1000)
    box.offer("event-first")
    box.offer("response", wake=False)
    recorder = Recorder()
    with trio.fail_after(5):
        await box.flush(AsDicts(recorder.send))
    assert [m["text"] for m in recorder.messages] == ["event-first", "response"]
    assert box.queued_bytes == 0
    assert not box.finished.is_set()  # flushing is not the writer ending


async def test_flush_while_the_writer_sends_leaves_the_queue_to_it() -> None:
    """One sender at a time: a flush that finds the writer mid-send returns at once, and
    the writer sends the newly queued frame after its current one, in order."""
    box = Outbox(limit=1000)
    gate = trio.Event()
    sent: list[str] = []

    async def slow_send(message: dict[str, Any]) -> None:
        await gate.wait()
        sent.append(message.get("text") or message["type"])

    box.offer("first")
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(box.run, AsDicts(slow_send))
            await trio.testing.wait_all_tasks_blocked()  # the writer is inside send("first")
            box.offer("second", wake=False)
            await box.flush(AsDicts(slow_send))  # returns without sending
            assert sent == []
            gate.set()
            await trio.testing.wait_all_tasks_blocked()
            assert sent == ["first", "second"]
            box.request_close(1000, "bye")
    assert sent == ["first", "second", "websocket.close"]


async def test_flush_leaves_the_close_frame_to_the_writer() -> None:
    box = Outbox(limit=1000)
    wakes: list[str] = []
    box.offer("last words", wake=False)
    box.request_close(1008, "policy")
    box.on_wake = lambda: wakes.append("wake")
    recorder = Recorder()
    with trio.fail_after(5):
        await box.flush(AsDicts(recorder.send))
    assert recorder.messages == [{"type": "websocket.send", "text": "last words"}]
    assert wakes == ["wake"]  # and the writer was asked to send the close


@pytest.mark.timeout(10)  # the bug this guards against spun without a checkpoint
async def test_a_close_while_another_task_is_mid_send_waits_for_it() -> None:
    """The writer must wait (not spin) while a response's flush is stuck in a send, then
    send the close once that flush is done."""
    box = Outbox(limit=1000)
    gate = trio.Event()
    sent: list[str] = []

    async def slow_send(message: dict[str, Any]) -> None:
        await gate.wait()
        sent.append(message.get("text") or message["type"])

    box.offer("response", wake=False)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(box.flush, AsDicts(slow_send))
            await trio.testing.wait_all_tasks_blocked()  # the flush is inside send
            box.request_close(1012, "service restart")
            nursery.start_soon(box.run, AsDicts(slow_send))
            await trio.testing.wait_all_tasks_blocked()  # a spinning writer never gets here
            assert sent == []
            gate.set()
    assert sent == ["response", "websocket.close"]
