"""Issue 17: the runbook's commands as a new user runs them -- each defect found on a fresh
clone, reproduced through the real CLI (``python -m gateway`` in a throw-away HOME).
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
from functools import partial
from pathlib import Path

import pytest
import trio

from gateway.cli.main import main
from gateway.config.paths import resolve_paths
from gateway.lock import GatewayLock

from .conftest import handshake, in_thread, open_raw
from .servicefakes import fake_systemd, make_host
from .test_cli_process import cli_env, free_port, gateway_process, run_cli

TOKEN = "operator-token-1234567890"


# -- 1. `--host` --------------------------------------------------------------------------------


async def test_host_flag_binds_that_address(tmp_path: Path) -> None:
    """`gateway --host 127.0.0.2` listens on 127.0.0.2 (it used to bind 127.0.0.1 silently)."""
    async with gateway_process(
        tmp_path, "gateway", "--allow-unconfigured", "--host", "127.0.0.2", "--port", "0",
        "--token", TOKEN,
    ) as proc:  # fmt: skip
        assert proc.url.startswith("ws://127.0.0.2:"), proc.banner

        def connect() -> bool:
            with open_raw(proc.url) as ws:
                return bool(handshake(ws, token=TOKEN)["ok"])

        assert await in_thread(connect)
        with socket.socket() as s:  # nothing on loopback's usual address
            assert s.connect_ex(("127.0.0.1", proc.port)) != 0
        code, _ = await proc.stop()
        assert code == 0


def test_host_flag_without_auth_is_refused(tmp_path: Path) -> None:
    """A custom host that is not loopback needs a secret of the user's own."""
    for args in (["--host", "0.0.0.0"], ["--bind", "custom", "--host", "0.0.0.0"]):
        result = run_cli(tmp_path, "gateway", "--allow-unconfigured", "--port", "0", *args)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert "refusing to bind gateway to 0.0.0.0:0 without auth" in result.stderr
        assert "Traceback" not in result.stderr
    # a host given with --bind custom is used, not reported missing
    custom = run_cli(
        tmp_path, "gateway", "--allow-unconfigured", "--bind", "custom", "--host", "192.0.2.1"
    )
    assert "requires --host" not in custom.stderr
    assert "refusing to bind gateway to 192.0.2.1:18789 without auth" in custom.stderr


# -- 4. no abbreviated flags ---------------------------------------------------------------------


