"""install / uninstall / start / stop / restart with the replaceable runner and a temp HOME."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from gateway.cli.main import main
from gateway.config.paths import Paths, resolve_paths
from gateway.errors import ConfigError
from gateway.lock import GatewayLock
from gateway.service import control
from gateway.service.errors import ManagerUnavailableError, ServiceError
from gateway.service.launchd import parse_print
from gateway.service.runner import SystemRunner
from gateway.service.spec import InstallOptions

from .servicefakes import FakeLaunchd, fake_systemd, make_host

UNIT = "smart-agent-neo-gateway.service"
LOCAL_CONFIG = '{ gateway: { mode: "local" } }'


pytestmark = pytest.mark.usefixtures("isolated_env")


def setup_home(home: Path, profile: str | None = None, config: str | None = LOCAL_CONFIG) -> Paths:
    paths = resolve_paths(profile, {}, home)
    if config is not None:
        paths.state_dir.mkdir(parents=True)
        paths.config_path.write_text(config)
    return paths


def unit_path(home: Path, name: str = UNIT) -> Path:
    return home / ".config" / "systemd" / "user" / name


def test_fresh_install_writes_the_unit_enables_and_starts(tmp_path: Path) -> None:
    paths = setup_home(tmp_path)
    runner = fake_systemd(tmp_path)
    result = control.install(make_host(tmp_path, runner), paths)
    assert result.result == "installed"
    assert runner.commands() == [
        ["systemctl", "--user", "daemon-reload"],
        ["systemctl", "--user", "enable", "--now", UNIT],
    ]
    text = unit_path(tmp_path).read_text()
    assert "ExecStart=/opt/neo/bin/smart-agent-neo gateway run\n" in text
    assert stat.S_IMODE(unit_path(tmp_path).stat().st_mode) == 0o644
    assert result.runtime is not None
    assert result.runtime.status == "running"
    assert result.warnings == []


def test_install_is_a_no_op_when_the_unit_matches(tmp_path: Path) -> None:
    paths = setup_home(tmp_path)
    runner = fake_systemd(tmp_path)
    host = make_host(tmp_path, runner)
    control.install(host, paths)
    runner.history.clear()
    before = unit_path(tmp_path).stat().st_mtime_ns
    again = control.install(host, paths)
    assert again.result == "unchanged"
    assert runner.commands() == []
    assert unit_path(tmp_path).stat().st_mtime_ns == before
    forced = control.install(host, paths, force=True)
    assert forced.result == "updated"
    assert runner.commands() == [
        ["systemctl", "--user", "daemon-reload"],
        ["systemctl", "--user", "reset-failed", UNIT],
        ["systemctl", "--user", "enable", UNIT],
        ["systemctl", "--user", "restart", UNIT],
    ]


def test_a_changed_unit_is_backed_up_and_replaced(tmp_path: Path) -> None:
    paths = setup_home(tmp_path)
    runner = fake_systemd(tmp_path)
    host = make_host(tmp_path, runner)
    control.install(host, paths)
    unit_path(tmp_path).write_text(
        unit_path(tmp_path).read_text().replace("RestartSec=5", "RestartSec=1")
    )
    result = control.install(host, paths)
    assert result.result == "updated"
    backup = unit_path(tmp_path).with_name(UNIT + ".bak")
    assert "RestartSec=1" in backup.read_text()
    assert "RestartSec=5" in unit_path(tmp_path).read_text()
    assert any("backed up" in change for change in result.changes)


def test_no_service_manager_writes_the_unit_and_says_so(tmp_path: Path) -> None:
    paths = setup_home(tmp_path)
    runner = fake_systemd(tmp_path, reachable=False)
    host = make_host(tmp_path, runner)
    with pytest.raises(ManagerUnavailableError) as caught:
        control.install(host, paths)
    error = caught.value
    assert error.exit_code == 69
    # OPERATIONS.md E.2's signature, then the detail and what it means
    assert "it is not enabled: systemctl --user unavailable: Failed to connect to bus" in (
        error.message
    )
    assert "(the systemd user manager cannot be reached)" in error.message
    assert error.written == [str(unit_path(tmp_path))]
    assert unit_path(tmp_path).exists()
    assert runner.commands() == []  # nothing was changed in a manager we cannot reach
    # once a manager runs, the same install finishes the job instead of saying "unchanged"
    runner.reachable = True
    assert control.install(host, paths).result == "installed"
    assert runner.units[UNIT].enabled


def test_dry_run_touches_nothing(tmp_path: Path) -> None:
    paths = setup_home(tmp_path)
    host = make_host(tmp_path, SystemRunner(dry_run=True))
    result = control.install(host, paths)
    assert result.dry_run
    assert result.unit_text is not None
    assert not unit_path(tmp_path).exists()
    assert result.commands == [
        ["systemctl", "--user", "daemon-reload"],
        ["systemctl", "--user", "enable", "--now", UNIT],
    ]


def test_cli_dry_run_json_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    setup_home(tmp_path, "rescue")
    host = make_host(tmp_path, fake_systemd(tmp_path))
    code = main(["--profile", "rescue", "gateway", "install", "--dry-run", "--json"], host=host)
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert set(payload) == {"unitPath", "unit", "commands"}
    assert payload["unitPath"] == str(unit_path(tmp_path, "smart-agent-neo-gateway-rescue.service"))
    assert "--profile rescue gateway run" in payload["unit"]
    assert payload["commands"][-1] == [
        "systemctl",
        "--user",
        "enable",
        "--now",
        "smart-agent-neo-gateway-rescue.service",
    ]
    assert not unit_path(tmp_path, "smart-agent-neo-gateway-rescue.service").exists()


def test_cli_install_without_manager_exits_69_with_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_home(tmp_path)
    host = make_host(tmp_path, fake_systemd(tmp_path, reachable=False))
    assert main(["gateway", "install", "--json"], host=host) == 69
    payload = json.loads(capsys.readouterr().out)
    assert payload["ok"] is False
    assert payload["action"] == "install"
    assert payload["written"] == [str(unit_path(tmp_path))]
    assert any("enable-linger" in hint for hint in payload["hints"])
    assert main(["gateway", "install"], host=host) == 69
    err = capsys.readouterr().err
    assert "cannot be reached" in err
    assert "Tip:" in err
    assert "Traceback" not in err


def test_install_refuses_a_config_that_would_not_start(tmp_path: Path) -> None:
    paths = setup_home(tmp_path, config=None)
    host = make_host(tmp_path, fake_systemd(tmp_path))
    with pytest.raises(ServiceError, match="Missing config") as caught:
        control.install(host, paths)
    assert any("--allow-unconfigured" in hint for hint in caught.value.hints)
    assert not unit_path(tmp_path).exists()
    options = InstallOptions(allow_unconfigured=True)
    result = control.install(host, paths, options=options)
    assert "gateway run --allow-unconfigured" in unit_path(tmp_path).read_text()
    assert result.result == "installed"


def test_install_with_invalid_config_exits_78(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = setup_home(tmp_path, config='{ gateway: { mode: "local", port: "abc" } }')
    host = make_host(tmp_path, fake_systemd(tmp_path))
    with pytest.raises(ConfigError):
        control.install(host, paths)
    assert main(["gateway", "install"], host=host) == 78
    assert 'gateway.port: expected an integer 1-65535, got "abc"' in capsys.readouterr().err


def test_exported_secrets_go_to_a_0600_env_file_not_the_unit(tmp_path: Path) -> None:
    """FAILURE-MODES 23: the service gets the shell's token without the unit holding it."""
    paths = setup_home(
        tmp_path, config='{ gateway: { mode: "local", auth: { token: "${MY_TOK}" } } }'
    )
    env = {"SMART_AGENT_NEO_GATEWAY_PASSWORD": "pw-1", "MY_TOK": "tok-2", "UNRELATED": "x"}
    host = make_host(tmp_path, fake_systemd(tmp_path), env=env)
    result = control.install(host, paths)
    env_file = paths.state_dir / "gateway.env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    content = env_file.read_text()
    assert 'SMART_AGENT_NEO_GATEWAY_PASSWORD="pw-1"' in content
    assert 'MY_TOK="tok-2"' in content
    assert "UNRELATED" not in content
    unit = unit_path(tmp_path).read_text()
    assert "pw-1" not in unit
    assert "tok-2" not in unit
    assert f"EnvironmentFile=-{env_file}" in unit
    assert any("gateway.env" in change for change in result.changes)


