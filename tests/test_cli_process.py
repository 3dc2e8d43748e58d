"""The real process: start-up refusals, exit codes, banner, SIGTERM, and the RPC commands.

Each test runs ``python -m gateway`` with HOME and the state dir inside ``tmp_path``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import pytest
import trio
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection

from bench.procs import free_port  # below the ephemeral range: no race with connect()

from .conftest import connect_frame, handshake, in_thread, open_raw, recv_until
from .rawws import RawClient

URL_RE = re.compile(r"listening on (ws://127\.0\.0\.[0-9]+:(\d+))")


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    # not INVOCATION_ID / XPC_SERVICE_NAME either: a suite run from a systemd unit (CI) or a
    # launchd job must not make its gateways look supervised (their exit codes differ)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SMART_AGENT_NEO_") and k not in ("INVOCATION_ID", "XPC_SERVICE_NAME")
    }
    env.update({"HOME": str(home), "NO_COLOR": "1", "COLUMNS": "200"}, **extra)
    return env


def ctrl_c_works() -> None:
    """``preexec_fn`` for CLI children the test will Ctrl-C: a shell running the suite in
    the background ignores SIGINT, and children inherit that; a user's terminal does not."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_cli(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        env=cli_env(home, **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@attrs.define
class Proc:
    process: trio.Process
    url: str = ""
    port: int = 0
    banner: str = ""
    output: bytearray = attrs.field(factory=bytearray)
    ended: bool = False
    _grew: trio.Event = attrs.field(factory=trio.Event)

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace")

    async def wait_for(self, needle: str, timeout: float = 20) -> str:
        """Until the process has printed ``needle`` (stdout and stderr are merged)."""
        with trio.fail_after(timeout):
            while needle not in self.text:
                assert not self.ended, f"process exited without printing {needle!r}:\n{self.text}"
                self._grew = trio.Event()
                await self._grew.wait()
        return self.text

    async def all_output(self, timeout: float = 10) -> str:
        """Everything the process printed, once it has closed its output (exited)."""
        with trio.fail_after(timeout):
            while not self.ended:
                self._grew = trio.Event()
                await self._grew.wait()
        return self.text

    async def pump(self) -> None:
        # keep reading: a full pipe would block the gateway's logging
        assert self.process.stdout is not None
        while chunk := await self.process.stdout.receive_some(65536):
            self.output += chunk
            self._grew.set()
        self.ended = True
        self._grew.set()

    async def stop(self, sig: int = signal.SIGTERM, deadline: float = 10) -> tuple[int, float]:
        start = trio.current_time()
        self.process.send_signal(sig)
        with trio.fail_after(deadline):
            code = await self.process.wait()
        return code, trio.current_time() - start


@asynccontextmanager
async def gateway_process(home: Path, *args: str, **env: str) -> AsyncIterator[Proc]:
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "gateway", *args],
        env=cli_env(home, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=ctrl_c_works,
    )
    proc = Proc(process)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(proc.pump)
        try:
            text = await proc.wait_for("Ctrl-C")
            match = URL_RE.search(text)
            assert match, text
            proc.url, proc.port, proc.banner = match.group(1), int(match.group(2)), text
            yield proc
        finally:
            if process.returncode is None:
                process.kill()
            with trio.move_on_after(10):
                await process.wait()
            nursery.cancel_scope.cancel()


def drain(ws: ClientConnection) -> None:
    """Read until the connection closes (raises ConnectionClosed)."""
    while True:
        ws.recv(timeout=5)


