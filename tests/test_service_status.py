"""gateway status: the verdict matrix, port owners from /proc, and gather() against a real
gateway on 127.0.0.1:0 (running), nothing (stopped) and a foreign listener (conflict)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from bench.procs import free_port
from gateway.app import Running
from gateway.cli.gateway_status import status_json
from gateway.cli.status_view import GatewayStatusReport
from gateway.config.paths import Paths
from gateway.ports import (
    PortListener,
    gateway_config_path,
    looks_like_gateway,
    parse_proc_net,
    port_listeners,
)
from gateway.service.runtime_view import ExitInfo, ServiceRuntime
from gateway.service.status import gather
from gateway.service.systemd import parse_show, runtime_from_show
from gateway.service.verdict import Facts, Probe, classify

from .conftest import TOKEN, StartGateway, make_settings
from .goldens import render_text
from .servicefakes import fake_systemd, make_host

UNIT = "smart-agent-neo-gateway.service"

# -- the verdict (pure) ---------------------------------------------------------------------

ACTIVE = ServiceRuntime(True, True, "running", "active", "running", pid=100)
FAILED = ServiceRuntime(True, True, "failed", "failed", "failed", last_exit=ExitInfo("exited", 78))
LOOPING = ServiceRuntime(
    True, True, "restarting", "activating", "auto-restart", last_exit=ExitInfo("exited", 1)
)
STARTING = ServiceRuntime(True, True, "starting", "activating", "start", pid=100)
STOPPED = ServiceRuntime(True, True, "stopped", "inactive", "dead")
GATEWAY = PortListener("127.0.0.1:28789", 100, "/usr/bin/smart-agent-neo gateway run")
OTHER_GW = PortListener("127.0.0.1:28789", 300, "/usr/bin/smart-agent-neo --profile b gateway run")
NGINX = PortListener("0.0.0.0:28789", 200, "nginx: master process")
HIDDEN = PortListener("0.0.0.0:28789")
OK = Probe(ok=True, pid=100)
REFUSED = Probe(ok=False, error="gateway connect failed: Connection refused")
UNAUTHORIZED = Probe(ok=False, answered=True, error="unauthorized: gateway token mismatch")
SKIPPED = Probe(ok=False, skipped=True)


@pytest.mark.parametrize(
    ("installed", "runtime", "listeners", "probe", "lock_pid", "state", "reason"),
    [
        (True, ACTIVE, [GATEWAY], OK, 100, "running", None),
        (False, None, [GATEWAY], OK, None, "running", None),
        (True, STOPPED, [GATEWAY], OK, None, "running", "outside the service manager"),
        (True, ACTIVE, [GATEWAY], Probe(ok=True, pid=555), None, "conflict", "not by the service"),
        (True, ACTIVE, [], REFUSED, None, "degraded", "port 28789 is not listening"),
        (True, ACTIVE, [GATEWAY], REFUSED, None, "degraded", "RPC probe failed"),
        (True, ACTIVE, [GATEWAY], UNAUTHORIZED, None, "degraded", "token mismatch"),
        (False, None, [HIDDEN], UNAUTHORIZED, None, "degraded", "RPC probe failed"),
        (True, STOPPED, [NGINX], REFUSED, None, "conflict", "another process: pid 200 (nginx"),
        (False, None, [OTHER_GW], REFUSED, None, "conflict", "another gateway: pid 300"),
        (False, None, [OTHER_GW], UNAUTHORIZED, None, "conflict", "another gateway: pid 300"),
        (False, None, [HIDDEN], REFUSED, None, "conflict", "does not answer as a gateway"),
        (True, LOOPING, [], REFUSED, None, "degraded", "keeps exiting (exit 1"),
        (True, STARTING, [], REFUSED, None, "starting", None),
        (True, FAILED, [], REFUSED, None, "stopped", "exit 78 (invalid config"),
        (True, STOPPED, [], REFUSED, None, "stopped", None),
        (True, None, [], REFUSED, None, "stopped", "cannot be reached"),
        (False, None, [], REFUSED, None, "not-installed", None),
        (False, None, None, REFUSED, None, "not-installed", None),
        (True, ACTIVE, [GATEWAY], SKIPPED, None, "running", "not probed"),
        (False, None, [NGINX], SKIPPED, None, "conflict", "pid 200"),
    ],
)
def test_status_states_are_distinct_and_truthful(
    installed: bool,
    runtime: ServiceRuntime | None,
    listeners: list[PortListener] | None,
    probe: Probe,
    lock_pid: int | None,
    state: str,
    reason: str | None,
) -> None:
    """FAILURE-MODES 28: {supervisor} x {pid} x {port owner} x {RPC} give distinct states."""
    got, reasons = classify(Facts(installed, runtime, listeners, probe, lock_pid, 28789))
    assert got == state, reasons
    if reason is None:
        assert not any("conflict" in r for r in reasons)
    else:
        assert any(reason in r for r in reasons), reasons


def test_a_listener_running_this_profiles_config_is_ours() -> None:
    listener = PortListener(
        "127.0.0.1:1", 9, "smart-agent-neo gateway run", "/h/.smart-agent-neo/c.json"
    )
    facts = Facts(False, None, [listener], SKIPPED, None, 1, "/h/.smart-agent-neo/c.json")
    assert classify(facts)[0] == "running"


def test_systemd_show_parsing() -> None:
    props = parse_show(
        "LoadState=loaded\nActiveState=failed\nSubState=failed\nMainPID=0\nExecMainCode=1\n"
        "ExecMainStatus=78\nResult=exit-code\nNRestarts=3\nUnitFileState=enabled\n"
    )
    runtime = runtime_from_show(props)
    assert runtime.status == "failed"
    assert runtime.enabled is True
    assert runtime.restarts == 3
    assert runtime.last_exit == ExitInfo("exited", 78)
    assert runtime.detail == "result exit-code"
    killed = runtime_from_show(
        parse_show("LoadState=loaded\nActiveState=inactive\nExecMainCode=2\nExecMainStatus=9\n")
    )
    assert killed.last_exit is not None
    assert killed.last_exit.describe() == "killed by SIGKILL"
    assert not runtime_from_show({"LoadState": "not-found"}).loaded


# -- /proc ----------------------------------------------------------------------------------

PROC_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:7075 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 55501 1
   1: 0100007F:7075 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 55502 1
   2: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1234 1
"""
PROC_TCP6 = """\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:7075 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 55503 1
"""