def test_exported_port_is_pinned(tmp_path: Path) -> None:
    host = make_host(
        tmp_path, fake_systemd(tmp_path), env={"SMART_AGENT_NEO_GATEWAY_PORT": "19500"}
    )
    assert control.install_options(host, None, False) == InstallOptions(port=19500)
    assert control.install_options(host, 19600, True) == InstallOptions(19600, True)


def test_lingering_off_is_a_warning(tmp_path: Path) -> None:
    paths = setup_home(tmp_path)
    result = control.install(make_host(tmp_path, fake_systemd(tmp_path, linger="no")), paths)
    assert any(
        "lingering is off for alice" in w and "enable-linger alice" in w for w in result.warnings
    )


def test_a_failed_start_names_the_gateway_error(tmp_path: Path) -> None:
    paths = setup_home(tmp_path)
    line = "Gateway failed to start: another gateway instance is already listening on ws://127.0.0.1:28789"
    runner = fake_systemd(tmp_path, start_fails=True, journal=["starting", line])
    with pytest.raises(ServiceError, match="enable --now") as caught:
        control.install(make_host(tmp_path, runner), paths)
    assert f"last gateway error: {line}" in caught.value.hints


def test_stop_and_restart_never_leave_the_unit_disabled_or_start_limited(tmp_path: Path) -> None:
    """FAILURE-MODES 3 and 5: start after stop works; a failed/start-limited unit restarts."""
    paths = setup_home(tmp_path)
    runner = fake_systemd(tmp_path)
    host = make_host(tmp_path, runner)
    control.install(host, paths)
    runner.history.clear()
    stopped = control.control(host, paths, "stop")
    assert stopped.result == "stopped"
    assert runner.commands() == [
        ["systemctl", "--user", "stop", UNIT],
        ["systemctl", "--user", "reset-failed", UNIT],
    ]
    assert runner.units[UNIT].enabled  # stop is not disable: it still starts at boot
    runner.units[UNIT].failed = True  # as after a start-limit hit
    runner.units[UNIT].active = "failed"
    runner.history.clear()
    restarted = control.control(host, paths, "restart")
    assert runner.commands()[0] == ["systemctl", "--user", "reset-failed", UNIT]
    assert restarted.result == "restarted"
    assert restarted.runtime is not None
    assert restarted.runtime.status == "running"
    runner.history.clear()
    assert control.control(host, paths, "start").result == "started"
    assert runner.commands()[0] == ["systemctl", "--user", "reset-failed", UNIT]


