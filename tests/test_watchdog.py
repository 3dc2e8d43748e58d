"""The event-loop watchdog (FAILURE-MODES 26; issue 16): a blocked loop is logged with the
task that blocked it and counted in /metrics; a healthy loop is not."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import httpx
import pytest
import trio

from gateway.config.load import parse
from gateway.watchdog import BEAT_S, Culprit, culprit

from .conftest import TOKEN, StartGateway, make_settings


async def test_the_culprit_is_the_task_running_on_the_loop() -> None:
    seen: list[Culprit | None] = []

    async def hog_task() -> None:
        await trio.lowlevel.checkpoint()
        seen.append(culprit(sys._getframe()))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(hog_task)
    (found,) = seen
    assert found is not None
    assert (
        found.task
        == f"{__name__}.test_the_culprit_is_the_task_running_on_the_loop.<locals>.hog_task"
    )
    assert "test_watchdog.py:" in found.where
    assert found.where.endswith(
        "in test_the_culprit_is_the_task_running_on_the_loop.<locals>.hog_task"
    )


def blocked_total(text: str) -> float:
    for line in text.splitlines():
        if line.startswith("smart_agent_neo_event_loop_blocked_total "):
            return float(line.split()[1])
    raise AssertionError("no event_loop_blocked_total in /metrics")


@pytest.mark.timeout(30)
async def test_a_blocked_loop_is_logged_with_its_task_and_counted(
    start_gateway: StartGateway, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    raw = {"gateway": {"watchdog": {"thresholdMs": 200}}}
    config, _ = parse(json.dumps(raw), {})
    running = await start_gateway(make_settings(tmp_path, config=config))
    url = running.url.replace("ws://", "http://") + "/metrics"
    auth = {"authorization": f"Bearer {TOKEN}"}
    done = trio.Event()

    def slow_disk_read() -> None:
        time.sleep(0.7)  # what a synchronous call on the loop's thread does to everyone

    async def greedy_handler() -> None:
        await trio.sleep(BEAT_S * 3)  # past the watchdog's first beat
        slow_disk_read()
        done.set()

    caplog.set_level(logging.WARNING, logger="gateway.watchdog")
    reported = trio.Event()

    class Reported(logging.Handler):  # the watchdog logs on the trio thread: set directly
        def emit(self, record: logging.LogRecord) -> None:
            if "event loop blocked" in record.getMessage():
                reported.set()

    handler = Reported()
    logging.getLogger("gateway.watchdog").addHandler(handler)
    async with httpx.AsyncClient() as http:
        assert blocked_total((await http.get(url, headers=auth)).text) == 0
        assert running.runtime.nursery is not None
        running.runtime.nursery.start_soon(greedy_handler)
        await done.wait()
        with trio.fail_after(5):  # the watchdog reports on its next beat
            await reported.wait()
        logging.getLogger("gateway.watchdog").removeHandler(handler)
        metrics = (await http.get(url, headers=auth)).text
    (record,) = [r for r in caplog.records if "event loop blocked" in r.getMessage()]
    message = record.getMessage()
    assert "threshold 200 ms" in message
    assert "greedy_handler" in message
    assert (
        "in test_a_blocked_loop_is_logged_with_its_task_and_counted.<locals>.slow_disk_read"
        in message
    )
    assert blocked_total(metrics) == 1
    assert "smart_agent_neo_event_loop_lag_seconds_bucket" in metrics
