"""OPERATIONS.md as a user meets it: the flags it names parse, bad values are its one-line
errors (exit 1), exit codes by situation, secret precedence, ``config unset/file/schema``,
``doctor --generate-gateway-token``, the tailnet bind and the keys of C.2 that are accepted
at their defaults. In-process ``main`` where nothing binds; a subprocess where a gateway runs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest
import trio

from gateway.auth import PendingToken
from gateway.cli import run
from gateway.cli.main import build_parser, main
from gateway.config.load import Loaded, parse
from gateway.config.paths import resolve_paths
from gateway.config.settings import Overrides, resolve
from gateway.config.target import resolve_target
from gateway.errors import ConfigError, PortInUseError, StartupError
from gateway.lock import LockHeldError
from gateway.netifs import tailnet_address
from gateway.service import control
from gateway.service.checks import Context
from gateway.service.checks_service import check_service

from .conftest import TOKEN, StartGateway, make_settings
from .servicefakes import fake_systemd, make_host
from .test_cli_process import run_cli


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    for key in list(os.environ):
        if key.startswith("SMART_AGENT_NEO_") or key in ("INVOCATION_ID", "XPC_SERVICE_NAME"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("NO_COLOR", "1")
    return tmp_path


def loaded(text: str) -> Loaded:
    config, _ = parse(text, {})
    return Loaded(config, Path("/cfg/smart-agent-neo.json"), True)


# -- F.1 / B.2: the run flags and their errors ---------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--bind", "wifi"],
            'Invalid --bind (use "loopback", "lan", "tailnet", "auto", or "custom")',
        ),
        (
            ["--bind", "0.0.0.0"],
            'Invalid --bind (use "loopback", "lan", "tailnet", "auto", or "custom")',
        ),
        (["--auth", "magic"], 'Invalid --auth (use "token", "password", or "none")'),
        (
            ["--port", "abc"],
            'Invalid port: expected an integer 1-65535 (or 0: any free port), got "abc"',
        ),
        (["--port", "70000"], "Invalid port: expected an integer 1-65535"),
        (["--ws-log", "loud"], 'Invalid --ws-log (use "auto", "full", "compact")'),
        (["--tailscale", "on"], 'Invalid --tailscale (use "off", "serve", or "funnel")'),
        (
            ["--tailscale", "funnel"],
            "tailscale funnel requires gateway auth mode=password (set gateway.auth.password or "
            "SMART_AGENT_NEO_GATEWAY_PASSWORD)",
        ),
        (
            ["--tailscale", "serve", "--bind", "lan", "--token", "t" * 24],
            "tailscale serve/funnel requires gateway bind=loopback (127.0.0.1)",
        ),
        (["--tailscale", "serve"], "tailscale serve: not supported yet (Tailscale exposure)"),
        (["--password-file", "/nonexistent/pw"], "cannot read --password-file /nonexistent/pw"),
    ],
)
def test_bad_run_flags_are_one_line_and_exit_1(
    home: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    """argparse would say "invalid choice" and exit 2; the runbooks' texts are the contract."""
    assert main(["gateway", "--allow-unconfigured", *flags]) == 1
    err = capsys.readouterr().err
    assert f"Gateway failed to start: {message}" in err
    assert "Traceback" not in err


def test_every_run_flag_of_the_spec_parses() -> None:
    parser = build_parser()
    args = parser.parse_args(
        [
            "--log-level",
            "debug",
            "gateway",
            "--port",
            "18789",
            "--bind",
            "loopback",
            "--token",
            "t",
            "--auth",
            "token",
            "--password",
            "p",
            "--password-file",
            "/x",
            "--tailscale",
            "off",
            "--tailscale-reset-on-exit",
            "--allow-unconfigured",
            "--dev",
            "--force",
            "--verbose",
            "--ws-log",
            "compact",
            "--compact",
        ]
    )
    assert (args.gateway_dev, args.ws_log, args.global_log_level) == (True, "compact", "debug")
    for argv in (
        [
            "gateway",
            "status",
            "--deep",
            "--json",
            "--no-probe",
            "--timeout",
            "500",
            "--url",
            "ws://x",
        ],
        ["gateway", "status", "--require-rpc", "--token", "t", "--password", "p"],
        ["daemon", "status", "--json"],
        ["daemon", "install", "--force", "--port", "19001"],
        ["daemon", "stop", "--json"],
        ["gateway", "call", "health", "--params", "{}", "--port", "19001", "--expect-final"],
        ["health", "--json", "--timeout", "10000", "--verbose"],
        ["health", "--debug"],
        ["status", "--all", "--deep", "--usage", "--json", "--timeout", "10000", "--verbose"],
        ["logs", "--follow", "--limit", "5", "--max-bytes", "100", "--interval", "500", "--json"],
        ["logs", "--plain", "--no-color", "--utc", "--timeout", "30000"],
        ["doctor", "--repair", "--yes", "--non-interactive", "--force", "--deep"],
        ["doctor", "--generate-gateway-token", "--json"],
        ["channels", "status", "--probe", "--timeout", "5000", "--json"],
        ["config", "unset", "gateway.port"],
        ["config", "file"],
        ["config", "schema"],
        ["setup", "--workspace", "/tmp/ws"],
        ["dashboard", "--no-open"],
    ):
        parser.parse_args(argv)


