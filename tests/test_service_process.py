"""The real CLI in a subprocess: install where no service manager can be reached, status of
a running and a stopped gateway process, and sd_notify READY/STOPPING from ``gateway run``."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import trio

from bench.procs import free_port

from .test_cli_process import cli_env, gateway_process


def no_manager_env(home: Path, **extra: str) -> dict[str, str]:
    """HOME in tmp, and a user bus that cannot exist: even on a machine that runs systemd,
    ``systemctl --user`` cannot reach a manager, so nothing real is ever installed."""
    runtime = home / "run"
    runtime.mkdir(mode=0o700, exist_ok=True)
    return cli_env(
        home,
        XDG_RUNTIME_DIR=str(runtime),
        DBUS_SESSION_BUS_ADDRESS=f"unix:path={runtime}/no-bus",
        **extra,
    )


def run(home: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        env=no_manager_env(home, **extra),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_install_without_a_service_manager_writes_the_unit_and_exits_69(tmp_path: Path) -> None:
    """FAILURE-MODES 34 (headless/container host): the no-systemd path, end to end."""
    unit = tmp_path / ".config" / "systemd" / "user" / "smart-agent-neo-gateway-box.service"
    dry = run(
        tmp_path,
        "--profile",
        "box",
        "gateway",
        "install",
        "--allow-unconfigured",
        "--dry-run",
        "--json",
    )
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert plan["unitPath"] == str(unit)
    assert not unit.exists()
    assert not (tmp_path / ".config").exists()

    result = run(tmp_path, "--profile", "box", "gateway", "install", "--allow-unconfigured")
    assert result.returncode == 69, result.stderr
    assert f"wrote {unit}, but it is not enabled" in result.stderr
    assert "cannot be reached" in result.stderr or "systemctl not found" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert unit.read_text() == plan["unit"]
    assert f"{sys.executable} -m gateway --profile box gateway run" in unit.read_text() or (
        "smart-agent-neo --profile box gateway run" in unit.read_text()
    )

    # a port nothing listens on: 18789 may be busy on the machine running the tests
    port = str(free_port())
    status = run(
        tmp_path, "--profile", "box", "gateway", "status", "--json",
        SMART_AGENT_NEO_GATEWAY_PORT=port,
    )  # fmt: skip
    assert status.returncode == 3, status.stderr
    payload = json.loads(status.stdout)
    assert payload["state"] == "stopped"
    assert payload["service"]["installed"] is True
    assert payload["service"]["reachable"] is False
    assert payload["rpc"]["ok"] is False
    assert payload["config"]["valid"] is True

    removed = run(tmp_path, "--profile", "box", "gateway", "uninstall")
    assert removed.returncode == 0
    assert not unit.exists()
    assert "cannot be reached" in removed.stdout


async def test_gateway_status_of_a_running_and_a_stopped_process(tmp_path: Path) -> None:
    async with gateway_process(tmp_path, "gateway", "--allow-unconfigured", "--port", "0") as proc:
        env = {"SMART_AGENT_NEO_GATEWAY_PORT": str(proc.port)}
        result = await trio.to_thread.run_sync(
            lambda: run(tmp_path, "gateway", "status", "--json", **env)
        )
        assert result.returncode == 0, result.stdout + result.stderr
        payload = json.loads(result.stdout)
        assert payload["state"] == "running"
        assert payload["rpc"]["ok"] is True
        assert payload["rpc"]["pid"] == proc.process.pid
        listener = payload["port"]["listeners"][0]
        assert (listener["pid"], listener["owner"]) == (proc.process.pid, "this-gateway")
        overview = await trio.to_thread.run_sync(lambda: run(tmp_path, "status", "--json", **env))
        data = json.loads(overview.stdout)
        assert data["gateway"]["pid"] == proc.process.pid
        assert data["rpc"]["ok"] is True
        code, _ = await proc.stop()
        assert code == 0
    port = free_port()
    stopped = run(tmp_path, "gateway", "status", "--json", SMART_AGENT_NEO_GATEWAY_PORT=str(port))
    assert stopped.returncode == 3
    assert json.loads(stopped.stdout)["state"] == "not-installed"


async def test_gateway_run_notifies_systemd_when_bound_and_when_stopping(tmp_path: Path) -> None:
    """Type=notify: READY=1 only once the port accepts connections, STOPPING=1 on SIGTERM."""
    notify_path = tmp_path / "notify.sock"
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    await sock.bind(str(notify_path))
    port = free_port()
    env = cli_env(tmp_path, NOTIFY_SOCKET=str(notify_path))
    with sock:
        process = await trio.lowlevel.open_process(
            [
                sys.executable,
                "-m",
                "gateway",
                "gateway",
                "run",
                "--allow-unconfigured",
                "--port",
                str(port),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            with trio.fail_after(20):
                ready = (await sock.recv(4096)).decode()
            assert ready.startswith("READY=1\n")
            assert f"127.0.0.1:{port}" in ready
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                pass  # bound before READY was sent
            process.send_signal(signal.SIGTERM)
            with trio.fail_after(20):
                stopping = (await sock.recv(4096)).decode()
                code = await process.wait()
            assert stopping == "STOPPING=1"
            assert code == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
