"""Issue 17: the runbook's commands as a new user runs them -- each defect found on a fresh
clone, reproduced through the real CLI (``python -m gateway`` in a throw-away HOME).
"""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import typing
import zipfile
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import attrs
import pytest
import trio

from bench.procs import free_port
from gateway.cli.durations import duration
from gateway.cli.main import main
from gateway.config.load import parse
from gateway.config.model import Config
from gateway.config.paths import resolve_paths
from gateway.config.planned import NOT_YET
from gateway.config.planned import message as planned_message
from gateway.errors import ConfigError
from gateway.lock import GatewayLock
from gateway.protocol.model import camel

from .conftest import TOKEN as CONFTEST_TOKEN
from .conftest import handshake, in_thread, make_settings, open_raw
from .servicefakes import fake_systemd, make_host
from .test_cli_process import cli_env, ctrl_c_works, gateway_process, run_cli
from .test_logs_cli import Lines, gateway_at, notice

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
    """`agent --to 123` used to be read as `--token 123` (now `--to` is its own flag); every
    parser refuses prefixes."""
    cases = [
        ["agent", "--message", "hi", "--tok", "123"],
        ["agent", "--message", "hi", "--deliv"],
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
    assert "unrecognized arguments: --tok 123" in agent.stderr


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


def test_force_against_a_foreign_listener_exits_1_like_without_force(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = str(holder.getsockname()[1])
        plain = run_cli(tmp_path, "gateway", "--allow-unconfigured", "--port", port)
        forced = run_cli(tmp_path, "gateway", "--allow-unconfigured", "--port", port, "--force")
    assert plain.returncode == 1, plain.stderr
    assert forced.returncode == 1, forced.stderr
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
    status = run_cli(tmp_path, *rescue, "status")
    assert "unreachable" in status.stdout
    assert "Looked at  port 18789 (from env/config); no running gateway of this profile" in (
        status.stdout
    )


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
        "session": {"dmScope": "per-channel-peer"},
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


# -- 5. a generated token is seen ---------------------------------------------------------------


async def test_a_failed_start_leaves_no_unseen_token(tmp_path: Path) -> None:
    """A start that cannot bind stores no token; the next successful start generates one
    and says where it is (it used to say only "generated earlier"). Through a pipe (a
    supervisor's journal) the token itself is never printed (issue 16, low)."""
    token_file = tmp_path / ".smart-agent-neo" / "gateway.token"
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = str(holder.getsockname()[1])
        failed = run_cli(tmp_path, "gateway", "--allow-unconfigured", "--port", busy)
    assert failed.returncode == 1, failed.stderr
    assert not token_file.exists()
    async with gateway_process(tmp_path, "gateway", "--allow-unconfigured", "--port", "0") as proc:
        token = token_file.read_text().strip()
        assert f"Generated gateway token stored 0600 in {token_file}" in proc.banner
        assert f"read it with: cat {token_file}" in proc.banner
        assert token not in proc.banner
        code, _ = await proc.stop()
        assert code == 0
    async with gateway_process(tmp_path, "gateway", "--allow-unconfigured", "--port", "0") as proc:
        assert token not in proc.banner
        assert f"generated earlier; read it with: cat {token_file}" in proc.banner
        code, _ = await proc.stop()
        assert code == 0


# -- 10. messages say what happened ---------------------------------------------------------------


def write_config(home: Path, gateway: dict[str, object], profile: str = "") -> Path:
    state = home / (".smart-agent-neo" + (f"-{profile}" if profile else ""))
    state.mkdir(parents=True, exist_ok=True)
    path = state / "smart-agent-neo.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"gateway": {"mode": "local", **gateway}}))
    tmp.replace(path)  # one change for the watcher, never a half-written file
    return path


async def test_reload_messages_say_what_happened(tmp_path: Path) -> None:
    """Hot mode: a restart-only key is reported as ignored (no "applied" line after it); an
    invalid file's line names no paths of an earlier reload; `config set` tells the truth
    about what the running gateway does with the key."""
    port = free_port()
    reload = {"mode": "hot", "debounceMs": 50}
    write_config(tmp_path, {"port": port, "reload": reload})
    async with gateway_process(tmp_path, "gateway") as proc:
        # `config set` of a restart-class key in hot mode
        other = free_port()
        result = await trio.to_thread.run_sync(
            partial(run_cli, tmp_path, "config", "set", "gateway.port", str(other))
        )
        assert result.returncode == 0, result.stderr
        assert "picks this up by itself" not in result.stdout
        assert f"(pid {proc.process.pid}) is in hot mode and ignores gateway.port" in (
            result.stdout
        )
        assert "smart-agent-neo gateway call restart" in result.stdout
        text = await proc.wait_for("hot mode ignoring (gateway.port)")
        # a hot key next: applied, and only it is named
        write_config(tmp_path, {"port": other, "reload": reload, "ws": {"tickIntervalMs": 4321}})
        text = await proc.wait_for("config hot reload applied (gateway.ws.tickIntervalMs)")
        ignoring = text.index("hot mode ignoring (gateway.port)")
        assert "hot reload applied" not in text[ignoring : text.index("tickIntervalMs)")]
        # an invalid edit: its line lists no paths from the reload before it
        (tmp_path / ".smart-agent-neo" / "smart-agent-neo.json").write_text("{ gateway: { port: ")
        text = await proc.wait_for("outcome=invalid")
        (line,) = [x for x in text.splitlines() if "outcome=invalid" in x]
        assert "tickIntervalMs" not in line, line
        code, _ = await proc.stop()
        assert code == 0


async def test_logs_follow_says_stopping_or_restarting_not_service_restart(
    tmp_path: Path,
) -> None:
    """The 1012 close reads "service restart" for a stop too; the follower reports what the
    gateway's `shutdown` event said."""
    port = str(free_port())  # not 0: the in-process restart binds the same port again
    async with gateway_process(
        tmp_path, "gateway", "--allow-unconfigured", "--port", port, "--token", TOKEN
    ) as proc:
        follower = await trio.lowlevel.open_process(
            [sys.executable, "-m", "gateway", "logs", "--follow", "--json", "--interval", "100"],
            env=cli_env(tmp_path, SMART_AGENT_NEO_GATEWAY_TOKEN=TOKEN),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            preexec_fn=ctrl_c_works,
        )
        assert follower.stdout is not None
        out = Lines(follower.stdout)
        try:
            await out.until(lambda r: r["type"] == "meta")
            proc.process.send_signal(signal.SIGUSR1)
            restarting = await out.until(notice("gateway unavailable"))
            assert "gateway restarting, back in about" in restarting["message"]
            await out.until(notice("gateway reconnected"))
            proc.process.send_signal(signal.SIGTERM)
            stopping = await out.until(notice("gateway unavailable"))
            assert stopping["message"] == "gateway unavailable (gateway stopping); reconnecting"
        finally:
            follower.kill()
            await follower.wait()
        with trio.fail_after(20):
            assert await proc.process.wait() == 0


def raw_http(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            assert chunk, data
            data += chunk
    return data


async def test_what_a_running_gateway_prints_and_answers(tmp_path: Path) -> None:
    """One "listening on" line at start; status lines with reason phrases; `status` with no
    trailing spaces; `gateway call system-presence` prints "·", not "\\u00b7"."""
    async with gateway_process(tmp_path, "gateway", "--allow-unconfigured", "--port", "0") as proc:
        assert proc.banner.count("listening on") == 1, proc.banner
        assert "CTRL + C to quit" not in proc.banner  # hypercorn's line for the canvas host
        head = await in_thread(raw_http, proc.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n"), head
        request = b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n"  # off by default: 404
        missing = await in_thread(raw_http, proc.port, request)
        assert missing.startswith(b"HTTP/1.1 404 Not Found\r\n"), missing
        status = await trio.to_thread.run_sync(partial(run_cli, tmp_path, "status"))
        lines = status.stdout.splitlines()
        assert len(lines) > 5
        assert [line for line in lines if line != line.rstrip()] == []
        presence = await trio.to_thread.run_sync(
            partial(run_cli, tmp_path, "gateway", "call", "system-presence")
        )
        assert presence.returncode == 0, presence.stderr
        assert "\\u" not in presence.stdout
        code, _ = await proc.stop()
        assert code == 0
    down = run_cli(tmp_path, "status")
    assert [line for line in down.stdout.splitlines() if line != line.rstrip()] == []


def test_install_does_not_say_wrote_for_an_unchanged_unit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No service manager: the first install writes the unit (exit 69); the second finds it
    current and says so instead of "wrote" again."""
    host = make_host(tmp_path, fake_systemd(tmp_path, reachable=False))
    argv = ["gateway", "install", "--allow-unconfigured"]
    assert main(argv, host=host) == 69
    unit = tmp_path / ".config" / "systemd" / "user" / "smart-agent-neo-gateway.service"
    assert f"wrote {unit}, but it is not enabled" in capsys.readouterr().err
    before = unit.stat().st_mtime_ns
    assert main(argv, host=host) == 69
    err = capsys.readouterr().err
    assert f"{unit} is current, but it is not enabled" in err
    assert "wrote" not in err
    assert unit.stat().st_mtime_ns == before


def test_timeouts_take_a_unit_and_name_their_bare_unit(tmp_path: Path) -> None:
    """`agent --timeout` is seconds and `logs --timeout` milliseconds: both take 30s/500ms/2m
    and each one's help names the unit of a bare number."""
    assert duration("s")("120") == 120
    assert duration("s")("2m") == 120
    assert duration("s")("500ms") == 1  # a fraction of a second rounds up
    assert duration("ms")("30000") == 30_000
    assert duration("ms")("30s") == 30_000
    assert duration("ms")("1.5s") == 1_500
    bad = run_cli(tmp_path, "logs", "--timeout", "5x")
    assert bad.returncode == 2
    assert "expected a number of milliseconds or a duration like 500ms" in bad.stderr
    agent_help = run_cli(tmp_path, "agent", "--help").stdout
    assert "--timeout SECONDS" in agent_help
    logs_help = run_cli(tmp_path, "logs", "--help").stdout
    assert "--timeout MS" in logs_help
    port = str(free_port())
    suffixed = run_cli(tmp_path, "health", "--timeout", "2s", SMART_AGENT_NEO_GATEWAY_PORT=port)
    assert suffixed.returncode == 1  # parsed; the gateway is just not there
    assert "gateway connect failed" in suffixed.stderr


# -- 12. keys of the runbooks that are not implemented yet --------------------------------------


def test_runbook_keys_not_implemented_yet_say_so(tmp_path: Path) -> None:
    """A key the runbooks use but this gateway lacks: "not supported yet", not "unknown"."""
    config = write_config(tmp_path, {"tls": {"enabled": False}, "prot": 1})
    document = json.loads(config.read_text())
    document["discovery"] = {"enabled": False}
    config.write_text(json.dumps(document))
    result = run_cli(tmp_path, "config", "validate")
    assert result.returncode == 78
    assert "discovery: not supported yet (gateway discovery); remove it for now" in result.stderr
    assert "gateway.tls" not in result.stderr  # C.2's default value is accepted
    assert 'gateway.prot: unknown key (did you mean "port"?)' in result.stderr  # still unknown
    started = run_cli(tmp_path, "gateway")
    assert started.returncode == 78
    assert "discovery: not supported yet" in started.stderr


def test_every_key_of_the_table_gets_not_supported_yet() -> None:
    for path in NOT_YET:
        document: dict[str, Any] = {}
        node = document
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = {}
        with pytest.raises(ConfigError) as refused:
            parse(json.dumps(document), {})
        assert refused.value.problems == [planned_message(path, NOT_YET[path])], path


def _model_has(path: str) -> bool:
    """Does the config model define the key at ``path`` (dotted camelCase)?"""
    node: Any = Config
    for part in path.split("."):
        if not attrs.has(node):
            return False
        fields = {camel(f.name): f for f in attrs.fields(node)}
        if part not in fields:
            return False
        hints = typing.get_type_hints(node)
        node = hints[fields[part].name]
        args = [a for a in typing.get_args(node) if a is not type(None)]
        if args and not attrs.has(node):
            node = args[0]
    return True


def test_a_key_is_either_implemented_or_not_yet_never_both() -> None:
    """Whoever implements a key removes it from config/planned.py's table."""
    assert [path for path in NOT_YET if _model_has(path)] == []
    assert _model_has("gateway.auth.rateLimit")  # the walk itself works


# -- the bench and the gateway from a source checkout --------------------------------------------

REPO = Path(__file__).resolve().parent.parent
NOT_INSTALLED = """\
import sys
# as if this package were not installed: drop the editable install's import hooks
sys.meta_path[:] = [f for f in sys.meta_path if not type(f).__module__.startswith("__editable__")
                    and not getattr(f, "__module__", "").startswith("__editable__")]
sys.path_hooks[:] = [h for h in sys.path_hooks
                     if not getattr(h, "__module__", "").startswith("__editable__")]
sys.path_importer_cache.clear()
"""


def source_env(home: Path, tree: Path) -> dict[str, str]:
    """PYTHONPATH at a source tree, with the installed (editable) package hidden."""
    hooks = home / "not-installed"
    hooks.mkdir(exist_ok=True)
    (hooks / "sitecustomize.py").write_text(NOT_INSTALLED)
    return cli_env(home, PYTHONPATH=f"{hooks}:{tree}")


def test_the_bench_runs_from_a_source_checkout(tmp_path: Path) -> None:
    """`PYTHONPATH=. python -m bench`: there is no `gateway.schemas` package then; every
    connection used to be dropped (1006)."""
    env = source_env(tmp_path, REPO)
    probe = subprocess.run(
        [sys.executable, "-c", "import importlib.util as u; print(u.find_spec('gateway.schemas'))"],
        env=env, capture_output=True, text=True, check=True, cwd=tmp_path,
    )  # fmt: skip
    assert probe.stdout.strip() == "None"  # really not installed
    out = tmp_path / "results"
    bench = subprocess.run(
        [sys.executable, "-m", "bench", "--tiny", "--only", "rpc", "--json", "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=120, check=False, cwd=REPO,
    )  # fmt: skip
    assert bench.returncode == 0, bench.stderr[-2000:]
    (report,) = out.glob("*.json")
    rows = json.loads(report.read_text())["measurements"]
    assert rows
    assert all(r["status"] == "ok" for r in rows), [(r["case"], r["note"]) for r in rows]


def test_a_gateway_without_its_schemas_does_not_start(tmp_path: Path) -> None:
    tree = tmp_path / "checkout"
    shutil.copytree(
        REPO / "gateway", tree / "gateway", ignore=shutil.ignore_patterns("__pycache__")
    )
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "gateway", "--allow-unconfigured", "--port", "0"],
        env=source_env(tmp_path, tree), capture_output=True, text=True, timeout=60,
        check=False, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Gateway failed to start: cannot load the protocol schemas" in result.stderr
    assert "listening on" not in result.stdout
    assert "Traceback" not in result.stderr


# -- spinners on a terminal, nothing on a pipe ----------------------------------------------------


def run_on_a_terminal(home: Path, *args: str, **env: str) -> str:
    """Run the CLI with stdout and stderr on a pseudo-terminal; everything it wrote."""
    main_fd, child_fd = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", *args],
            env={**cli_env(home, **env), "TERM": "xterm"},
            stdin=subprocess.DEVNULL, stdout=child_fd, stderr=child_fd,
        )  # fmt: skip
        os.close(child_fd)
        child_fd = -1
        data = b""
        while True:
            try:
                chunk = os.read(main_fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            data += chunk
        process.wait(timeout=60)
    finally:
        os.close(main_fd)
        if child_fd >= 0:
            os.close(child_fd)
    return data.decode(errors="replace")


def test_slow_commands_show_a_spinner_on_a_terminal_only(tmp_path: Path) -> None:
    port = str(free_port())
    cases = [
        (["status"], "probing the gateway"),
        (["gateway", "status"], "probing the gateway"),
        (["doctor"], "Checking config, service and ports"),
        (["health"], "Calling the gateway"),
        (["gateway", "install", "--dry-run", "--allow-unconfigured"], "waiting for the service"),
    ]
    for args, spinner in cases:
        on_terminal = run_on_a_terminal(tmp_path, *args, SMART_AGENT_NEO_GATEWAY_PORT=port)
        assert spinner in on_terminal, (args, on_terminal)
        piped = run_cli(tmp_path, *args, SMART_AGENT_NEO_GATEWAY_PORT=port)
        assert spinner not in piped.stdout + piped.stderr, args
        assert "\x1b[?25l" not in piped.stdout + piped.stderr  # no cursor games either


# -- `python3 -m pip install .` installs everything -----------------------------------------------


SKIP = {".pyc", ".md"}  # bytecode, and notes for developers (units/README.md)


def _shipped_sources() -> set[str]:
    """What a wheel must contain: every file of the packages, with the mapped directories
    (schemas/, units/, clients/python/) under their package names."""
    roots = {
        REPO / "gateway": "gateway",
        REPO / "schemas": "gateway/schemas",
        REPO / "units": "gateway/units",
        REPO / "clients" / "python" / "gateway_client": "gateway_client",
    }
    wanted = set()
    for root, name in roots.items():
        for path in root.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix not in SKIP:
                wanted.add(f"{name}/{path.relative_to(root).as_posix()}")
    return wanted


def test_the_wheel_ships_every_module_and_data_file(tmp_path: Path) -> None:
    """README's first command is `python3 -m pip install .`; tests run on an editable install,
    which would not notice a package missing from pyproject's list (it happened: a fresh
    install failed with "No module named gateway.canvas")."""
    # from a clean copy: setuptools reuses a checkout's build/ directory, stale files and all
    source = tmp_path / "source"
    for name in ("gateway", "schemas", "units", "clients"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path / "dist"), str(source)],
        capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = set(archive.namelist())
    missing = sorted(_shipped_sources() - shipped)
    assert missing == [], f"not in the wheel (pyproject packages / package-data): {missing}"


def test_install_warns_about_a_foreground_gateway(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The service it installs would exit 78 on the foreground gateway's lock: say so."""
    paths = resolve_paths(None, {}, tmp_path)
    host = make_host(tmp_path, fake_systemd(tmp_path))
    lock = GatewayLock.acquire(paths, port=18789)  # this test process is the gateway
    try:
        assert main(["gateway", "install", "--allow-unconfigured"], host=host) == 0
    finally:
        lock.release()
    out = capsys.readouterr().out
    assert f"runs in the foreground (pid {os.getpid()}); the service cannot start" in out
    assert "smart-agent-neo gateway start" in out


async def test_a_second_start_says_how_to_reach_or_stop_the_first(tmp_path: Path) -> None:
    async with gateway_process(tmp_path, "gateway", "--allow-unconfigured", "--port", "0") as proc:
        second = await trio.to_thread.run_sync(
            partial(run_cli, tmp_path, "gateway", "--allow-unconfigured", "--port", "0")
        )
        assert second.returncode == 1
        pid = proc.process.pid
        assert f"gateway already running (pid {pid})" in second.stderr
        assert "use it (`smart-agent-neo status`)" in second.stderr
        assert f"kill -TERM {pid}" in second.stderr
        code, _ = await proc.stop()
        assert code == 0


# -- Ctrl-C is never lost -------------------------------------------------------------------------

# Runs the real CLI, with SIGINT arriving at the worst moment: while trio-websocket's reader
# task answers the gateway's close frame. There, a KeyboardInterrupt met a checkpoint of a
# cancelled nursery on its way out, was replaced by Cancelled and vanished: `logs --follow`
# ignored Ctrl-C (the old flake of test_logs_follow_sees_new_lines_and_survives_a_restart).
CTRL_C_IN_THE_READER = """
import os, signal, sys
import trio_websocket, wsproto.events
send = trio_websocket.WebSocketConnection._send

async def send_then_ctrl_c(self, event):
    if isinstance(event, wsproto.events.CloseConnection) and self._close_reason is not None:
        os.kill(os.getpid(), signal.SIGINT)  # the handler runs at the next bytecode: here
    return await send(self, event)

trio_websocket.WebSocketConnection._send = send_then_ctrl_c
from gateway.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


async def test_ctrl_c_during_the_close_handshake_ends_logs_follow(tmp_path: Path) -> None:
    """Whether the interrupt used to vanish depended on which task trio ran first (about two
    times in three): a few rounds make a regression all but certain to show."""
    for round_ in range(4):
        settings = make_settings(tmp_path / f"round-{round_}")
        async with gateway_at(settings) as running:
            follower = await trio.lowlevel.open_process(
                [sys.executable, "-c", CTRL_C_IN_THE_READER, "logs", "--follow", "--json",
                 "--url", running.url, "--token", CONFTEST_TOKEN],
                env=cli_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                preexec_fn=ctrl_c_works,
            )  # fmt: skip
            assert follower.stdout is not None
            out = Lines(follower.stdout)
            try:
                await out.until(lambda r: r["type"] == "meta")
                await trio.sleep(0.3)  # into the follower's poll interval, as a user's Ctrl-C
                running.stop()  # the close frame comes; the follower Ctrl-Cs itself answering it
                with trio.move_on_after(15):
                    await follower.wait()
            finally:
                if follower.returncode is None:
                    follower.kill()
                    await follower.wait()
                    raise AssertionError(f"round {round_}: Ctrl-C was lost (still following)")
        assert follower.returncode == 130, round_


def test_the_generated_token_is_shown_only_on_a_terminal(tmp_path: Path) -> None:
    """Issue 16 (low): printed to a pipe, the token landed in the journal. On a terminal it
    is shown once; a token that could not be stored says so."""
    import io

    from rich.console import Console

    from gateway.cli.run import banner

    settings = make_settings(tmp_path, token=None)
    assert settings.auth.source == "generated"
    settings = attrs.evolve(settings, auth=attrs.evolve(settings.auth, token="Zq9-secret-42"))
    running = SimpleNamespace(url="ws://127.0.0.1:1", host="127.0.0.1", port=1, canvas_port=None)

    def shown(terminal: bool, error: str | None = None) -> str:
        buffer = io.StringIO()
        console = Console(file=buffer, force_terminal=terminal, width=200, color_system=None)
        banner(running, settings, True, console, error)  # type: ignore[arg-type]
        return buffer.getvalue()

    token = str(settings.auth.token)
    assert f"  {token}" in shown(True)
    assert token not in shown(False)
    assert "read it with: cat" in shown(False)
    full = shown(True, "No space left on device")
    assert "NOT stored: No space left on device" in full
    assert token in full
    assert token not in shown(False, "No space left on device")


def test_a_non_loopback_banner_warns_about_plain_ws(tmp_path: Path) -> None:
    """FAILURE-MODES 20: a gateway listening beyond loopback over ws:// says that its token
    and traffic travel unencrypted; on loopback nothing is said."""
    import io

    from rich.console import Console

    from gateway.cli.run import banner

    settings = make_settings(tmp_path)

    def shown(host: str) -> str:
        running = SimpleNamespace(url=f"ws://{host}:1", host=host, port=1, canvas_port=None)
        buffer = io.StringIO()
        console = Console(file=buffer, force_terminal=False, width=300, color_system=None)
        banner(running, settings, False, console)  # type: ignore[arg-type]
        return buffer.getvalue()

    assert "unencrypted" in shown("0.0.0.0")
    assert "plain ws://" in shown("192.168.1.20")
    assert "unencrypted" not in shown("127.0.0.1")
    assert "unencrypted" not in shown("::1")