def test_gateway_dev_is_the_dev_profile(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`gateway --dev` = `--dev gateway`: the dev profile's state dir and its port."""
    assert main(["gateway", "--dev", "--bind", "nope"]) == 1
    assert main(["--profile", "x", "gateway", "--dev"]) == 1
    assert "Cannot combine --dev with --profile" in capsys.readouterr().err


def test_password_file_is_read_and_beats_the_config(home: Path) -> None:
    secret = home / "pw"
    secret.write_text("from-file\n")
    args = build_parser().parse_args(
        ["gateway", "--allow-unconfigured", "--auth", "password", "--password-file", str(secret)]
    )
    paths = resolve_paths(None, {}, home)
    settings = run.load_settings(args, paths, PendingToken(paths.token_file))
    assert (settings.auth.mode, settings.auth.password, settings.auth.source) == (
        "password",
        "from-file",
        "flag",
    )


def test_invalid_config_prints_one_line_per_key_path(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """C.3: `Invalid config at <path>:` then `- <dot.path>: <message>` lines, a doctor hint,
    exit 78."""
    path = home / ".smart-agent-neo" / "smart-agent-neo.json"
    path.parent.mkdir()
    path.write_text('{gateway: {mode: "local", port: "abc", prot: 1}}')
    assert main(["gateway"]) == 78
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"Gateway failed to start: Invalid config at {path}:"
    assert '- gateway.port: expected an integer 1-65535, got "abc"' in err
    assert '- gateway.prot: unknown key (did you mean "port"?)' in err
    assert any("smart-agent-neo doctor" in line for line in err)


# -- D.4 / J: exit codes ------------------------------------------------------------------------


def test_exit_codes_are_1_except_invalid_config_unless_supervised(tmp_path: Path) -> None:
    lock = LockHeldError(None, tmp_path / "x.lock")
    busy = PortInUseError("another gateway instance is already listening on ws://127.0.0.1:1")
    invalid = ConfigError(["gateway.port: bad"], source="/c.json")
    assert [run.exit_code(e, {}) for e in (lock, busy, invalid)] == [1, 1, 78]
    for env in (
        {"SMART_AGENT_NEO_SERVICE_MARKER": "smart-agent-neo"},
        {"INVOCATION_ID": "abc"},
        {"XPC_SERVICE_NAME": "ai.smartagentneo.gateway"},
    ):
        assert [run.exit_code(e, env) for e in (lock, busy, invalid)] == [78, 75, 78], env
    # a terminal on macOS has XPC_SERVICE_NAME=0: not a launchd job
    assert run.exit_code(lock, {"XPC_SERVICE_NAME": "0"}) == 1


# -- B.1: secrets --------------------------------------------------------------------------------


def test_config_token_beats_the_env_for_the_gateway_and_the_cli(tmp_path: Path) -> None:
    paths = resolve_paths(None, {}, tmp_path)
    paths.state_dir.mkdir()
    paths.config_path.write_text('{gateway: {auth: {token: "from-config"}}}')
    env = {"SMART_AGENT_NEO_GATEWAY_TOKEN": "from-env"}
    settings = resolve(
        loaded('{gateway: {auth: {token: "from-config"}}}'), paths, Overrides(), env, lambda: "g"
    )
    assert (settings.auth.token, settings.auth.source) == ("from-config", "config")
    target = resolve_target(paths, url=None, token=None, password=None, env=env)
    assert target.token == "from-config"  # the CLI presents what the gateway expects
    assert resolve_target(paths, url=None, token="flag", password=None, env=env).token == "flag"


# -- B.3: bind modes -----------------------------------------------------------------------------


def test_tailnet_bind_uses_the_tailscale_address_else_loopback(tmp_path: Path) -> None:
    paths = resolve_paths(None, {}, tmp_path)
    text = '{gateway: {bind: "tailnet", auth: {token: "t"}, controlUi: {enabled: false}}}'
    on = resolve(loaded(text), paths, Overrides(), {}, lambda: "g", lambda: "100.101.102.103")
    assert (on.bind, on.host) == ("tailnet", "100.101.102.103")
    off = resolve(loaded(text), paths, Overrides(), {}, lambda: "g", lambda: None)
    assert off.host == "127.0.0.1"
    assert tailnet_address(["10.0.0.2", "100.64.0.7", "100.65.0.1"]) == "100.64.0.7"
    assert tailnet_address(["10.0.0.2", "100.128.0.1"]) is None  # outside 100.64.0.0/10
    # a tailnet address is not loopback: it needs a secret the user chose
    with pytest.raises(StartupError, match=r"refusing to bind gateway to 100\.101\.102\.103"):
        resolve(
            loaded('{gateway: {bind: "tailnet"}}'),
            paths,
            Overrides(),
            {},
            lambda: "g",
            lambda: "100.101.102.103",
        )


# -- C.2: keys accepted at their defaults ---------------------------------------------------------


def test_tailscale_and_tls_defaults_are_accepted_and_the_rest_refused(tmp_path: Path) -> None:
    paths = resolve_paths(None, {}, tmp_path)
    defaults = '{gateway: {tailscale: {mode: "off", resetOnExit: false}, tls: {enabled: false}}}'
    resolve(loaded(defaults), paths, Overrides(), {}, lambda: "g")
    with pytest.raises(StartupError, match=r"^gateway.tls.enabled: not supported yet \(TLS\)"):
        resolve(loaded("{gateway: {tls: {enabled: true}}}"), paths, Overrides(), {}, lambda: "g")
    with pytest.raises(StartupError, match="requires gateway bind=loopback"):
        resolve(
            loaded('{gateway: {tailscale: {mode: "serve"}, bind: "lan", auth: {token: "t"}}}'),
            paths,
            Overrides(),
            {},
            lambda: "g",
        )
    with pytest.raises(ConfigError, match=r'gateway\.tailscale\.mode: expected one of "off"'):
        parse('{gateway: {tailscale: {mode: "on"}}}', {})


# -- C.3: config unset / file / schema ------------------------------------------------------------


def test_config_unset_file_and_schema(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = home / ".smart-agent-neo" / "smart-agent-neo.json"
    assert main(["config", "file"]) == 0
    assert capsys.readouterr().out.strip() == str(path)
    assert main(["config", "set", "gateway.port", "19000"]) == 0
    assert main(["config", "set", "gateway.mode", "local"]) == 0
    assert main(["config", "unset", "gateway.port"]) == 0
    assert json.loads(path.read_text()) == {"gateway": {"mode": "local"}}
    capsys.readouterr()
    assert main(["config", "unset", "gateway.port"]) == 0  # not set: nothing to remove
    assert "not set" in capsys.readouterr().out
    assert main(["config", "unset", "gateway.mode"]) == 0
    assert json.loads(path.read_text()) == {}  # the emptied object goes too
    capsys.readouterr()
    assert main(["config", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    validator = jsonschema.Draft202012Validator(schema)
    validator.validate({"gateway": {"port": 18789, "reload": {"mode": "hybrid"}}})
    assert not validator.is_valid({"gateway": {"prot": 1}})  # strict, as start-up
    assert not validator.is_valid({"gateway": {"bind": "wifi"}})


# -- B.1 / F.5: doctor --generate-gateway-token ---------------------------------------------------


def test_doctor_generate_gateway_token_creates_only_the_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = resolve_paths(None, {}, tmp_path)
    paths.state_dir.mkdir(mode=0o700)
    paths.config_path.write_text('{gateway: {mode: "local"}}')
    paths.config_path.chmod(0o640)  # fixable too, but not by this flag
    host = make_host(tmp_path, fake_systemd(tmp_path))
    main(["doctor", "--generate-gateway-token"], host=host)
    out = capsys.readouterr().out
    assert f"generated a gateway token in {paths.token_file} (0600)" in out
    assert paths.token_file.stat().st_mode & 0o777 == 0o600
    assert paths.config_path.stat().st_mode & 0o777 == 0o640


# -- E.5: the service's pinned port against the config -------------------------------------------


def test_doctor_reports_a_service_port_the_config_moved_away_from(tmp_path: Path) -> None:
    paths = resolve_paths(None, {}, tmp_path)
    paths.state_dir.mkdir(mode=0o700)
    paths.config_path.write_text('{gateway: {mode: "local", port: 19100}}')
    host = make_host(tmp_path, fake_systemd(tmp_path))
    control.install(host, paths, options=control.install_options(host, None, False))
    assert "Environment=SMART_AGENT_NEO_GATEWAY_PORT=19100" in paths_unit(tmp_path)
    assert check_service(Context.build(host, paths)).status == "ok"
    paths.config_path.write_text('{gateway: {mode: "local", port: 19200}}')
    check = check_service(Context.build(host, paths))
    assert check.status == "warn"
    assert "Gateway service port does not match current gateway config. (19100 -> 19200)" in (
        check.message
    )
    assert check.fix is not None
    check.fix()
    assert "Environment=SMART_AGENT_NEO_GATEWAY_PORT=19200" in paths_unit(tmp_path)


def paths_unit(home: Path) -> str:
    return (home / ".config" / "systemd" / "user" / "smart-agent-neo-gateway.service").read_text()


# -- F.7: gateway call --port ---------------------------------------------------------------------


async def test_gateway_call_port_is_a_loopback_shortcut(
    tmp_path: Path, start_gateway: StartGateway
) -> None:
    running = await start_gateway(make_settings(tmp_path / "state"))
    port = str(running.port)

    def call(*extra: str) -> tuple[int, str, str]:
        result = run_cli(
            tmp_path, "gateway", "call", "status", "--port", port, "--token", TOKEN, *extra
        )
        return result.returncode, result.stdout, result.stderr

    with trio.fail_after(60):
        code, out, err = await trio.to_thread.run_sync(call)
        assert code == 0, err
        assert json.loads(out)["gateway"]["port"] == running.port
        code, _, err = await trio.to_thread.run_sync(call, "--url", f"ws://127.0.0.1:{port}")
    assert code == 1
    assert "--port cannot be combined with --url" in err


# -- C.2 / H.1 / H.3: the logging keys of the reference --------------------------------------------


def test_logging_keys_of_c2_load_and_act(tmp_path: Path) -> None:
    """consoleStyle json prints the file's line, compact an unstyled line; redactPatterns add
    masks (first group, else the whole match); redactSensitive is accepted (always on)."""
    import io
    import logging as stdlog

    import attrs
    from rich.console import Console

    from gateway.logs.pipeline import LogPipeline

    text = (
        '{logging: {consoleStyle: "json", redactSensitive: "off", '
        'redactPatterns: ["internal-id-(\\\\d{6})", "/PIN \\\\d{4}/"]}}'
    )
    config, _ = parse(text, {})
    buffer = io.StringIO()
    console = Console(file=buffer, width=300, force_terminal=True)
    settings = attrs.evolve(make_settings(tmp_path), config=config)
    pipeline = LogPipeline(settings, console=console, file=False)
    record = stdlog.LogRecord(
        "gateway.ws", stdlog.WARNING, __file__, 1, "saw internal-id-123456 and PIN 1234", (), None
    )
    pipeline.emit(record)
    line = json.loads(buffer.getvalue())
    assert line["message"] == "saw internal-id-*** and ***"
    assert (line["level"], line["subsystem"]) == ("warn", "gateway/ws")
    compact, _ = parse('{logging: {consoleStyle: "compact"}}', {})
    buffer.truncate(0)
    buffer.seek(0)
    plain = LogPipeline(attrs.evolve(settings, config=compact), console=console, file=False)
    plain.emit(record)
    assert "\x1b[" not in buffer.getvalue()  # no styling even on a terminal
    assert "[ws] saw internal-id-123456" in buffer.getvalue()
    with pytest.raises(ConfigError, match=r"logging\.consoleStyle: expected one of"):
        parse('{logging: {consoleStyle: "fancy"}}', {})
    paths = resolve_paths(None, {}, tmp_path)
    with pytest.raises(StartupError, match=r"^logging\.redactPatterns\[0\]: invalid regular"):
        resolve(loaded('{logging: {redactPatterns: ["(unclosed"]}}'), paths, Overrides(), {}, str)
