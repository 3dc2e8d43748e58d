"""Rendering units and plists from units/ (pure), golden files, and systemd-analyze verify."""

from __future__ import annotations

import os
import plistlib
import shutil
import subprocess
from pathlib import Path

import pytest

from gateway.config.paths import resolve_paths
from gateway.service.errors import ServiceError
from gateway.service.identity import Identity, identify, launchd_label, systemd_unit_name
from gateway.service.installed import parse_launchd, parse_systemd
from gateway.service.render import exec_arg, fill, render, render_launchd, render_systemd
from gateway.service.spec import InstallOptions, ServiceSpec, build_spec, stop_timeout_sec

from .goldens import assert_golden

HOME = Path("/home/alice")
PROGRAM = ("/home/alice/.venv/bin/smart-agent-neo",)


def spec(
    profile: str | None = None,
    *,
    manager: str = "systemd",
    scope: str = "user",
    home: Path = HOME,
    program: tuple[str, ...] = PROGRAM,
    options: InstallOptions | None = None,
    env: dict[str, str] | None = None,
) -> ServiceSpec:
    paths = resolve_paths(profile, env or {}, home)
    identity = identify(manager, scope, paths.profile, {}, home, Path("/etc/systemd/system"))  # type: ignore[arg-type]
    return build_spec(
        identity,
        paths,
        program=program,
        home=str(home),
        user="alice",
        version="0.1.0",
        options=options or InstallOptions(),
        shutdown_timeout_ms=5_000,
        port=(options.port if options and options.port else None) or 18789,
    )


def test_systemd_user_unit_golden() -> None:
    assert_golden("systemd-user.service", render(spec()))


def test_systemd_unit_reads_as_the_runbook_writes_it() -> None:
    """OPERATIONS.md E.1/E.2: plain ``Environment=KEY=value`` lines (quoted only when a
    value needs it), the resolved port, the markers, and the runbooks' KillMode."""
    lines = render(spec()).splitlines()
    for line in (
        "Environment=HOME=/home/alice",
        "Environment=SMART_AGENT_NEO_GATEWAY_PORT=18789",
        "Environment=SMART_AGENT_NEO_SYSTEMD_UNIT=smart-agent-neo-gateway.service",
        "Environment=SMART_AGENT_NEO_SERVICE_MARKER=smart-agent-neo",
        "Environment=SMART_AGENT_NEO_SERVICE_KIND=gateway",
        "Environment=SMART_AGENT_NEO_SERVICE_VERSION=0.1.0",
        "Description=Smart Agent Neo Gateway (v0.1.0)",
        "After=network-online.target",
        "Wants=network-online.target",
        "Restart=always",
        "RestartSec=5",
        "KillMode=process",
        "WorkingDirectory=/home/alice",
        "WantedBy=default.target",
    ):
        assert line in lines, line
    assert not any("TOKEN" in line for line in lines)


def test_systemd_profile_unit_pins_port_and_flags_golden() -> None:
    options = InstallOptions(port=19789, allow_unconfigured=True)
    assert_golden("systemd-rescue.service", render(spec("rescue", options=options)))


def test_systemd_system_unit_golden() -> None:
    unit = render(spec(scope="system"))
    assert_golden("systemd-system.service", unit)
    assert "User=alice" in unit
    assert "WantedBy=multi-user.target" in unit


def test_launchd_plist_golden_and_parses() -> None:
    plist = render(spec("work", manager="launchd", home=Path("/Users/alice")))
    assert_golden("launchd-work.plist", plist)
    data = plistlib.loads(plist.encode())
    assert data["Label"] == "ai.smartagentneo.work"
    assert data["KeepAlive"] is True
    assert data["RunAtLoad"] is True
    assert data["ProgramArguments"][-3:] == ["work", "gateway", "run"]
    assert data["EnvironmentVariables"]["SMART_AGENT_NEO_SERVICE_MARKER"] == "smart-agent-neo"
    assert data["StandardErrorPath"] == "/Users/alice/.smart-agent-neo-work/logs/gateway.err.log"


def test_units_carry_markers_paths_and_no_secret() -> None:
    """FAILURE-MODES 23: no token in unit or plist files, even when one is exported."""
    env = {"SMART_AGENT_NEO_GATEWAY_TOKEN": "s3cret-token-value"}
    for s in (spec(env=env), spec(manager="launchd", env=env)):
        text = render(s)
        assert "s3cret" not in text
        assert "TOKEN" not in text
        assert "SMART_AGENT_NEO_SERVICE_KIND" in text
        assert "SMART_AGENT_NEO_SERVICE_VERSION" in text
        assert "/home/alice/.smart-agent-neo/smart-agent-neo.json" in text


