"""Events, presence and shutdown over real sockets with the plain ``websockets`` client.

Sections checked: 4.3 (per-connection ``seq``, ``stateVersion``), 4.4 (tick/presence/health
go to every authenticated connection), 7.1 (health probe bumps the version and broadcasts),
7.3 (system-presence), 7.4 (system-event and Node: beacons), 8 (event payloads), 9 (presence
rules: tracking, dedupe, disconnect), 11 (tick keepalive), 12 (graceful shutdown, 1012).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import attrs
import trio
import trio.testing
from gateway_client import open_client
from websockets.sync.client import ClientConnection

from gateway.app import Running

from .conftest import (
    TOKEN,
    StartGateway,
    handshake,
    in_thread,
    make_settings,
    open_raw,
    recv_json,
    recv_until,
    request,
)
from .test_handshake import RawClient, client_info, recv_close, send_json


def is_event(name: str) -> Any:
    return lambda f: f.get("type") == "event" and f.get("event") == name


def entry_for(listing: list[dict[str, Any]], instance_id: str) -> list[dict[str, Any]]:
    return [e for e in listing if e.get("instanceId") == instance_id]


def presence_event_with(ws: ClientConnection, instance_id: str, reason: str) -> dict[str, Any]:
    """The next ``presence`` event whose entry for ``instance_id`` has ``reason``."""
    return recv_until(
        ws,
        lambda f: (
            is_event("presence")(f)
            and any(
                e.get("reason") == reason for e in entry_for(f["payload"]["presence"], instance_id)
            )
        ),
    )


def request_collecting(
    ws: ClientConnection, method: str, params: dict[str, Any]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Like ``request`` but keep the events that arrive before the ``res``."""
    rid = str(uuid.uuid4())
    send_json(ws, {"type": "req", "id": rid, "method": method, "params": params})
    events: list[dict[str, Any]] = []
    while True:
        frame = recv_json(ws)
        if frame.get("type") == "res" and frame.get("id") == rid:
            return frame, events
        events.append(frame)


def first_or_next(
    ws: ClientConnection, buffered: list[dict[str, Any]], predicate: Any
) -> dict[str, Any]:
    """The first buffered frame matching ``predicate``, else the next one read from ``ws``."""
    for frame in buffered:
        if predicate(frame):
            return frame
    return recv_until(ws, predicate)


def assert_state_version(frame: dict[str, Any]) -> dict[str, int]:
    version: dict[str, int] = frame["stateVersion"]
    assert set(version) == {"presence", "health"}
    assert all(isinstance(v, int) and v >= 1 for v in version.values())
    return version


# -- 4.3 / 11 tick and seq ----------------------------------------------------------------------------