def test_control_when_not_installed(tmp_path: Path) -> None:
    paths = setup_home(tmp_path)
    host = make_host(tmp_path, fake_systemd(tmp_path))
    stopped = control.control(host, paths, "stop")
    assert stopped.result == "not-installed"
    assert stopped.warnings == []
    lock = GatewayLock.acquire(paths, port=1)  # a foreground gateway of this profile
    pid = os.getpid()
    try:
        errors = {}
        for action in ("stop", "restart", "start"):
            with pytest.raises(ServiceError) as refused:
                control.control(host, paths, action)
            errors[action] = refused.value
    finally:
        lock.release()
    assert errors["stop"].message.startswith(
        f"the gateway of this profile runs in the foreground (pid {pid}), not under the "
        "service manager"
    )
    assert errors["stop"].hints == [f"stop it with Ctrl-C in its terminal, or: kill -TERM {pid}"]
    assert errors["restart"].hints == [
        f"restart it in place (same pid): kill -USR1 {pid}",
        "or: smart-agent-neo gateway call restart",
    ]
    assert "already running" in errors["start"].hints[0]
    with pytest.raises(ServiceError, match="not installed") as caught:
        control.control(host, paths, "start")
    assert caught.value.hints == ["install it first: smart-agent-neo gateway install"]


def test_start_reports_a_gateway_that_does_not_stay_up(tmp_path: Path) -> None:
    paths = setup_home(tmp_path)
    runner = fake_systemd(tmp_path)
    host = make_host(tmp_path, runner)
    control.install(host, paths)
    control.control(host, paths, "stop")
    runner.start_fails = True
    with pytest.raises(ServiceError, match="start"):
        control.control(host, paths, "start")