def test_a_prefix_of_a_flag_is_not_that_flag(tmp_path: Path) -> None:
    """`agent --to 123` used to be read as `--token 123`; every parser refuses prefixes."""
    cases = [
        ["agent", "--message", "hi", "--to", "123"],
        ["gateway", "--tok", "x", "--allow-unconfigured"],
        ["logs", "--foll"],
        ["gateway", "status", "--no-pro"],
        ["--prof", "rescue", "status"],
    ]
    for args in cases:
        result = run_cli(tmp_path, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith("usage: "), args
        assert "token mismatch" not in result.stderr
    agent = run_cli(tmp_path, *cases[0])
    assert "unrecognized arguments: --to 123" in agent.stderr


# -- 3. a reader that goes away -------------------------------------------------------------------


async def test_a_closed_stdout_and_stderr_do_not_stop_the_gateway(tmp_path: Path) -> None:
    """`gateway ... | head -2`: the banner's write fails; the gateway serves on, then exits 0
    on SIGTERM -- no ExceptionGroup, no exit 1."""
    notify_path = tmp_path / "notify.sock"
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    await sock.bind(str(notify_path))
    port = free_port()
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    os.close(out_read)  # `head` has already left: every write to stdout fails with EPIPE
    env = cli_env(tmp_path, NOTIFY_SOCKET=str(notify_path))
    argv = [sys.executable, "-m", "gateway", "gateway", "--allow-unconfigured"]
    with sock:
        process = await trio.lowlevel.open_process(
            [*argv, "--port", str(port), "--token", TOKEN, "--verbose"],
            env=env,
            stdout=out_write,
            stderr=err_write,
        )
        os.close(out_write)
        os.close(err_write)
        try:
            with trio.fail_after(20):
                ready = (await sock.recv(4096)).decode()
            assert ready.startswith("READY=1"), ready
            os.close(err_read)  # and now stderr's reader goes too: the console log lines fail
            err_read = -1

            def still_serving() -> bool:
                with open_raw(f"ws://127.0.0.1:{port}") as ws:
                    return bool(handshake(ws, token=TOKEN)["ok"])

            assert await in_thread(still_serving)
            assert await in_thread(still_serving)
            process.send_signal(signal.SIGTERM)
            with trio.fail_after(20):
                code = await process.wait()
            assert code == 0
        finally:
            if err_read >= 0:
                os.close(err_read)
            if process.returncode is None:
                process.kill()
                await process.wait()


# -- 9. one exit code for one situation ---------------------------------------------------------


def test_force_against_a_foreign_listener_exits_75_like_without_force(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = str(holder.getsockname()[1])
        plain = run_cli(tmp_path, "gateway", "--allow-unconfigured", "--port", port)
        forced = run_cli(tmp_path, "gateway", "--allow-unconfigured", "--port", port, "--force")
    assert plain.returncode == 75, plain.stderr
    assert forced.returncode == 75, forced.stderr
    assert f"pid {os.getpid()}" in forced.stderr  # names the holder ...
    assert "not stopping it" in forced.stderr  # ... and leaves it alone
    assert "Traceback" not in plain.stderr + forced.stderr


# -- 2. the rescue profile is found where it runs -----------------------------------------------


async def test_the_readmes_rescue_example_finds_the_gateway_on_its_port(tmp_path: Path) -> None:
    """`--profile rescue gateway --port P` then `--profile rescue status|health|gateway status`:
    the CLI finds the running gateway through its lock, not on the config's 18789."""
    port = free_port()
    rescue = ("--profile", "rescue")
    async with gateway_process(
        tmp_path, *rescue, "gateway", "--port", str(port), "--allow-unconfigured"
    ) as proc:

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return run_cli(tmp_path, *rescue, *args)

        status = await trio.to_thread.run_sync(cli, "status")
        assert f"ws://127.0.0.1:{port}" in status.stdout, status.stdout
        assert "unreachable" not in status.stdout
        health = await trio.to_thread.run_sync(cli, "health", "--json")
        assert health.returncode == 0, health.stderr
        gateway_status = await trio.to_thread.run_sync(cli, "gateway", "status", "--json")
        payload = json.loads(gateway_status.stdout)
        assert payload["rpc"]["ok"] is True, payload["rpc"]
        assert payload["rpc"]["url"] == f"ws://127.0.0.1:{port}"
        assert payload["port"]["source"] == f"running gateway (pid {proc.process.pid})"
        code, _ = await proc.stop()
        assert code == 0
    # gone: the error says where the CLI looked
    after = run_cli(tmp_path, *rescue, "health")
    assert after.returncode == 1
    assert "Gateway target: ws://127.0.0.1:18789" in after.stderr
    assert "Source: local loopback (port from config)" in after.stderr
    assert "Running gateway: none of profile rescue (no live lock at " in after.stderr


# -- 7. port warnings from the ports in use ------------------------------------------------------


def far_apart_ports() -> tuple[int, int]:
    first = free_port()
    while abs((second := free_port()) - first) < 40:
        pass
    return first, second


async def test_no_port_warning_for_profiles_running_on_other_ports(tmp_path: Path) -> None:
    """Main and rescue both have the default config (18789) but run with --port on ports far
    apart: `status` and `doctor` must not claim they collide."""
    main_port, rescue_port = far_apart_ports()
    async with (
        gateway_process(
            tmp_path, "gateway", "--port", str(main_port), "--allow-unconfigured"
        ) as main_gw,
        gateway_process(
            tmp_path, "--profile", "rescue", "gateway", "--port", str(rescue_port),
            "--allow-unconfigured",
        ) as rescue_gw,
    ):  # fmt: skip
        for profile in ([], ["--profile", "rescue"]):
            status = await trio.to_thread.run_sync(partial(run_cli, tmp_path, *profile, "status"))
            assert "both use port" not in status.stdout, status.stdout
            doctor = await trio.to_thread.run_sync(
                partial(run_cli, tmp_path, *profile, "doctor", "--json")
            )
            checks = {c["id"]: c for c in json.loads(doctor.stdout)["checks"]}
            assert checks["profiles.ports"]["status"] == "ok", checks["profiles.ports"]
            assert checks["port.conflict"]["status"] == "ok", checks["port.conflict"]
        for proc in (main_gw, rescue_gw):
            code, _ = await proc.stop()
            assert code == 0
    # nothing runs now: both would start on 18789, which is worth a warning
    status = run_cli(tmp_path, "status")
    assert "profiles default and rescue both use port 18789" in status.stdout


# -- 8. a foreground gateway is not a service ----------------------------------------------------


async def test_service_commands_name_a_foreground_gateway(tmp_path: Path) -> None:
    """`gateway restart|stop|start` while `gateway` runs in a terminal: say so, point at
    `kill -USR1 <pid>` / `gateway call restart` / Ctrl-C -- and the printed command works."""
    rescue = ("--profile", "rescue")
    async with gateway_process(
        tmp_path, *rescue, "gateway", "--port", "0", "--allow-unconfigured"
    ) as proc:
        pid = proc.process.pid

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return run_cli(tmp_path, *rescue, "gateway", *args)

        restart = await trio.to_thread.run_sync(cli, "restart")
        assert restart.returncode == 1, restart.stdout + restart.stderr
        assert f"runs in the foreground (pid {pid}" in restart.stderr
        assert f"kill -USR1 {pid}" in restart.stderr
        printed = "smart-agent-neo --profile rescue gateway call restart"
        assert printed in restart.stderr
        stop = await trio.to_thread.run_sync(cli, "stop")
        assert stop.returncode == 1
        assert "Ctrl-C" in stop.stderr
        assert f"kill -TERM {pid}" in stop.stderr
        start = await trio.to_thread.run_sync(cli, "start")
        assert start.returncode == 1
        assert "already running" in start.stderr
        for text in (restart.stderr, stop.stderr, start.stderr):
            assert "not installed" not in text
            assert "cannot be reached" not in text
        # the suggested command, run as printed, restarts it in place
        argv = printed.split()[1:]
        again = await trio.to_thread.run_sync(partial(run_cli, tmp_path, *argv))
        assert again.returncode == 0, again.stderr
        await proc.wait_for("in-process restart #1")
        assert proc.process.returncode is None
        code, _ = await proc.stop()
        assert code == 0


def test_no_service_manager_but_a_foreground_gateway(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An installed unit, no reachable user manager, and the gateway running in a terminal:
    the answer is about that gateway, not "systemd user manager cannot be reached"."""
    paths = resolve_paths(None, {}, tmp_path)
    paths.state_dir.mkdir(parents=True)
    paths.config_path.write_text('{ gateway: { mode: "local" } }')
    runner = fake_systemd(tmp_path)
    host = make_host(tmp_path, runner)
    assert main(["gateway", "install"], host=host) == 0
    runner.reachable = False
    capsys.readouterr()
    lock = GatewayLock.acquire(paths, port=18789)  # this test process is the gateway
    try:
        assert main(["gateway", "restart"], host=host) == 1
    finally:
        lock.release()
    err = capsys.readouterr().err
    assert f"runs in the foreground (pid {os.getpid()})" in err
    assert f"kill -USR1 {os.getpid()}" in err
    assert "cannot be reached" not in err
    assert main(["gateway", "restart"], host=host) == 69  # nothing runs: the manager's problem


# -- 6. `setup`: private file, next steps runnable as printed ------------------------------------


async def test_setup_prints_next_steps_for_its_own_profile(tmp_path: Path) -> None:
    rescue = ("--profile", "rescue")
    missing = run_cli(tmp_path, *rescue, "gateway", "install")
    assert missing.returncode != 0
    assert "Run `smart-agent-neo --profile rescue setup`" in missing.stderr, missing.stderr

    setup = run_cli(tmp_path, *rescue, "setup")
    assert setup.returncode == 0, setup.stderr
    config = tmp_path / ".smart-agent-neo-rescue" / "smart-agent-neo.json"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    doctor = run_cli(tmp_path, *rescue, "doctor", "--json")
    checks = {c["id"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert checks["config.permissions"]["status"] == "ok", checks["config.permissions"]
    (line,) = [x for x in setup.stdout.splitlines() if x.startswith("Start the gateway with: ")]
    printed = line.removeprefix("Start the gateway with: ")
    assert printed == "smart-agent-neo --profile rescue gateway"
    # the printed command starts this profile's gateway (a test port added)
    async with gateway_process(tmp_path, *printed.split()[1:], "--port", "0") as proc:
        again = await trio.to_thread.run_sync(partial(run_cli, tmp_path, *rescue, "setup"))
        assert "Config already set up" in again.stdout
        assert f"already running (pid {proc.process.pid} on {proc.url})" in again.stdout
        assert "Start the gateway" not in again.stdout
        code, _ = await proc.stop()
        assert code == 0


# -- 13. `--dev setup` makes the dev workspace ----------------------------------------------------


def test_dev_setup_creates_an_isolated_workspace_idempotently(tmp_path: Path) -> None:
    first = run_cli(tmp_path, "--dev", "setup")
    assert first.returncode == 0, first.stderr
    state = tmp_path / ".smart-agent-neo-dev"
    config = json.loads((state / "smart-agent-neo.json").read_text())
    workspace = state / "workspace"
    assert config == {
        "gateway": {"mode": "local"},
        "agents": {"defaults": {"workspace": str(workspace)}},
    }
    assert workspace.is_dir()
    assert (state / "agents" / "main" / "sessions").is_dir()
    assert "Start the gateway with: smart-agent-neo --dev gateway" in first.stdout
    before = (state / "smart-agent-neo.json").read_bytes()
    second = run_cli(tmp_path, "--dev", "setup")
    assert "Config already set up" in second.stdout
    assert (state / "smart-agent-neo.json").read_bytes() == before
    # the main profile is untouched, and gets its own workspace
    assert not (tmp_path / ".smart-agent-neo").exists()


# -- 11. small inconsistencies -------------------------------------------------------------------


def test_port_errors_say_the_same_thing_everywhere(tmp_path: Path) -> None:
    flag = run_cli(tmp_path, "gateway", "--allow-unconfigured", "--port", "70000")
    assert flag.returncode == 1
    assert "Invalid port: expected an integer 1-65535 (or 0: any free port), got 70000" in (
        flag.stderr
    )
    install = run_cli(tmp_path, "gateway", "install", "--port", "70000", "--allow-unconfigured")
    assert install.returncode == 1
    assert "Invalid port: expected an integer 1-65535, got 70000" in install.stderr
    wanted = 'SMART_AGENT_NEO_GATEWAY_PORT: expected an integer 1-65535, got "abc"'
    for args in (["gateway", "--allow-unconfigured"], ["status"], ["health"], ["logs"]):
        result = run_cli(tmp_path, *args, SMART_AGENT_NEO_GATEWAY_PORT="abc")
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert wanted in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr


# -- CI runs what developers run -----------------------------------------------------------------


def test_ci_runs_the_readmes_check_command_with_lint_and_types() -> None:
    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text()
    commands = re.findall(r"^python3 -m pip install nox && .*$", readme, flags=re.MULTILINE)
    assert len(commands) == 1, commands
    (command,) = commands
    assert command.split("-s", 1)[1].split() == ["lint", "typecheck", "tests"]
    ci = (root / ".ci" / "run").read_text().splitlines()
    assert command in ci