async def test_tick_every_interval_with_per_connection_seq(
    autojump_clock: trio.testing.MockClock, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """Sections 4.3 / 8 / 11: tick {ts} every tickIntervalMs (30 s, in virtual time); seq is
    1, 2, 3, ... after hello-ok."""
    running = await start_gateway(make_settings(tmp_path))
    async with open_client(running.url, token=TOKEN, client_mode="cli") as client:
        assert client.hello["policy"]["tickIntervalMs"] == 30_000
        events: list[dict[str, Any]] = []
        async with client.subscribe() as frames:
            with trio.fail_after(600):
                while len([e for e in events if e["event"] == "tick"]) < 4:
                    events.append(await frames.receive())
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    ticks = [e for e in events if e["event"] == "tick"]
    for tick in ticks:
        assert set(tick) == {"type", "event", "payload", "seq"}
        assert set(tick["payload"]) == {"ts"}
        assert isinstance(tick["payload"]["ts"], int)


async def test_two_connections_have_independent_seq(
    autojump_clock: trio.testing.MockClock, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """Section 4.3: seq is a per-connection counter, both starting at 1."""
    running = await start_gateway(make_settings(tmp_path))
    url = running.url  # the clients connect as the CLI: untracked, so no presence events

    async def until_ticks(frames: Any, count: int) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        while len([f for f in got if f["event"] == "tick"]) < count:
            got.append(await frames.receive())
        return got

    async with open_client(url, token=TOKEN, client_mode="cli") as first, first.subscribe() as one:
        with trio.fail_after(600):
            before = await until_ticks(one, 2)
            async with (
                open_client(url, token=TOKEN, client_mode="cli") as second,
                second.subscribe() as two,
            ):
                theirs = await until_ticks(two, 2)
                ours = await until_ticks(one, 2)
    assert [f["seq"] for f in theirs] == list(range(1, len(theirs) + 1))
    assert [f["seq"] for f in before + ours] == list(range(1, len(before) + len(ours) + 1))
    their_ticks = [f["payload"]["ts"] for f in theirs if f["event"] == "tick"]
    our_ticks = [f["payload"]["ts"] for f in ours if f["event"] == "tick"]
    assert their_ticks == our_ticks  # the same broadcasts, numbered per connection


# -- 9 presence ------------------------------------------------------------------------------------


async def test_presence_on_connect_and_disconnect(gateway: Running) -> None:
    """Sections 3.9 / 8 / 9: a tracked (mode test) client's connect and disconnect are broadcast
    as presence events carrying the full list and stateVersion; disconnect keeps the entry."""

    def client() -> None:
        with open_raw(gateway.url) as observer:
            hello = handshake(observer, client=client_info("cli", client_id="cli"))
            start_version = hello["payload"]["snapshot"]["stateVersion"]["presence"]
            instance = str(uuid.uuid4())
            with open_raw(gateway.url) as tracked:
                handshake(
                    tracked,
                    client={**client_info("test", instance_id=instance), "displayName": "Bench"},
                )
                joined = presence_event_with(observer, instance, "connect")
            left = presence_event_with(observer, instance, "disconnect")

        joined_version = assert_state_version(joined)
        left_version = assert_state_version(left)
        assert joined_version["presence"] > start_version
        assert left_version["presence"] > joined_version["presence"]
        assert isinstance(joined["seq"], int)
        assert left["seq"] > joined["seq"]
        (entry,) = entry_for(joined["payload"]["presence"], instance)
        assert entry["mode"] == "test"
        assert entry["host"] == "Bench"
        assert entry["version"] == "1.0.0"
        assert entry["platform"] == "linux"
        assert entry["roles"] == ["operator"]
        assert "ip" not in entry  # loopback clients have no ip
        assert isinstance(entry["ts"], int)
        (gone,) = entry_for(left["payload"]["presence"], instance)
        assert gone["reason"] == "disconnect"
        assert any(e.get("mode") == "gateway" for e in left["payload"]["presence"])

    await in_thread(client)


async def test_cli_clients_are_not_tracked(gateway: Running) -> None:
    """Section 9: cli-mode connections do not enter presence nor bump stateVersion.presence."""

    def client() -> None:
        with open_raw(gateway.url) as observer:
            first = handshake(observer, client=client_info("cli", client_id="cli"))
            before = first["payload"]["snapshot"]["stateVersion"]["presence"]
            instance = str(uuid.uuid4())
            with open_raw(gateway.url) as cli:
                second = handshake(
                    cli, client=client_info("cli", client_id="cli", instance_id=instance)
                )
                assert second["payload"]["snapshot"]["stateVersion"]["presence"] == before
                assert entry_for(second["payload"]["snapshot"]["presence"], instance) == []
                listing = request(cli, "system-presence", {})["payload"]
                assert entry_for(listing, instance) == []
            # its disconnect did not touch presence either
            listing = request(observer, "system-presence", {})["payload"]
            assert entry_for(listing, instance) == []
            assert presence_version_seen_by_new_cli(gateway.url) == before

    await in_thread(client)


def presence_version_seen_by_new_cli(url: str) -> int:
    with open_raw(url) as ws:
        hello = handshake(ws, client=client_info("cli", client_id="cli"))
        version: int = hello["payload"]["snapshot"]["stateVersion"]["presence"]
        return version


async def test_same_instance_id_is_one_presence_entry(gateway: Running) -> None:
    """Section 9: presence is keyed by client.instanceId; two connections with it make one entry."""

    def client() -> None:
        instance = str(uuid.uuid4())
        with open_raw(gateway.url) as one, open_raw(gateway.url) as two:
            handshake(one, client=client_info("test", instance_id=instance))
            handshake(two, client=client_info("test", instance_id=instance))
            listing = request(one, "system-presence", {})["payload"]
            assert len(entry_for(listing, instance)) == 1
            upper = instance.upper()  # keys are lowercased
            with open_raw(gateway.url) as three:
                handshake(three, client=client_info("test", instance_id=upper))
                listing = request(three, "system-presence", {})["payload"]
            assert (
                len([e for e in listing if str(e.get("instanceId", "")).lower() == instance]) == 1
            )

    await in_thread(client)


async def test_system_presence_listing(gateway: Running) -> None:
    """Sections 7.3 / 9: system-presence is a bare array, newest ts first, with the gateway self entry."""

    def client() -> None:
        with open_raw(gateway.url) as ws:
            hello = handshake(ws)
            snapshot = hello["payload"]["snapshot"]["presence"]
            assert any(e.get("mode") == "gateway" and e.get("reason") == "self" for e in snapshot)
            res = request(ws, "system-presence", {})
        listing = res["payload"]
        assert isinstance(listing, list)
        (own,) = [e for e in listing if e.get("mode") == "gateway"]
        assert own["reason"] == "self"
        assert isinstance(own["ts"], int)
        stamps = [e["ts"] for e in listing]
        assert stamps == sorted(stamps, reverse=True)
        assert len(listing) >= 2  # self + this test client

    await in_thread(client)


# -- 7.4 system-event -------------------------------------------------------------------------------


async def test_system_event_broadcasts_presence_and_queues_text(gateway: Running) -> None:
    """Section 7.4: system-event {text} -> {ok:true}, presence broadcast, text in queuedSystemEvents."""

    def client() -> None:
        text = f"deploy finished {uuid.uuid4()}"
        with open_raw(gateway.url) as ws, open_raw(gateway.url) as observer:
            hello = handshake(ws, client=client_info("cli", client_id="cli"))
            handshake(observer, client=client_info("cli", client_id="cli"))
            before = hello["payload"]["snapshot"]["stateVersion"]["presence"]
            res = request(ws, "system-event", {"text": text})
            assert res["ok"] is True
            assert res["payload"] == {"ok": True}
            seen = recv_until(
                observer,
                lambda f: (
                    is_event("presence")(f)
                    and any(e.get("text") == text for e in f["payload"]["presence"])
                ),
            )
            assert assert_state_version(seen)["presence"] > before
            status = request(ws, "status", {})["payload"]
        assert text in status["queuedSystemEvents"]

    await in_thread(client)


async def test_node_beacon_is_parsed_into_presence(gateway: Running) -> None:
    """Sections 7.4 / 9: a "Node: host (ip) · app v · mode m · reason r" line becomes presence fields."""
    beacon = "Node: host (10.0.0.5) · app 1.2 · mode ui · reason periodic"

    def client() -> None:
        with open_raw(gateway.url) as ws:
            handshake(ws, client=client_info("cli", client_id="cli"))
            res, events = request_collecting(ws, "system-event", {"text": beacon})
            assert res["payload"] == {"ok": True}
            event = first_or_next(
                ws,
                events,
                lambda f: (
                    is_event("presence")(f)
                    and any(e.get("text") == beacon for e in f["payload"]["presence"])
                ),
            )
            listing = request(ws, "system-presence", {})["payload"]
        for rows in (event["payload"]["presence"], listing):
            (entry,) = [e for e in rows if e.get("text") == beacon]
            assert entry["host"] == "host"
            assert entry["ip"] == "10.0.0.5"
            assert entry["version"] == "1.2"
            assert entry["mode"] == "ui"
            assert entry["reason"] == "periodic"

    await in_thread(client)


# -- 7.1 health probe ---------------------------------------------------------------------------------


async def test_health_answers_follow_each_new_snapshot(gateway: Running) -> None:
    """``health`` answers from the cached snapshot's one encoding; a newly stored snapshot
    must show in the very next answer, not the encoding of the one before."""
    health = gateway.runtime.health

    def store_marked(ts: int) -> None:
        assert health.snapshot is not None
        health.store(attrs.evolve(health.snapshot, ts=ts), trio.current_time())

    def client() -> None:
        with open_raw(gateway.url) as ws:
            handshake(ws, client=client_info("cli", client_id="cli"))
            for marker in (111, 222):
                trio.from_thread.run_sync(store_marked, marker)
                for _ in range(2):  # the first answer encodes, the second reuses
                    assert request(ws, "health", {})["payload"]["ts"] == marker

    await in_thread(client)


async def test_health_probe_bumps_version_and_broadcasts(gateway: Running) -> None:
    """Sections 4.3 / 7.1 / 8: health {probe:true} makes a new snapshot: stateVersion.health +1,
    and a health event with stateVersion goes to every connection."""

    def client() -> None:
        with open_raw(gateway.url) as ws, open_raw(gateway.url) as observer:
            hello = handshake(ws, client=client_info("cli", client_id="cli"))
            handshake(observer, client=client_info("cli", client_id="cli"))
            before = hello["payload"]["snapshot"]["stateVersion"]["health"]
            res, events = request_collecting(ws, "health", {"probe": True})
            assert res["ok"] is True
            assert res["payload"]["ok"] is True
            for conn, buffered in ((ws, events), (observer, [])):
                event = first_or_next(conn, buffered, is_event("health"))
                version = assert_state_version(event)
                assert version["health"] == before + 1
                assert isinstance(event["seq"], int)
                assert event["payload"]["ts"] == res["payload"]["ts"]
            again, events = request_collecting(ws, "health", {"probe": True})
            later = first_or_next(ws, events, is_event("health"))
            assert assert_state_version(later)["health"] == before + 2
            assert again["ok"] is True
            with open_raw(gateway.url) as third:
                hello3 = handshake(third, client=client_info("cli", client_id="cli"))
                assert hello3["payload"]["snapshot"]["stateVersion"]["health"] == before + 2

    await in_thread(client)


# -- 12 graceful shutdown ----------------------------------------------------------------------------


async def test_graceful_stop_sends_shutdown_then_1012(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    """Sections 2.4 / 8 / 12: stop -> every client gets event shutdown {reason}, then close 1012
    "service restart"; the closing handshake is then completed (RFC 6455 7.1.1), not reset.

    The server must not reset the TCP stream right after writing its close frame: a client
    that has not yet processed ``shutdown`` can lose it (the threaded ``websockets`` client
    does, about every other run). We give the client closeGraceMs = 5 s and answer the close
    after at most 1 s. RawClient (see test_handshake) never drops what it has read.
    """
    running = await start_gateway(make_settings(tmp_path, close_grace_ms=5000))

    def client() -> None:
        tracked, cli = RawClient(running.url), RawClient(running.url)
        try:
            assert tracked.handshake(client=client_info("test"))["ok"] is True
            assert cli.handshake(client=client_info("cli", client_id="cli"))["ok"] is True
            trio.from_thread.run_sync(running.stop, "planned maintenance")
            for conn in (tracked, cli):
                texts, close = conn.until_close()
                assert texts, "no shutdown event before the close frame"
                last = texts[-1]
                assert last["type"] == "event", texts
                assert last["event"] == "shutdown", texts
                assert last["payload"]["reason"] == "planned maintenance"
                assert "restartExpectedMs" not in last["payload"]
                assert isinstance(last["seq"], int)
                assert (close.code, close.reason) == (1012, "service restart")
            for conn in (tracked, cli):
                early = conn.tcp_end(timeout=1.0)
                assert early != "reset", (
                    "server reset the TCP connection right after its close frame"
                )
                conn.flush()  # our close reply
                if early == "open":
                    assert conn.tcp_end(timeout=5) == "fin"
        finally:
            tracked.close()
            cli.close()

    await in_thread(client)


async def test_graceful_stop_with_threaded_client(gateway: Running) -> None:
    """Section 12: the plain threaded ``websockets`` client sees 1012 "service restart" on stop."""

    def client() -> None:
        with open_raw(gateway.url) as ws:
            handshake(ws)
            trio.from_thread.run_sync(gateway.stop, "planned maintenance")
            code, reason, frames = recv_close(ws)
            assert (code, reason) == (1012, "service restart")
            assert all(f["type"] == "event" for f in frames)

    await in_thread(client)