def test_names_per_profile() -> None:
    assert systemd_unit_name(None, {}) == "smart-agent-neo-gateway"
    assert systemd_unit_name("rescue", {}) == "smart-agent-neo-gateway-rescue"
    assert systemd_unit_name(None, {"SMART_AGENT_NEO_SYSTEMD_UNIT": "x.service"}) == "x"
    # an override never renames another profile's unit
    assert (
        systemd_unit_name("b", {"SMART_AGENT_NEO_SYSTEMD_UNIT": "x"}) == "smart-agent-neo-gateway-b"
    )
    assert launchd_label(None, {}) == "ai.smartagentneo.gateway"
    assert launchd_label("dev", {}) == "ai.smartagentneo.dev"
    with pytest.raises(ServiceError, match='profile name "gateway" collides'):
        launchd_label("gateway", {})
    with pytest.raises(ServiceError, match="only supported with systemd"):
        identify("launchd", "system", None, {}, HOME, Path("/etc"))


def test_escaping_of_awkward_paths_round_trips() -> None:
    home = Path("/home/al ice/50%$HOME")
    program = (f"{home}/bin/smart-agent-neo",)
    unit = render(spec("p1", home=home, program=program))
    assert 'ExecStart="/home/al ice/50%%$HOME/bin/smart-agent-neo" --profile p1' in unit
    assert 'Environment="HOME=/home/al ice/50%%$HOME"' in unit
    parsed = parse_systemd(unit)
    assert parsed.program_arguments[0] == program[0]
    assert parsed.environment["HOME"] == str(home)
    assert parsed.config_path == f"{home}/.smart-agent-neo-p1/smart-agent-neo.json"
    assert parsed.profile == "p1"
    plist = render(spec("p1", manager="launchd", home=home, program=program))
    assert parse_launchd(plist).program_arguments[0] == program[0]
    quoted = Path('/home/"q"')
    env_only = render(spec(home=quoted, program=PROGRAM))
    assert parse_systemd(env_only).environment["HOME"] == str(quoted)
    with pytest.raises(ServiceError, match="quote or backslash"):
        render(spec(home=quoted, program=(f"{quoted}/smart-agent-neo",)))


def test_exec_arg_quoting() -> None:
    assert exec_arg("plain") == "plain"
    assert exec_arg("a b") == '"a b"'
    assert exec_arg("100%") == "100%%"
    assert exec_arg("$X") == "$$X"
    assert exec_arg("/opt/$x/bin", executable=True) == "/opt/$x/bin"
    assert exec_arg(";") == '";"'
    with pytest.raises(ServiceError, match="line break"):
        exec_arg("a\nb")


def test_fill_drops_lines_of_empty_blocks_only() -> None:
    assert fill("a\n${x}\n\nb=${y}\n", {"x": "", "y": ""}) == "a\n\nb=\n"


def test_install_options_read_back_from_the_unit() -> None:
    options = InstallOptions(port=19789, allow_unconfigured=True)
    parsed = parse_systemd(render(spec("rescue", options=options)))
    assert parsed.options == options
    assert parsed.pinned_port == 19789
    assert parsed.is_ours
    assert parsed.version == "0.1.0"


def test_stop_timeout_outlasts_the_graceful_cap() -> None:
    assert stop_timeout_sec(5_000) == 30
    assert stop_timeout_sec(600_000) == 610


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here"
)
def test_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """The rendered unit is valid for systemd itself (no warnings at all), also for a home
    with a space, a percent sign and a dollar sign in its path."""
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None
    tmp_path = tmp_path / "al ice 50%$HOME"
    venv_bin = tmp_path / "bin"
    venv_bin.mkdir(parents=True)
    program = venv_bin / "smart-agent-neo"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    for scope, name in (("user", "user"), ("system", "system")):
        unit = render_systemd(spec("verify", scope=scope, home=tmp_path, program=(str(program),)))
        path = tmp_path / name / "smart-agent-neo-gateway-verify.service"
        path.parent.mkdir()
        path.write_text(unit)
        # verify resolves the system manager's paths without a running manager; the user
        # manager needs a runtime dir, which a private empty one satisfies
        runtime_dir = tmp_path / f"run-{name}"
        runtime_dir.mkdir(mode=0o700)
        env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime_dir), "SYSTEMD_LOG_COLOR": "0"}
        args = [analyze, "verify", *(["--user"] if scope == "user" else []), str(path)]
        done = subprocess.run(
            args, capture_output=True, text=True, env=env, timeout=60, check=False
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, output
        ours = [line for line in output.splitlines() if "smart-agent-neo" in line]
        assert ours == [], output


def test_render_picks_the_template_for_the_manager() -> None:
    assert render(spec(manager="launchd")).startswith("<?xml")
    assert "[Service]" in render_systemd(spec())
    assert render_launchd(spec(manager="launchd")).count("<key>Label</key>") == 1


def test_paths_are_the_profiles(tmp_path: Path) -> None:
    s = spec("rescue")
    assert s.identity == Identity(
        "systemd",
        "user",
        "smart-agent-neo-gateway-rescue",
        HOME / ".config/systemd/user/smart-agent-neo-gateway-rescue.service",
    )
    assert dict(s.environment)["SMART_AGENT_NEO_STATE_DIR"] == "/home/alice/.smart-agent-neo-rescue"
    assert s.environment_file == "/home/alice/.smart-agent-neo-rescue/gateway.env"
