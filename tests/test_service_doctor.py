"""doctor [--fix]: each check against a temp HOME and the replaceable runner."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import stat
from pathlib import Path

import pytest

from bench.procs import free_port
from gateway.cli.main import main
from gateway.config.paths import Paths, resolve_paths
from gateway.lock import GatewayLock, lock_path
from gateway.service import control
from gateway.service.checks import Check
from gateway.service.doctor import doctor, run_checks
from gateway.service.spec import InstallOptions

from .servicefakes import fake_systemd, make_host

pytestmark = pytest.mark.usefixtures("isolated_env")


def local_profile(
    home: Path, profile: str | None = None, config: str = '{ gateway: { mode: "local" } }'
) -> Paths:
    paths = resolve_paths(profile, {}, home)
    paths.state_dir.mkdir(parents=True, mode=0o700)
    paths.config_path.write_text(config)
    paths.config_path.chmod(0o600)
    (paths.state_dir / "gateway.token").write_text("tok\n")
    (paths.state_dir / "gateway.token").chmod(0o600)
    return paths


def by_id(checks: list[Check]) -> dict[str, tuple[str, str]]:
    return {c.id: (c.status, c.message) for c in checks}


def test_a_healthy_profile_is_all_ok(tmp_path: Path) -> None:
    paths = local_profile(tmp_path)
    runner = fake_systemd(tmp_path)
    host = make_host(tmp_path, runner, env={"SMART_AGENT_NEO_GATEWAY_PORT": str(free_port())})
    control.install(host, paths)
    result = doctor(host, paths)
    assert result.ok
    assert {c.status for c in result.checks} == {"ok"}, by_id(result.checks)
    assert [c.id for c in result.checks] == [
        "state.writable",
        "config.valid",
        "config.permissions",
        "auth.token",
        "lock.stale",
        "service.drift",
        "service.manager",
        "service.linger",
        "port.conflict",
        "services.duplicate",
        "profiles.ports",
        "channels.config",
    ]


def test_invalid_config_fails_and_is_never_rewritten(tmp_path: Path) -> None:
    """FAILURE-MODES 8, 11: doctor --fix reports an invalid file and never rewrites it."""
    paths = local_profile(tmp_path, config="{ gateway: { prot: 1 } }")
    before = paths.config_path.read_bytes()
    result = doctor(make_host(tmp_path, fake_systemd(tmp_path)), paths, fix=True)
    status, message = by_id(result.checks)["config.valid"]
    assert status == "fail"
    assert 'gateway.prot: unknown key (did you mean "port"?)' in message
    assert not result.ok
    assert paths.config_path.read_bytes() == before


def test_fix_tightens_permissions_and_says_so(tmp_path: Path) -> None:
    paths = local_profile(tmp_path)
    paths.config_path.chmod(0o644)
    paths.state_dir.chmod(0o755)
    host = make_host(tmp_path, fake_systemd(tmp_path))
    found = by_id(run_checks(host, paths))["config.permissions"]
    assert found[0] == "warn"
    assert "is 644" in found[1]
    result = doctor(host, paths, fix=True)
    assert stat.S_IMODE(paths.config_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(paths.state_dir.stat().st_mode) == 0o700
    assert f"chmod 600 {paths.config_path} (was 644)" in result.changes[0]
    assert by_id(result.checks)["config.permissions"][0] == "ok"


def test_fix_creates_what_a_fresh_profile_lacks(tmp_path: Path) -> None:
    paths = resolve_paths("fresh", {}, tmp_path)
    host = make_host(tmp_path, fake_systemd(tmp_path))
    before = by_id(run_checks(host, paths))
    assert before["config.valid"][0] == "warn"
    assert before["auth.token"][0] == "warn"
    assert before["state.writable"][0] == "warn"
    result = doctor(host, paths, fix=True)
    after = by_id(result.checks)
    assert after["config.valid"][0] == after["auth.token"][0] == after["state.writable"][0] == "ok"
    assert stat.S_IMODE(paths.token_file.stat().st_mode) == 0o600
    assert 'mode: "local"' in paths.config_path.read_text()
    assert result.changes == [
        f"created {paths.state_dir} (0700)",
        f'created {paths.config_path} with gateway.mode "local" (0600)',
        f"generated a gateway token in {paths.token_file} (0600)",
    ]


def test_stale_lock_is_removed_but_a_held_one_is_never_touched(tmp_path: Path) -> None:
    """FAILURE-MODES 1: a crash leaves a lock file; doctor reports and removes it safely."""
    paths = local_profile(tmp_path)
    host = make_host(tmp_path, fake_systemd(tmp_path))
    lock = GatewayLock.acquire(paths, port=1)
    try:
        status, message = by_id(run_checks(host, paths))["lock.stale"]
        assert status == "ok"
        assert f"pid {os.getpid()}" in message
        result = doctor(host, paths, fix=True)
        assert lock_path(paths).exists()
        assert result.changes == []
    finally:
        lock.release()
    # what a SIGKILLed gateway leaves: the file, and nobody holding it
    lock_path(paths).write_text('{"pid": 999999, "nonce": "x", "configPath": "c", "createdAt": 1}')
    status, message = by_id(run_checks(host, paths))["lock.stale"]
    assert status == "warn"
    assert "leftover lock file" in message
    result = doctor(host, paths, fix=True)
    assert not lock_path(paths).exists()
    assert result.changes == [f"removed leftover lock file {lock_path(paths)}"]


def test_lock_removal_refuses_when_a_gateway_takes_it_meanwhile(tmp_path: Path) -> None:
    from gateway.service.checks_files import remove_leftover_lock
    from gateway.service.errors import ServiceError

    path = tmp_path / "gateway.x.lock"
    path.write_text("{}")
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(ServiceError, match="now held by a running gateway"):
            remove_leftover_lock(path)
        assert path.exists()
    finally:
        os.close(fd)


def test_unit_drift_is_found_and_fixed(tmp_path: Path) -> None:
    """FAILURE-MODES 32: after an upgrade the installed unit (version, entrypoint) differs
    from the current template; doctor says so and --fix rewrites it, keeping the options."""
    paths = local_profile(tmp_path)
    runner = fake_systemd(tmp_path)
    host = make_host(tmp_path, runner)
    result = control.install(host, paths, options=InstallOptions(port=19555))
    unit = result.identity.path
    unit.write_text(unit.read_text().replace("SERVICE_VERSION=0.1.0", "SERVICE_VERSION=0.0.9"))
    status, message = by_id(run_checks(host, paths))["service.drift"]
    assert status == "warn"
    assert "differs from the current template" in message
    runner.history.clear()
    fixed = doctor(host, paths, fix=True)
    assert "SERVICE_VERSION=0.1.0" in unit.read_text()
    assert "--port 19555" in unit.read_text()  # the install options survive the rewrite
    assert any(change.startswith(f"rewrote {unit}") for change in fixed.changes)
    assert [
        "systemctl",
        "--user",
        "restart",
        "smart-agent-neo-gateway.service",
    ] in runner.commands()
    assert by_id(fixed.checks)["service.drift"][0] == "ok"


def test_lingering_off_is_fixable(tmp_path: Path) -> None:
    paths = local_profile(tmp_path)
    runner = fake_systemd(tmp_path, linger="no")
    host = make_host(tmp_path, runner)
    control.install(host, paths)
    assert by_id(run_checks(host, paths))["service.linger"][0] == "warn"
    result = doctor(host, paths, fix=True)
    assert ["loginctl", "enable-linger", "alice"] in runner.commands()
    assert "enabled lingering for alice" in result.changes
    assert by_id(result.checks)["service.linger"][0] == "ok"


def test_port_held_by_another_process_fails_and_nothing_is_killed(tmp_path: Path) -> None:
    """FAILURE-MODES 2(c): an unrelated listener is reported, never killed."""
    paths = local_profile(tmp_path)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        host = make_host(
            tmp_path, fake_systemd(tmp_path), env={"SMART_AGENT_NEO_GATEWAY_PORT": str(port)}
        )
        result = doctor(host, paths, fix=True)
        status, message = by_id(result.checks)["port.conflict"]
        assert status == "fail"
        assert f"port {port} is held by pid {os.getpid()}" in message
        assert "never kills" in message
        assert not result.ok


def test_duplicate_services_and_colliding_profiles(tmp_path: Path) -> None:
    """FAILURE-MODES 7 and 33: two units for one profile fail; colliding profiles warn."""
    paths = local_profile(tmp_path)
    local_profile(tmp_path, "rescue")  # no port of its own: 18789 like the default
    runner = fake_systemd(tmp_path)
    host = make_host(tmp_path, runner)
    control.install(host, paths)
    system_dir = tmp_path / "etc" / "systemd" / "system"
    system_dir.mkdir(parents=True)
    user_unit = tmp_path / ".config" / "systemd" / "user" / "smart-agent-neo-gateway.service"
    (system_dir / "smart-agent-neo-gateway-copy.service").write_text(user_unit.read_text())
    (system_dir / "openclaw-gateway.service").write_text(
        "[Service]\nExecStart=/usr/bin/openclaw gateway\n"
    )
    checks = by_id(run_checks(host, paths))
    status, message = checks["services.duplicate"]
    assert status == "fail"
    assert "profile default has 2 services" in message
    status, message = checks["profiles.ports"]
    assert status == "warn"
    assert "profiles default and rescue both use port 18789" in message
    (system_dir / "smart-agent-neo-gateway-copy.service").unlink()
    status, message = by_id(run_checks(host, paths))["services.duplicate"]
    assert status == "warn"
    assert "openclaw-gateway.service" in message


def test_cli_doctor_json_and_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = local_profile(tmp_path)
    paths.config_path.chmod(0o640)
    host = make_host(
        tmp_path, fake_systemd(tmp_path), env={"SMART_AGENT_NEO_GATEWAY_PORT": str(free_port())}
    )
    assert main(["doctor", "--json"], host=host) == 0
    data = json.loads(capsys.readouterr().out)
    check = next(c for c in data["checks"] if c["id"] == "config.permissions")
    assert check == {
        "id": "config.permissions",
        "status": "warn",
        "message": f"readable by others: {paths.config_path} is 640",
        "fixable": True,
    }
    assert main(["doctor", "--fix"], host=host) == 0
    out = capsys.readouterr().out
    assert "Changed:" in out
    assert f"chmod 600 {paths.config_path} (was 640)" in out
    paths.config_path.write_text("{ nope")
    assert main(["doctor"], host=host) == 1


def test_unconfigured_service_needs_no_config(tmp_path: Path) -> None:
    paths = resolve_paths(None, {}, tmp_path)
    host = make_host(tmp_path, fake_systemd(tmp_path))
    # as `gateway install` does: the exported port is pinned in the unit
    control.install(host, paths, options=control.install_options(host, None, True))
    status, message = by_id(run_checks(host, paths))["config.valid"]
    assert status == "ok"
    assert "embedded defaults" in message


def test_channel_config_warnings(tmp_path: Path) -> None:
    """CHANNELS 1.1: two accounts and no defaultAccount; a tokenFile that cannot be used;
    requireMention:false under privacy mode. Warnings only: the config is the user's."""
    config = json.dumps(
        {
            "gateway": {"mode": "local"},
            "channels": {
                "telegram": {
                    "groups": {"-100": {"requireMention": False}},
                    "accounts": {
                        "alpha": {"botToken": "1:a"},
                        "beta": {"tokenFile": str(tmp_path / "missing.token")},
                    },
                }
            },
        }
    )
    paths = local_profile(tmp_path, config=config)
    host = make_host(tmp_path, fake_systemd(tmp_path))
    status, message = by_id(doctor(host, paths).checks)["channels.config"]
    assert status == "warn"
    assert 'channels.telegram: 2 accounts and no defaultAccount; "alpha"' in message
    assert (
        f"channels.telegram.accounts.beta.tokenFile: {tmp_path / 'missing.token'} does not exist"
        in message
    )
    assert "channels.telegram.accounts.alpha.groups: requireMention is false" in message
    assert "1:a" not in message