def test_proc_net_parsing() -> None:
    v4 = parse_proc_net(PROC_TCP)
    assert [(entry.address, entry.inode, entry.uid) for entry in v4] == [
        ("127.0.0.1:28789", 55501, 1000),
        ("0.0.0.0:22", 1234, 0),
    ]
    v6 = parse_proc_net(PROC_TCP6, ipv6=True)
    assert [entry.address for entry in v6] == ["[::1]:28789"]


def test_port_owner_of_a_real_listener(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        found = port_listeners(port)
    assert found is not None
    assert [(entry.address, entry.pid) for entry in found] == [(f"127.0.0.1:{port}", os.getpid())]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]  # bound, never listening
        assert port_listeners(free) == []


def test_gateway_config_path_of_a_process(tmp_path: Path) -> None:
    pid_dir = tmp_path / "123"
    pid_dir.mkdir()
    (pid_dir / "cmdline").write_bytes(
        b"/usr/bin/python3\0-m\0gateway\0--profile\0b\0gateway\0run\0"
    )
    (pid_dir / "environ").write_bytes(b"HOME=/home/bob\0LANG=C\0")
    assert gateway_config_path(tmp_path, 123) == "/home/bob/.smart-agent-neo-b/smart-agent-neo.json"
    (pid_dir / "environ").write_bytes(
        b"HOME=/home/bob\0SMART_AGENT_NEO_CONFIG_PATH=/etc/neo.json\0"
    )
    assert gateway_config_path(tmp_path, 123) == "/etc/neo.json"
    assert looks_like_gateway("/usr/bin/python3 -m gateway run")
    assert not looks_like_gateway("nginx: worker")


# -- gather() against real sockets ----------------------------------------------------------


def _paths(state: Path) -> Paths:
    return Paths(None, state, state / "smart-agent-neo.json")


