"""Child processes: the gateway, the ceiling server and the load generators.

Every child is started with ``sys.executable`` from this source tree, talks only to
127.0.0.1, and is killed (by its own pid) when its ``async with`` block ends, whatever
happened inside. The gateway gets a throw-away HOME and state dir and a JSON5 config we
write; its output goes to a log file there, so an unread pipe can never block it.
"""

from __future__ import annotations

import json
import os
import random
import re
import secrets
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import trio

HOST = "127.0.0.1"
URL_RE = re.compile(r"listening on ws://127\.0\.0\.1:(\d+)")
ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 20.0
# set by ``python -m bench --gateway-gc``: start gateways through bench/gcwrap.py
GC_ENV = "BENCH_GATEWAY_GC"


class ChildFailed(Exception):
    """A child process died or said something we did not expect."""


def describe(exc: BaseException) -> str:
    """One line naming the innermost first error (trio wraps errors in exception groups)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:160]


def child_env(home: Path | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMART_AGENT_NEO_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["NO_COLOR"] = "1"
    if home is not None:
        env["HOME"] = str(home)
    env.update(extra)
    return env


def rss_bytes(pid: int) -> int:
    """Resident set size from ``/proc`` (Linux), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise ChildFailed(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far (``/proc/<pid>/stat``, Linux)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def ephemeral_range() -> tuple[int, int]:
    """The ports the kernel hands out for ``bind(0)`` and for the source of ``connect()``."""
    try:
        low, high = (int(v) for v in EPHEMERAL_RANGE.read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999  # Linux's default
    return low, high


def free_port() -> int:
    """A port for a child to listen on, free now and not handed out by the kernel later.

    A port from ``bind(0)`` is released when the probe socket closes, and is back in the
    ephemeral range: until the child binds it (a second for our gateway under load, 5-10 s
    for the reference), any ``connect()`` on the machine may take it as its source port --
    and hold it in TIME_WAIT for a minute after -- and the child's bind fails with
    EADDRINUSE ("reference exited" in tests/test_bench_smoke.py, now and then on a machine
    where other test suites open thousands of connections). So the port comes from below
    the ephemeral range, where neither ``bind(0)`` nor ``connect()`` allocate; only a
    program that asks for that very port could take it."""
    low, high = ephemeral_range()
    pool = range(max(1024, low - 16384), low) if low > 2048 else range(high + 1, 65536)
    for port in random.sample(pool, min(len(pool), 200)):
        with socket.socket() as s:
            try:
                s.bind((HOST, port))
            except OSError:
                continue
            return port
    raise ChildFailed(f"no free port in {pool.start}-{pool.stop - 1}")


def gateway_config(**ws: int) -> dict[str, Any]:
    """A minimal local config; ``ws`` sets ``gateway.ws`` keys (camelCase)."""
    return {"gateway": {"mode": "local", "ws": dict(ws)}}


def write_config(path: Path, config: dict[str, Any]) -> None:
    """Atomically, so a watching gateway never reads half a file."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(config, indent=2))
    os.replace(tmp, path)


@attrs.define
class Gateway:
    process: trio.Process
    home: Path
    config_path: Path
    log_path: Path
    token: str
    port: int = 0

    @property
    def pid(self) -> int:
        return int(self.process.pid)

    def rss(self) -> int:
        return rss_bytes(self.pid)

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def wait_banner(self, timeout: float = START_TIMEOUT) -> int:
        """Poll the log for the banner; returns the port once ``Press Ctrl-C`` is printed."""
        with trio.move_on_after(timeout):
            while True:
                text = self.log_path.read_text(errors="replace")
                match = URL_RE.search(text)
                if match and "Ctrl-C" in text:
                    self.port = int(match.group(1))
                    return self.port
                if self.process.poll() is not None:
                    raise ChildFailed(f"gateway exited early:\n{self.log_tail()}")
                await trio.sleep(0.005)
        raise ChildFailed(f"gateway did not print its banner in {timeout}s:\n{self.log_tail()}")

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    async def wait_exit(self, timeout: float) -> int | None:
        with trio.move_on_after(timeout):
            return await self.process.wait()
        return None


@asynccontextmanager
async def gateway(
    workdir: Path,
    *,
    config: dict[str, Any] | None = None,
    port: int = 0,
    wait: bool = True,
) -> AsyncIterator[Gateway]:
    """A real ``python -m gateway gateway`` process on 127.0.0.1.

    With ``wait`` the port is known (banner parsed) when the block starts; without it the
    caller measures start-up itself (cold start) and must pass a fixed ``port``.
    """
    home = workdir / f"home-{secrets.token_hex(4)}"
    state = home / ".smart-agent-neo"
    state.mkdir(parents=True)
    config_path = state / "smart-agent-neo.json"
    write_config(config_path, config or gateway_config())
    token = secrets.token_urlsafe(24)
    log_path = home / "gateway.log"
    env = child_env(
        home,
        SMART_AGENT_NEO_STATE_DIR=str(state),
        SMART_AGENT_NEO_CONFIG_PATH=str(config_path),
    )
    gc = os.environ.get(GC_ENV)
    launcher = ["-m", "bench.gcwrap", gc] if gc else ["-m", "gateway"]
    argv = [sys.executable, *launcher, "gateway", "--allow-unconfigured"]
    argv += ["--port", str(port), f"--token={token}"]  # a token may start with "-"
    with log_path.open("wb") as log:
        process = await trio.lowlevel.open_process(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=str(home)
        )
    gw = Gateway(process, home, config_path, log_path, token, port)
    try:
        if wait:
            await gw.wait_banner()
        yield gw
    finally:
        await stop(process)


async def stop(process: trio.Process, grace: float = 5.0) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        with trio.move_on_after(grace):
            await process.wait()
    if process.returncode is None:
        process.kill()
        with trio.CancelScope(shield=True):
            await process.wait()


@attrs.define
class Ceiling:
    process: trio.Process
    port: int

    @property
    def pid(self) -> int:
        return int(self.process.pid)


@asynccontextmanager
async def ceiling() -> AsyncIterator[Ceiling]:
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "bench.ceiling"],
        env=child_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        line = await _read_line(process.stdout, START_TIMEOUT, "ceiling")
        match = URL_RE.search(line.decode())
        if not match:
            raise ChildFailed(f"ceiling said {line!r}")
        yield Ceiling(process, int(match.group(1)))
    finally:
        await stop(process)


async def _read_line(stream: trio.abc.ReceiveStream, timeout: float, who: str) -> bytes:
    buffer = b""
    with trio.move_on_after(timeout):
        while b"\n" not in buffer:
            data = await stream.receive_some(65536)
            if not data:
                raise ChildFailed(f"{who} exited: {buffer[-500:]!r}")
            buffer += data
        return buffer
    raise ChildFailed(f"{who} said nothing for {timeout}s")


class Load:
    """One load-generator process: JSON job in, JSON lines out, commands on stdin."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        assert process.stdout is not None
        assert process.stdin is not None
        self._stdout = process.stdout
        self._stdin = process.stdin
        self._buffer = b""

    async def read(self, timeout: float) -> dict[str, Any]:
        with trio.move_on_after(timeout):
            while b"\n" not in self._buffer:
                data = await self._stdout.receive_some(1 << 20)
                if not data:
                    raise ChildFailed(f"load generator exited (code {self.process.poll()})")
                self._buffer += data
            line, _, self._buffer = self._buffer.partition(b"\n")
            message: dict[str, Any] = json.loads(line)
            return message
        raise ChildFailed(f"load generator said nothing for {timeout}s")

    async def expect(self, event: str, timeout: float) -> dict[str, Any]:
        message = await self.read(timeout)
        if message.get("event") != event:
            raise ChildFailed(f"expected {event!r} from the load generator, got {message}")
        return message

    async def command(self, line: str) -> None:
        await self._stdin.send_all(line.encode() + b"\n")


def load_module(job: dict[str, Any]) -> str:
    """Which load generator runs ``job``: ``wrk`` for HTTP when it is installed (and the
    job does not ask for the Python client), else ``bench.load``."""
    from .httpload import wrk_path

    if job["kind"] == "http" and job.get("client") != "python" and wrk_path() is not None:
        return "bench.httpload"
    return "bench.load"


@asynccontextmanager
async def load(job: dict[str, Any]) -> AsyncIterator[Load]:
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", load_module(job), json.dumps(job)],
        env=child_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=None,
    )
    try:
        yield Load(process)
    finally:
        if process.returncode is None:
            with trio.move_on_after(2.0):
                assert process.stdin is not None
                await process.stdin.aclose()
                await process.wait()
        await stop(process, grace=2.0)