def test_fix_strips_a_bot_endpoint_from_the_telegram_api_root(tmp_path: Path) -> None:
    """CHANNELS 1.1 [ref]: an apiBaseUrl/apiRoot that ends in /bot<TOKEN> is wrong; doctor
    warns (without the token) and --fix strips the suffix, leaving the rest of the file --
    comments included -- as it was."""
    token = "123456:AAsecretTOKENvalue"
    config = (
        "{\n  // my gateway\n  gateway: { mode: 'local' },\n  channels: { telegram: {\n"
        f'    botToken: "{token}",\n'
        f'    apiBaseUrl: "https://api.telegram.org/bot{token}",  // pasted from a tutorial\n'
        f'    accounts: {{ default: {{}}, ops: {{ botToken: "9:x", apiRoot: "http://127.0.0.1:9/bot9:x/" }} }},\n'
        "  } },\n}\n"
    )
    paths = local_profile(tmp_path, config=config)
    host = make_host(tmp_path, fake_systemd(tmp_path))
    checks = run_checks(host, paths)
    status, message = by_id(checks)["channels.config"]
    assert status == "warn"
    assert "channels.telegram.apiBaseUrl points at a full bot endpoint" in message
    assert "channels.telegram.accounts.ops.apiRoot points at a full bot endpoint" in message
    assert token not in message
    assert by_id(checks)["config.valid"][0] == "ok"  # the gateway starts; that account fails
    result = doctor(host, paths, fix=True)
    assert any("removed the trailing /bot<TOKEN>" in c for c in result.changes), result.changes
    assert all(token not in c for c in result.changes)
    text = paths.config_path.read_text()
    assert '"https://api.telegram.org",  // pasted from a tutorial' in text
    assert 'apiRoot: "http://127.0.0.1:9"' in text
    assert "// my gateway" in text
    assert f'botToken: "{token}"' in text
    status, _ = by_id(result.checks)["channels.config"]
    assert status == "ok"