async def test_status_of_a_running_gateway(tmp_path: Path, start_gateway: StartGateway) -> None:
    state = tmp_path / "state"
    running: Running = await start_gateway(make_settings(state))
    host = make_host(
        tmp_path, fake_systemd(tmp_path), env={"SMART_AGENT_NEO_GATEWAY_PORT": str(running.port)}
    )
    status, payload = await gather(host, _paths(state), token=TOKEN, timeout_ms=5_000)
    assert status.state == "running", status.reasons
    assert status.rpc.ok
    assert status.rpc.pid == os.getpid()
    assert status.rpc.url == f"ws://127.0.0.1:{running.port}"
    assert status.rpc.latency_ms is not None
    assert status.port.status == "busy"
    assert [(entry.pid, entry.owner) for entry in status.port.listeners] == [
        (os.getpid(), "this-gateway")
    ]
    assert not status.service.installed
    assert payload is not None
    assert payload["gateway"]["port"] == running.port
    assert status.config.path == str(state / "smart-agent-neo.json")
    assert status.config.valid
    # the runbook's healthy baseline reads the same for a gateway outside the service
    # manager (a terminal, a container): "Runtime: running" and "RPC probe: ok"
    lines = render_text(GatewayStatusReport(status)).splitlines()
    assert f"Runtime: running (pid {os.getpid()}, not under the service manager)" in lines
    assert any(line.startswith("RPC probe: ok (") for line in lines)
    # OPERATIONS.md E.5's lines, in order: Gateway, Probe target, Dashboard, Probe note
    port = running.port
    gateway_line = f"Gateway: bind=loopback (127.0.0.1), port={port} (env/config)"
    dashboard = f"Dashboard: http://127.0.0.1:{port}/"
    note = "Probe note: Loopback-only gateway; only local clients can connect."
    probe = next(line for line in lines if line.startswith("Probe target: "))
    order = [lines.index(gateway_line), lines.index(probe), lines.index(dashboard)]
    assert order == sorted(order)
    assert note in lines
    assert any(line.startswith("File logs: ") for line in lines)
    data = status_json(status)
    assert data["gateway"]["probeUrl"] == f"ws://127.0.0.1:{port}"
    assert data["gateway"]["bindMode"] == "loopback"
    assert data["service"]["runtime"]["status"] == "running"
    assert data["rpc"]["ok"] is True
    assert isinstance(data["rpc"]["durationMs"], int)


async def test_status_with_a_wrong_token_is_degraded(
    tmp_path: Path, start_gateway: StartGateway
) -> None:
    state = tmp_path / "state"
    running = await start_gateway(make_settings(state))
    host = make_host(
        tmp_path, fake_systemd(tmp_path), env={"SMART_AGENT_NEO_GATEWAY_PORT": str(running.port)}
    )
    status, _ = await gather(host, _paths(state), token="wrong", timeout_ms=5_000)
    assert status.state == "degraded"
    assert status.rpc.error is not None
    assert "token mismatch" in status.rpc.error


async def test_status_when_the_service_runs_another_process(
    tmp_path: Path, start_gateway: StartGateway
) -> None:
    """The fake manager says pid 4242 is the service; the port answers for this process."""
    from gateway.service import control

    state = tmp_path / "state"
    running = await start_gateway(make_settings(state))
    runner = fake_systemd(tmp_path)
    env = {"SMART_AGENT_NEO_GATEWAY_PORT": str(running.port)}
    host = make_host(tmp_path, runner, env=env)
    paths = _paths(state)
    # as `gateway install` does: the exported port is pinned in the unit
    control.install(host, paths, options=control.install_options(host, None, True))
    status, _ = await gather(host, paths, token=TOKEN, timeout_ms=5_000)
    assert status.state == "conflict"
    assert status.service.installed
    assert status.service.runtime is not None
    assert status.service.runtime.pid == 4242
    control.control(host, paths, "stop")
    status, _ = await gather(host, paths, token=TOKEN, timeout_ms=5_000)
    assert status.state == "running"
    assert status.reasons == [f"running outside the service manager (pid {os.getpid()})"]


async def test_status_of_a_stopped_gateway(tmp_path: Path) -> None:
    port = free_port()
    state = tmp_path / ".smart-agent-neo"
    runner = fake_systemd(tmp_path)
    host = make_host(tmp_path, runner, env={"SMART_AGENT_NEO_GATEWAY_PORT": str(port)})
    status, payload = await gather(host, _paths(state), timeout_ms=2_000)
    assert (status.state, payload) == ("not-installed", None)
    assert status.port.status == "free"
    assert status.rpc.error is not None
    assert "gateway connect failed" in status.rpc.error
    assert status.lock.state == "free"
    skipped, _ = await gather(host, _paths(state), no_probe=True)
    assert skipped.rpc.skipped
    assert skipped.state == "not-installed"


