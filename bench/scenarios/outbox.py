"""The outbox's reliability figure (issue 13): sends acknowledged while the gateway is killed.

A real gateway process sends through Telegram (``tests/faketelegram.FakeTelegram`` on
loopback, in this harness). ``plan.outbox_sends`` messages are sent with ``send``, each
with its own idempotency key; a client that loses the gateway mid-call retries the same key
once the gateway is back, so every message is acknowledged (``sent`` or ``queued``) in the
end. Meanwhile:

* the sends start ``plan.outbox_interval`` apart, and the gateway is killed with SIGKILL at
  random moments (0.3-1.5 s after it is back) and started again on the same state
  directory, ``plan.outbox_kills`` times;
* from the third boot the crash-loop breaker holds the channels back; each start is
  followed by ``channels.start`` (what its log line tells the operator to do);
* Telegram refuses some ``sendMessage`` calls with 502 (a *known not-sent* error: the
  outbox retries them) and answers slowly (20 ms), so kills land while parts are in
  flight -- the *ambiguous* window the policy (``outbox.ambiguous: resend``) settles.

After the last start, every acknowledged message must arrive. Reported: delivered /
acknowledged, duplicates, the gateway's own count of ambiguous resends (its
``outbox: <key> ambiguous send resent`` log lines), and duplicates not explained by one --
those would be resends after a known not-sent failure, whose target is 0.
"""

from __future__ import annotations

import json
import random
import re
import secrets
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import attrs
import trio

from tests.faketelegram import FakeTelegram, start_fake_telegram

from .. import procs
from ..client import Closed, RequestFailed, open_session
from ..plan import Plan
from ..report import Measurement

BOT = "424242424:BENCHoutboxReliabilityTokenxxxxxxxx"
CHATS = 40
AMBIGUOUS = re.compile(r"outbox: (\S+) ambiguous send resent")
KEY = re.compile(r"rel-(\d+)")
SETTLE_TIMEOUT = 180.0


@attrs.define
class Life:
    """The gateway process of the moment (it is replaced after each kill)."""

    home: Path
    state: Path
    log_path: Path
    token: str
    process: trio.Process | None = None
    port: int = 0
    up: trio.Event = attrs.field(factory=trio.Event)
    starts: int = 0


def _config(fake: FakeTelegram) -> dict[str, Any]:
    config = procs.gateway_config()
    config["agents"] = {"defaults": {"heartbeat": {"every": "0m"}}}
    config["send"] = {"ackWaitMs": 2000}
    config["channels"] = {"telegram": {"botToken": BOT, "apiBaseUrl": fake.base_url}}
    return config


