"""The reference gateway on this machine, under the same load: ``--reference CMD``.

The targets compare us with the TypeScript reference (openclaw), whose figures in the issue
were measured on another machine. With ``--reference``, the harness starts the reference
from the given command and runs the same load jobs against it that it runs against us, so
the "x times the reference" targets are judged on one machine: the load cases (``rpc``,
``http``, ``handshake``, ``fanout``) measure it in the same scenario as our gateway,
alternating repetitions (:func:`rival`), and this scenario measures what needs a fresh
process -- cold start, idle RSS and the operators joining one by one.

``CMD`` is a command line with ``{port}`` and ``{token}`` placeholders, e.g.::

    python -m bench --reference \\
      "openclaw gateway --port {port} --token {token} --bind loopback --allow-unconfigured"

It runs with a throw-away HOME, in its own process group (the reference starts helper
processes; all are stopped at the end), with its output in a log file. The reference may
try to reach the internet (model catalogs, updates); its HTTP(S) proxy is pointed at a
closed loopback port so that such requests fail at once instead of leaving the machine
(``NODE_USE_ENV_PROXY``, honoured by Node 24+).
"""

from __future__ import annotations

import os
import secrets
import shlex
import signal
import subprocess
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from pathlib import Path
from statistics import median
from typing import Any

import attrs
import trio

from .. import procs
from ..client import now, open_session
from ..plan import Plan
from ..report import Measurement
from .connections import joined_rss, joins_row

START_TIMEOUT = 90.0  # the reference takes 9-11 s to its first hello-ok
READY_SETTLE = 5.0  # x plan.settle: it keeps starting channels and sidecars after that
DEAD_PROXY = "http://127.0.0.1:9"  # the discard port: nothing listens there


@attrs.define
class Reference:
    process: trio.Process
    port: int
    token: str
    log_path: Path

    @property
    def pid(self) -> int:
        return int(self.process.pid)

    def rss(self) -> int:
        """RSS of the reference's whole process group (it runs helper processes)."""
        total = 0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if os.getpgid(int(entry.name)) == self.pid:
                    total += procs.rss_bytes(int(entry.name))
            except (OSError, procs.ChildFailed):
                continue
        return total

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def argv_for(template: str, port: int, token: str) -> list[str]:
    return [part.format(port=port, token=token) for part in shlex.split(template)]