async def test_status_shows_the_last_error_when_the_service_runs_but_the_port_is_closed(
    tmp_path: Path,
) -> None:
    from gateway.service import control

    port = free_port()
    state = tmp_path / ".smart-agent-neo"
    line = (
        "Gateway failed to start: Gateway start blocked: set gateway.mode=local (current: remote)"
    )
    runner = fake_systemd(tmp_path, journal=["boot", line, "Run `smart-agent-neo doctor`."])
    host = make_host(tmp_path, runner, env={"SMART_AGENT_NEO_GATEWAY_PORT": str(port)})
    paths = _paths(state)
    # as `gateway install` does: the exported port is pinned in the unit
    control.install(host, paths, options=control.install_options(host, None, True))
    status, _ = await gather(host, paths, timeout_ms=2_000)
    assert status.state == "degraded"
    assert status.last_error == line
    assert status.logs == f"journalctl --user -u {UNIT} -n 200 --no-pager"


async def test_status_names_a_foreign_port_owner(tmp_path: Path) -> None:
    """FAILURE-MODES 2(c): an unrelated server on the port is a conflict, never ours."""
    state = tmp_path / ".smart-agent-neo"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        host = make_host(
            tmp_path, fake_systemd(tmp_path), env={"SMART_AGENT_NEO_GATEWAY_PORT": str(port)}
        )
        # the listener accepts and never speaks: the probe gives up after its timeout
        status, _ = await gather(host, _paths(state), token=TOKEN, timeout_ms=300)
    assert status.state == "conflict"
    assert [entry.pid for entry in status.port.listeners] == [os.getpid()]
    assert f"port {port} is held by" in status.reasons[0]


async def test_deep_status_lists_other_gateway_services_and_profile_collisions(
    tmp_path: Path,
) -> None:
    """FAILURE-MODES 7 and 33: other gateway-like units and colliding profiles are named."""
    port = free_port()
    for name in (".smart-agent-neo", ".smart-agent-neo-rescue"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "smart-agent-neo.json").write_text(f"{{ gateway: {{ port: {port} }} }}")
    system_dir = tmp_path / "etc" / "systemd" / "system"
    system_dir.mkdir(parents=True)
    (system_dir / "openclaw-gateway.service").write_text(
        "[Service]\nExecStart=/usr/bin/openclaw gateway\n"
    )
    host = make_host(tmp_path, fake_systemd(tmp_path))
    paths = Paths(
        None, tmp_path / ".smart-agent-neo", tmp_path / ".smart-agent-neo" / "smart-agent-neo.json"
    )
    shallow, _ = await gather(host, paths, no_probe=True)
    assert shallow.other_services is None
    assert shallow.collisions == [
        f"profiles default and rescue both use port {port} (and its derived ports): "
        "give one of them another gateway.port"
    ]
    deep, _ = await gather(host, paths, no_probe=True, deep=True)
    assert deep.other_services is not None
    assert [(s.name, s.scope, s.ours) for s in deep.other_services] == [
        ("openclaw-gateway", "system", False)
    ]


async def test_status_works_with_an_invalid_config(tmp_path: Path) -> None:
    state = tmp_path / ".smart-agent-neo"
    state.mkdir()
    (state / "smart-agent-neo.json").write_text('{ gateway: { port: "abc" } }')
    host = make_host(
        tmp_path, fake_systemd(tmp_path), env={"SMART_AGENT_NEO_GATEWAY_PORT": str(free_port())}
    )
    status, _ = await gather(host, _paths(state), timeout_ms=2_000)
    assert status.state == "not-installed"
    assert status.config.valid is False
    assert status.config.issues == ['gateway.port: expected an integer 1-65535, got "abc"']


async def test_json_runtime_is_there_when_the_manager_cannot_be_asked(
    tmp_path: Path, start_gateway: StartGateway
) -> None:
    """A unit on disk, no user manager (a container), the gateway running in a terminal:
    ``service.runtime.status`` still says running (E.5's JSON), not null."""
    from gateway.service import control
    from gateway.service.errors import ManagerUnavailableError

    state = tmp_path / "state"
    running = await start_gateway(make_settings(state))
    host = make_host(
        tmp_path,
        fake_systemd(tmp_path, reachable=False),
        env={"SMART_AGENT_NEO_GATEWAY_PORT": str(running.port)},
    )
    paths = _paths(state)
    with pytest.raises(ManagerUnavailableError):  # the unit is written all the same
        control.install(host, paths, options=control.install_options(host, None, True))
    status, _ = await gather(host, paths, token=TOKEN, timeout_ms=5_000)
    assert status.service.installed
    assert status.service.runtime is None
    data = status_json(status)
    assert data["service"]["runtime"]["status"] == "running"
    assert data["service"]["runtime"]["detail"] == "not under the service manager"
    assert data["service"]["runtime"]["missingUnit"] is False