def test_uninstall(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = setup_home(tmp_path)
    runner = fake_systemd(tmp_path)
    host = make_host(tmp_path, runner)
    control.install(host, paths)
    runner.history.clear()
    result = control.uninstall(host, paths)
    assert result.result == "removed"
    assert not unit_path(tmp_path).exists()
    assert runner.commands() == [
        ["systemctl", "--user", "disable", "--now", UNIT],
        ["systemctl", "--user", "daemon-reload"],
        ["systemctl", "--user", "reset-failed", UNIT],
    ]
    assert control.uninstall(host, paths).result == "not-installed"
    assert main(["gateway", "uninstall"], host=host) == 0
    assert "not installed" in capsys.readouterr().out


def test_uninstall_without_manager_still_removes_the_file(tmp_path: Path) -> None:
    paths = setup_home(tmp_path)
    runner = fake_systemd(tmp_path)
    host = make_host(tmp_path, runner)
    control.install(host, paths)
    runner.reachable = False
    result = control.uninstall(host, paths)
    assert result.result == "removed"
    assert not unit_path(tmp_path).exists()
    assert "cannot be reached" in result.warnings[0]


def test_system_scope_and_duplicates_are_refused(tmp_path: Path) -> None:
    """FAILURE-MODES 7: a user and a system unit for one profile would fight over its port."""
    paths = setup_home(tmp_path)
    runner = fake_systemd(tmp_path)
    host = make_host(tmp_path, runner)
    result = control.install(host, paths, scope="system")
    system_unit = tmp_path / "etc" / "systemd" / "system" / UNIT
    assert result.identity.path == system_unit
    assert runner.commands()[0] == ["systemctl", "daemon-reload"]
    assert "User=alice" in system_unit.read_text()
    with pytest.raises(ServiceError, match="already has a system unit") as caught:
        control.install(host, paths)
    assert "uninstall --system" in caught.value.hints[0]
    with pytest.raises(ServiceError, match="not installed") as missing:
        control.control(host, paths, "restart")
    assert missing.value.hints == [f"a system unit is installed at {system_unit}: add --system"]
    assert control.control(host, paths, "restart", scope="system").result == "restarted"


def test_launchd_commands(tmp_path: Path) -> None:
    paths = setup_home(tmp_path, "work")
    runner = FakeLaunchd()
    host = make_host(tmp_path, runner, platform="darwin")
    result = control.install(host, paths)
    plist = tmp_path / "Library" / "LaunchAgents" / "ai.smartagentneo.work.plist"
    assert result.identity.path == plist
    assert plist.exists()
    assert (paths.state_dir / "logs").is_dir()
    domain = f"gui/{os.getuid()}"
    target = f"{domain}/ai.smartagentneo.work"
    assert runner.commands() == [
        ["launchctl", "enable", target],
        ["launchctl", "bootstrap", domain, str(plist)],
    ]
    assert result.runtime is not None
    assert result.runtime.pid == 77
    runner.history.clear()
    control.control(host, paths, "stop")
    assert runner.commands() == [["launchctl", "bootout", target]]
    runner.history.clear()
    control.control(host, paths, "start")  # not loaded after bootout: bootstrap again
    assert runner.commands() == [
        ["launchctl", "enable", target],
        ["launchctl", "bootstrap", domain, str(plist)],
        ["launchctl", "kickstart", target],
    ]


def test_launchd_print_parsing() -> None:
    text = (
        "gui/501/ai.x = {\n\tstate = not running\n\truns = 3\n\tlast exit code = 78: EX_CONFIG\n}\n"
    )
    runtime = parse_print(text)
    assert runtime.status == "stopped"
    assert runtime.restarts == 2
    assert runtime.last_exit is not None
    assert runtime.last_exit.describe() == ("exit 78 (invalid config (not restarted until fixed))")


def test_unsupported_platform(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    setup_home(tmp_path)
    host = make_host(tmp_path, fake_systemd(tmp_path), platform="win32")
    assert main(["gateway", "install"], host=host) == 1
    assert "not supported on win32" in capsys.readouterr().err
