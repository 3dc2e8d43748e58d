"""Request bodies of the HTTP APIs (issue 16): a byte budget bounds what is held at once,
a body deadline bounds how long a body may trickle in."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
import trio
import trio.testing

from gateway.config.load import parse
from gateway.server.bodies import ByteBudget

from .conftest import TOKEN, StartGateway, in_thread, make_settings
from .fakeprovider import chat_sse, start_fake_provider

MIB = 1024 * 1024


async def test_the_budget_is_first_come_first_served_and_never_overcommitted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    budget = ByteBudget()
    order: list[str] = []

    async def take(name: str, size: int, hold: float) -> None:
        await budget.acquire(size, 10)
        order.append(name)
        assert budget.in_use <= 10 or budget.in_use == size
        await trio.sleep(hold)
        budget.release(size)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(take, "a", 6, 1.0)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(take, "b", 6, 1.0)  # must wait for a
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(take, "c", 2, 1.0)  # would fit now, but b came first
        await trio.testing.wait_all_tasks_blocked()
        assert order == ["a"]
        assert budget.waiting == 2
    assert order == ["a", "b", "c"]
    assert budget.in_use == 0


async def test_a_cancelled_waiter_takes_nothing_and_lets_the_next_in(
    autojump_clock: trio.testing.MockClock,
) -> None:
    budget = ByteBudget()
    await budget.acquire(8, 10)
    with trio.move_on_after(1):
        await budget.acquire(8, 10)
    assert budget.waiting == 0
    assert budget.in_use == 8
    budget.release(8)
    await budget.acquire(20, 10)  # bigger than the whole budget: alone
    assert budget.in_use == 20


def _trickle(host: str, port: int) -> bytes:
    """A body sent a byte at a time, far slower than the deadline allows."""
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(
            b"POST /tools/invoke HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {TOKEN}\r\nContent-Length: 100\r\n\r\n".encode()
            + b"{"
        )
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
        return answer


async def test_a_body_sent_a_byte_at_a_time_is_timed_out(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    """Issue 16 (low): a request body sent one byte per second was never timed out."""
    config, _ = parse(json.dumps({"gateway": {"http": {"bodyTimeoutMs": 300}}}), {})
    running = await start_gateway(make_settings(tmp_path, config=config))
    with trio.fail_after(10):
        answer = await in_thread(_trickle, running.host, running.port)
    assert answer.startswith(b"HTTP/1.1 408 "), answer


async def test_concurrent_big_bodies_wait_for_the_budget(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """Issue 16 (low): 20 concurrent 19 MB chat requests took RSS to 1.7 GB. Bodies held at
    once are capped by gateway.http.maxBodyBytesInFlight: one that does not fit waits, and
    is answered 503 (retryable) if its turn does not come within the body deadline; the
    budget is given back when a request has been answered."""
    fake = await start_fake_provider(nursery)
    release = trio.Event()
    fake.queue(chat_sse("held", hold_after=1, release=release), chat_sse("second"))
    raw = {
        "gateway": {
            "http": {
                "endpoints": {"chatCompletions": {"enabled": True}},
                "maxBodyBytesInFlight": MIB,
                "bodyTimeoutMs": 500,
            }
        },
        "models": {
            "providers": {
                "fake": {"baseUrl": fake.base_url, "apiKey": "sk-test", "models": [{"id": "m1"}]}
            }
        },
    }
    config, _ = parse(json.dumps(raw), {})
    running = await start_gateway(make_settings(tmp_path, config=config))
    rt = running.runtime
    url = running.url.replace("ws://", "http://") + "/v1/chat/completions"
    big = "x" * (700 * 1024)
    body = {"model": "smart-agent-neo", "messages": [{"role": "user", "content": big}]}
    auth = {"authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(timeout=10) as http:
        first: list[httpx.Response] = []
        answered = trio.Event()

        async def first_request() -> None:
            first.append(await http.post(url, json=body, headers=auth))
            answered.set()

        nursery.start_soon(first_request)
        with trio.fail_after(10):
            await fake.streaming.wait()  # the first body is read, its run holds the budget
        assert rt.bodies.in_use > 512 * 1024
        second = await http.post(url, json=body, headers=auth)
        assert second.status_code == 503
        assert second.headers["retry-after"] == "1"
        release.set()
        with trio.fail_after(10):
            await answered.wait()
        assert first[0].status_code == 200
        assert rt.bodies.in_use == 0
        third = await http.post(url, json=body, headers=auth)
        assert third.status_code == 200
    assert rt.bodies.in_use == 0