@asynccontextmanager
async def reference(template: str, workdir: Path) -> AsyncIterator[Reference]:
    home = workdir / f"reference-{secrets.token_hex(4)}"
    home.mkdir(parents=True)
    # hex: a token that starts with "-" would read as an option in "--token {token}"
    port, token = procs.free_port(), secrets.token_hex(24)
    env = procs.child_env(
        home,
        NODE_USE_ENV_PROXY="1",
        HTTP_PROXY=DEAD_PROXY,
        HTTPS_PROXY=DEAD_PROXY,
        NO_PROXY="127.0.0.1,localhost",
    )
    log_path = home / "reference.log"
    with log_path.open("wb") as log:
        process = await trio.lowlevel.open_process(
            argv_for(template, port, token),
            env=env,
            cwd=str(home),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    ref = Reference(process, port, token, log_path)
    try:
        yield ref
    finally:
        await _stop_group(process)


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (from ``/proc``): the reference starts helpers, some
    in sessions of their own, which a signal to its process group would miss."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


async def _stop_group(process: trio.Process, grace: float = 10.0) -> None:
    helpers = descendants(process.pid)
    for signum in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            break
        with trio.move_on_after(grace):
            await process.wait()
        if process.returncode is not None:
            break
    for pid in [*helpers, *descendants(process.pid)]:  # whatever outlived the main process
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


async def _first_hello(ref: Reference) -> float:
    """Seconds from now until a session completes the handshake (retrying every 10 ms:
    while it starts, a gateway may refuse, reset, answer 503 or close with 1013)."""
    t0 = now()
    last = "no attempt yet"
    with trio.move_on_after(START_TIMEOUT):
        while True:
            if ref.process.poll() is not None:
                tail = ref.log_tail(3).replace("\n", " | ")  # one line: rows keep the first
                code = ref.process.returncode
                raise procs.ChildFailed(f"reference exited with {code} ({last}); log: {tail}")
            try:
                conn = await open_session(procs.HOST, ref.port, ref.token, "cli")
            except Exception as exc:
                last = f"{type(exc).__name__}: {exc}"
                await trio.sleep(0.01)
                continue
            await conn.close()
            return now() - t0
    raise procs.ChildFailed(f"no hello-ok within {START_TIMEOUT:.0f} s; last: {last}")


@asynccontextmanager
async def rival(plan: Plan, workdir: Path) -> AsyncIterator[Reference | None]:
    """The reference, started and settled, when the run has one (``--reference``); else
    ``None``. Scenarios measure it alternately with our gateway: same client, same
    machine, minutes apart at most."""
    if plan.reference is None:
        yield None
        return
    async with reference(plan.reference, workdir) as ref:
        await _first_hello(ref)
        await trio.sleep(READY_SETTLE * plan.settle)
        yield ref


def reference_row(what: dict[str, Any], result: dict[str, Any] | BaseException) -> Measurement:
    """A ``reference`` row for one load case (an error row if its run failed)."""
    if isinstance(result, BaseException):
        note = procs.describe(result)
        return Measurement("reference", _case(**what), None, "", status="error", note=note)
    unit = "hs/s" if "workers" in what else "req/s"
    note = f"server CPU {result['server_cpu_us']:.0f} us/req" if result["server_cpu_us"] else ""
    if result["errors"]:
        note += f"; {result['errors']} errors, e.g. {result['error_samples'][:1]}"
    return Measurement(
        "reference",
        _case(**what),
        result["rate"],
        unit,
        p50_ms=result["p50_ms"],
        p99_ms=result["p99_ms"],
        note=note.lstrip("; "),
        detail={**what, **result},
    )


def fanout_row(plan: Plan, found: dict[str, Any]) -> Measurement:
    return Measurement(
        "reference",
        f"fan-out: system-event -> {plan.fanout_clients} clients",
        found["p99_ms"],
        "ms",
        p50_ms=found["p50_ms"],
        p99_ms=found["p99_ms"],
        lower_is_better=True,
        note=f"p99; {plan.fanout_rounds} rounds, {found['lost']} lost",
        detail={"clients": plan.fanout_clients, **found},
    )


async def run(plan: Plan, workdir: Path, template: str) -> list[Measurement]:
    """What is not measured alternately with our gateway: cold start, idle RSS, joins."""
    rows: list[Measurement] = []
    starts: list[float] = []
    for _ in range(max(1, min(plan.cold_starts, 2))):  # it takes ~10 s each time
        async with reference(template, workdir) as ref:
            starts.append(await _first_hello(ref))
    rows.append(
        Measurement(
            "reference",
            "cold start: spawn -> first hello-ok",
            median(starts) * 1000,
            "ms",
            note=f"median of {len(starts)}",
            detail={"seconds": starts},
        )
    )
    async with reference(template, workdir) as ref:
        await _first_hello(ref)
        await trio.sleep(READY_SETTLE * plan.settle)
        rows.append(
            Measurement(
                "reference",
                "RSS idle",
                ref.rss() / 1024 / 1024,
                "MB",
                note="main process and its helpers",
                detail={"rss": ref.rss()},
            )
        )
    async with reference(template, workdir) as ref:
        await _first_hello(ref)
        await trio.sleep(READY_SETTLE * plan.settle)
        found = await _guarded("joins", joined_rss(ref.port, ref.token, plan, ref.rss))
        rows.append(found)
    return rows


async def _guarded(what: str, work: Awaitable[Any]) -> Measurement:
    """A row from ``work``; a failure becomes one error row and the run goes on."""
    try:
        result = await work
    except Exception as exc:
        return Measurement("reference", what, None, "", status="error", note=procs.describe(exc))
    if isinstance(result, Measurement):
        return result
    return joins_row("reference", int(result["joins"]), result)


def _case(**what: Any) -> str:
    if "workers" in what:
        n = what["workers"]
        return f"handshake, {n} worker{'s' if n > 1 else ''}"
    if "path" in what:
        n = what["conns"]
        return f"GET {what['path']} @ {n} conn{'s' if n > 1 else ''}"
    n = what["conns"]
    return f"{what['method']} @ {n} conn{'s' if n > 1 else ''}"