async def _start(life: Life) -> None:
    """Start the next life; ``life.up`` (made by ``_kill``, awaited by the senders) is set
    once it serves and its channels run."""
    env = procs.child_env(
        life.home,
        SMART_AGENT_NEO_STATE_DIR=str(life.state),
        SMART_AGENT_NEO_CONFIG_PATH=str(life.state / "smart-agent-neo.json"),
    )
    mark = life.log_path.stat().st_size if life.log_path.exists() else 0
    argv = [sys.executable, "-m", "gateway", "gateway", "--allow-unconfigured", "--port", "0"]
    with life.log_path.open("ab") as log:
        life.process = await trio.lowlevel.open_process(
            [*argv, f"--token={life.token}"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd=str(life.home),
        )
    with trio.fail_after(procs.START_TIMEOUT):
        while True:
            text = life.log_path.read_bytes()[mark:].decode(errors="replace")
            match = procs.URL_RE.search(text)
            if match and "Ctrl-C" in text:
                life.port = int(match.group(1))
                break
            if life.process.poll() is not None:
                raise procs.ChildFailed(f"gateway exited early:\n{text[-2000:]}")
            await trio.sleep(0.01)
    life.starts += 1
    # from the third unclean boot in 5 minutes the crash-loop breaker keeps the channels
    # stopped (CHANNELS.md 2.4); the operator's answer, as its log line says: channels.start
    conn = await open_session(procs.HOST, life.port, life.token)
    try:
        await conn.call(b"cs", b"channels.start", b'{"channel":"telegram"}')
    finally:
        await conn.close()
    life.up.set()


async def _kill(life: Life) -> None:
    life.up = trio.Event()
    process = life.process
    if process is not None and process.returncode is None:
        process.send_signal(signal.SIGKILL)
        await process.wait()


async def _send_until_acked(life: Life, i: int, acks: dict[int, str]) -> None:
    """``send`` message ``i`` until the gateway answers; the same key every time."""
    params = json.dumps(
        {"to": str(1000 + i % CHATS), "message": f"o{i}", "idempotencyKey": f"rel-{i}"}
    ).encode()
    n = 0
    while True:
        await life.up.wait()
        try:
            conn = await open_session(procs.HOST, life.port, life.token)
        except (OSError, Closed, RequestFailed, trio.BrokenResourceError):
            await trio.sleep(0.05)
            continue
        try:
            n += 1
            raw = await conn.call(f"s{i}-{n}".encode(), b"send", params)
            frame = json.loads(raw)
            if frame.get("ok"):
                acks[i] = frame["payload"]["deliveryState"]
                return
            await trio.sleep(0.2)  # UNAVAILABLE while stopping, etc.: ask again
        except (OSError, Closed, RequestFailed, trio.BrokenResourceError):
            await trio.sleep(0.05)
        finally:
            with trio.move_on_after(1):
                await conn.close()


async def run(plan: Plan, workdir: Path) -> list[Measurement]:
    sends, kills = plan.outbox_sends, plan.outbox_kills
    rng = random.Random(13)
    home = workdir / f"home-outbox-{secrets.token_hex(4)}"
    state = home / ".smart-agent-neo"
    state.mkdir(parents=True)
    life = Life(home, state, home / "gateway.log", secrets.token_hex(24))
    acks: dict[int, str] = {}
    killed = injected = 0
    t0 = trio.current_time()
    async with trio.open_nursery() as nursery:
        fake = await start_fake_telegram(nursery, poll_cap_s=25.0)
        fake.add_bot(BOT)
        fake.delay("sendMessage", 0.02)
        procs.write_config(state / "smart-agent-neo.json", _config(fake))
        try:
            await _start(life)
            async with trio.open_nursery() as senders:
                limiter = trio.CapacityLimiter(8)

                all_acked = trio.Event()

                async def one(i: int) -> None:
                    await trio.sleep(i * plan.outbox_interval)  # spread over the kills
                    async with limiter:
                        await _send_until_acked(life, i, acks)
                    if len(acks) >= sends:
                        all_acked.set()

                for i in range(sends):
                    senders.start_soon(one, i)
                while not all_acked.is_set():
                    with trio.move_on_after(rng.uniform(0.3, 1.5)):
                        await all_acked.wait()
                    if all_acked.is_set():
                        break
                    if rng.random() < 0.5:  # a known not-sent failure for the next calls
                        times = rng.randint(1, 4)
                        injected += times
                        fake.fail("sendMessage", 502, "Bad Gateway", times=times)
                    if killed < kills:
                        await _kill(life)
                        killed += 1
                        await _start(life)
            acked_at = trio.current_time() - t0
            # the last life: no more kills; every acknowledged message must arrive
            with trio.move_on_after(SETTLE_TIMEOUT):
                await fake.wait_for(
                    lambda: {m.get("text") for m in fake.all_sent(BOT)} >= {f"o{i}" for i in acks}
                )
            settled_at = trio.current_time() - t0
        finally:
            await _kill(life)
        nursery.cancel_scope.cancel()
    texts = Counter(str(m.get("text")) for m in fake.all_sent(BOT))
    delivered = sum(1 for i in acks if texts[f"o{i}"] >= 1)
    duplicates = sum(n - 1 for n in texts.values() if n > 1)
    files = sorted((state / "logs").glob("*.log"))  # the JSON-lines file log, every life
    log = (
        "".join(f.read_text(errors="replace") for f in files)
        if files
        else (life.log_path.read_text(errors="replace"))
    )
    resends = Counter(int(n) for key in AMBIGUOUS.findall(log) for n in KEY.findall(key))
    resent = sum(resends.values())
    # a duplicate of message i is explained when the gateway resent i after an ambiguous
    # attempt (a kill while the part was in flight); the rest would be resends of known
    # not-sent failures
    unexplained = sum(max(0, texts[f"o{i}"] - 1 - resends[i]) for i in acks)
    queued = sum(1 for state_name in acks.values() if state_name == "queued")
    detail = {
        "sends": sends,
        "acked": len(acks),
        "acked_queued": queued,
        "delivered": delivered,
        "duplicates": duplicates,
        "ambiguous_resent": resent,
        "unexplained_duplicates": unexplained,
        "kills": killed,
        "starts": life.starts,
        "injected_502": injected,
        "seconds_to_ack_all": acked_at,
        "seconds_to_deliver_all": settled_at,
    }
    note = (
        f"{len(acks)} acked ({queued} queued) across {killed} kill -9s and {injected} "
        f"injected 502s; {delivered} delivered, "
        f"{duplicates} duplicates ({resent} ambiguous resends, {unexplained} after known "
        f"not-sent errors); all delivered {settled_at:.1f} s after the first send"
    )
    return [
        Measurement(
            "outbox",
            f"acked sends delivered after kill -9 ({sends} sends)",
            100.0 * delivered / max(1, len(acks)),
            "%",
            note=note,
            detail=detail,
        ),
        Measurement(
            "outbox",
            "duplicates after known not-sent failures",
            float(unexplained),
            "msgs",
            note="target 0; a duplicate after an ambiguous send is counted separately",
            detail=detail,
            lower_is_better=True,
        ),
        Measurement(
            "outbox",
            "ambiguous-window duplicates (outbox.ambiguous: resend)",
            100.0 * resent / max(1, len(acks)),
            "% of sends",
            note=f"{resent} ambiguous resends, {duplicates} duplicate messages at Telegram",
            detail=detail,
            lower_is_better=True,
        ),
    ]