async def test_embedded_defaults_generate_a_token_and_sigterm_exits_zero(tmp_path: Path) -> None:
    """Runbook 'start on embedded defaults'; graceful SIGTERM (PROTOCOL 12)."""
    async with gateway_process(tmp_path, "gateway", "--allow-unconfigured", "--port", "0") as proc:
        token_file = tmp_path / ".smart-agent-neo" / "gateway.token"
        token = token_file.read_text().strip()
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert token not in proc.banner  # a pipe: the journal never sees it (issue 16)
        assert f"Generated gateway token stored 0600 in {token_file}" in proc.banner

        def client() -> dict[str, object]:
            with open_raw(proc.url) as ws:
                hello = handshake(ws, token=token)
                assert hello["ok"] is True
                trio.from_thread.run_sync(proc.process.send_signal, signal.SIGTERM)
                shutdown = recv_until(ws, lambda f: f.get("event") == "shutdown")
                with pytest.raises(ConnectionClosed) as closed:
                    drain(ws)
                assert closed.value.rcvd is not None
                assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
                    1012,
                    "service restart",
                )
                payload: dict[str, object] = shutdown["payload"]
                return payload

        payload = await in_thread(client)
        assert payload["reason"] == "gateway stopping"
        with trio.fail_after(10):
            assert await proc.process.wait() == 0

    # second start: same token, not printed again
    async with gateway_process(tmp_path, "gateway", "--allow-unconfigured", "--port", "0") as proc:
        assert token not in proc.banner
        assert "generated earlier" in proc.banner
        code, _ = await proc.stop(signal.SIGINT)  # Ctrl-C is a clean stop too
        assert code == 0


async def test_sigterm_with_a_client_that_never_reads(tmp_path: Path) -> None:
    """STACK-NOTES: one stuck client must not hold SIGTERM past the shutdown deadline."""
    async with gateway_process(
        tmp_path, "gateway", "--allow-unconfigured", "--port", "0", "--token", "tok-1234567890"
    ) as proc:

        def stuck() -> RawClient:
            raw = RawClient(proc.url, rcvbuf=4096)
            challenge = raw.recv_json()
            assert challenge["event"] == "connect.challenge"
            raw.send_json(connect_frame(token="tok-1234567890"))
            return raw

        raw = await in_thread(stuck)

        # the stuck client floods requests and never reads a single response
        def flood() -> None:
            big = {"type": "req", "id": "x", "method": "status", "params": {}}
            for i in range(3000):
                big["id"] = f"r{i}"
                try:
                    raw.send_json(big)
                except OSError:
                    return

        await in_thread(flood)
        code, elapsed = await proc.stop(deadline=15)
        raw.close()
    assert code == 0
    assert elapsed < 8, f"SIGTERM took {elapsed:.1f}s"


def test_lan_bind_without_configured_auth_is_refused(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "gateway", "--allow-unconfigured", "--bind", "lan", "--port", "0")
    assert result.returncode == 1
    assert "refusing to bind gateway to 0.0.0.0:0 without auth" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_port_in_use_names_the_url_and_exits_1(tmp_path: Path) -> None:
    """OPERATIONS.md D.1/D.4: EADDRINUSE is a failed start, exit 1; under a service manager
    it is 75 (temporary: worth the supervisor's retry)."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run_cli(tmp_path, "gateway", "--allow-unconfigured", "--port", str(port))
        supervised = run_cli(
            tmp_path,
            "gateway",
            "--allow-unconfigured",
            "--port",
            str(port),
            SMART_AGENT_NEO_SERVICE_MARKER="smart-agent-neo",
        )
    assert result.returncode == 1
    assert (
        f"another gateway instance is already listening on ws://127.0.0.1:{port}" in result.stderr
    )
    assert "Traceback" not in result.stderr
    assert supervised.returncode == 75, supervised.stderr


def test_invalid_config_exits_78_with_the_key_path(tmp_path: Path) -> None:
    state = tmp_path / ".smart-agent-neo"
    state.mkdir()
    config = state / "smart-agent-neo.json"
    config.write_text('{ gateway: { mode: "local", port: "abc", prot: 1 } }')
    before = config.read_bytes()
    result = run_cli(tmp_path, "gateway")
    assert result.returncode == 78
    assert 'gateway.port: expected an integer 1-65535, got "abc"' in result.stderr
    assert 'gateway.prot: unknown key (did you mean "port"?)' in result.stderr
    assert "Traceback" not in result.stderr
    assert config.read_bytes() == before


def test_mode_guard(tmp_path: Path) -> None:
    missing = run_cli(tmp_path, "gateway")
    assert missing.returncode == 1
    assert "Missing config." in missing.stderr
    state = tmp_path / ".smart-agent-neo"
    state.mkdir()
    (state / "smart-agent-neo.json").write_text('{ gateway: { mode: "remote" } }')
    blocked = run_cli(tmp_path, "gateway")
    assert blocked.returncode == 1
    assert "Gateway start blocked: set gateway.mode=local (current: remote)" in blocked.stderr


def test_rpc_commands_against_nothing_fail_in_one_line(tmp_path: Path) -> None:
    port = free_port()
    for args in (["health"], ["gateway", "call", "health"]):
        result = run_cli(tmp_path, *args, "--url", f"ws://127.0.0.1:{port}", "--token", "t")
        assert result.returncode == 1, args
        assert "gateway connect failed" in result.stderr
        assert f"Gateway target: ws://127.0.0.1:{port}" in result.stderr
        assert "Traceback" not in result.stderr
    # status is a local diagnosis: it reports the gateway unreachable and succeeds (G.3)
    status = run_cli(tmp_path, "status", "--url", f"ws://127.0.0.1:{port}", "--token", "t")
    assert status.returncode == 0, status.stderr
    assert f"ws://127.0.0.1:{port} unreachable (gateway connect failed" in status.stdout
    assert "Traceback" not in status.stderr
    no_creds = run_cli(tmp_path, "health", "--url", f"ws://127.0.0.1:{port}")
    assert no_creds.returncode == 1
    assert "gateway url override requires explicit credentials" in no_creds.stderr


async def test_rpc_commands_against_a_running_gateway(tmp_path: Path) -> None:
    async with gateway_process(
        tmp_path, "--dev", "gateway", "--allow-unconfigured", "--port", "0"
    ) as proc:
        env = {"SMART_AGENT_NEO_GATEWAY_PORT": str(proc.port)}

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return run_cli(tmp_path, "--dev", *args, **env)

        health = await trio.to_thread.run_sync(cli, "health", "--json")
        assert health.returncode == 0, health.stderr
        assert json.loads(health.stdout)["ok"] is True

        human = await trio.to_thread.run_sync(cli, "health")
        assert "Agents: main (default)" in human.stdout

        status = await trio.to_thread.run_sync(cli, "status", "--json")
        payload = json.loads(status.stdout)
        assert payload["gateway"]["port"] == proc.port
        assert payload["gateway"]["profile"] == "dev"
        assert payload["gateway"]["stateDir"] == str(tmp_path / ".smart-agent-neo-dev")

        status_human = await trio.to_thread.run_sync(cli, "status")
        assert "reachable" in status_human.stdout
        assert str(proc.port) in status_human.stdout

        presence = await trio.to_thread.run_sync(cli, "gateway", "call", "system-presence")
        assert any(row.get("mode") == "gateway" for row in json.loads(presence.stdout))

        unknown = await trio.to_thread.run_sync(cli, "gateway", "call", "nope")
        assert unknown.returncode == 1
        assert "INVALID_REQUEST: unknown method: nope" in unknown.stderr

        bad = await trio.to_thread.run_sync(cli, "gateway", "call", "health", "--params", "[1]")
        assert bad.returncode == 1
        assert "--params must be a JSON object" in bad.stderr

        wrong = await trio.to_thread.run_sync(
            lambda: run_cli(tmp_path, "health", "--url", proc.url, "--token", "wrong")
        )
        assert wrong.returncode == 1
        assert "unauthorized: gateway token mismatch" in wrong.stderr
        code, _ = await proc.stop()
        assert code == 0
