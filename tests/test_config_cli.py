"""``setup`` and ``config get|set|validate``: the same validation as start-up, atomic writes
that keep modes and symlinks, and an untouched file whenever the change is refused
(FAILURE-MODES 9, 11)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from gateway.cli.main import main


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    for key in list(os.environ):
        if key.startswith("SMART_AGENT_NEO_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("NO_COLOR", "1")
    return tmp_path


def config_path(home: Path) -> Path:
    return home / ".smart-agent-neo" / "smart-agent-neo.json"


def test_setup_creates_a_local_config_and_keeps_an_existing_one(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["setup"]) == 0
    workspace = home / ".smart-agent-neo" / "workspace"
    assert json.loads(config_path(home).read_text()) == {
        "gateway": {"mode": "local"},
        "agents": {"defaults": {"workspace": str(workspace)}},
        "session": {"dmScope": "per-channel-peer"},  # CHANNELS 5.1: one context per sender
    }
    assert workspace.is_dir()
    assert "Config ready" in capsys.readouterr().out
    config_path(home).write_text('{ gateway: { mode: "local", port: 19555 } }')
    assert main(["setup"]) == 0
    assert "Config updated" in capsys.readouterr().out  # the missing workspace and dmScope
    assert json.loads(config_path(home).read_text())["gateway"]["port"] == 19555
    assert main(["setup"]) == 0
    assert "already set up" in capsys.readouterr().out


def test_set_validates_and_writes(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["setup"]) == 0
    assert main(["config", "set", "gateway.port", "19001"]) == 0
    assert main(["config", "set", "gateway.reload.mode", "hot"]) == 0  # bare word: a string
    data = json.loads(config_path(home).read_text())
    assert data["gateway"]["port"] == 19001
    assert data["gateway"]["reload"] == {"mode": "hot"}
    capsys.readouterr()
    assert main(["config", "get", "gateway.port"]) == 0
    assert capsys.readouterr().out.strip() == "19001"
    assert main(["config", "get", "gateway.ws.tickIntervalMs"]) == 0  # a default
    assert capsys.readouterr().out.strip() == "30000"


def test_get_renders_maps_of_objects(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``models.providers`` is a map of objects: shown as JSON with its defaults (it was a
    traceback: "Object of type Provider is not JSON serializable")."""
    config_path(home).parent.mkdir(parents=True)
    config_path(home).write_text(
        '{gateway: {mode: "local"}, models: {providers: {fake: {baseUrl: "http://127.0.0.1:9/v1",'
        ' api: "openai-completions", models: [{id: "m", name: "M"}]}}}}'
    )
    assert main(["config", "get", "models.providers"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["fake"]["baseUrl"] == "http://127.0.0.1:9/v1"
    assert shown["fake"]["models"][0]["id"] == "m"
    assert "maxRetries" in shown["fake"]  # a default filled in


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("gateway.port", "abc", 'gateway.port: expected an integer 1-65535, got "abc"'),
        ("gateway.prot", "1", 'gateway.prot: unknown key (did you mean "port"?)'),
        ("gateway.bind", "wifi", 'gateway.bind: expected one of "loopback"'),
        ("gateway.mode.x", "1", "gateway.mode: is not an object"),
    ],
)
def test_refused_changes_leave_the_file_alone(
    home: Path, capsys: pytest.CaptureFixture[str], key: str, value: str, message: str
) -> None:
    assert main(["setup"]) == 0
    before = config_path(home).read_bytes()
    code = main(["config", "set", key, value])
    assert code != 0
    assert message in capsys.readouterr().err
    assert config_path(home).read_bytes() == before


def test_a_broken_file_is_never_overwritten(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = config_path(home)
    path.parent.mkdir(parents=True)
    path.write_text('{ gateway: { mode: "local", ')
    assert main(["config", "set", "gateway.port", "19001"]) == 78
    assert "syntax error" in capsys.readouterr().err
    assert path.read_text() == '{ gateway: { mode: "local", '


def test_secrets_make_the_file_0600_and_other_modes_are_kept(home: Path) -> None:
    assert main(["setup"]) == 0
    path = config_path(home)
    os.chmod(path, 0o640)
    assert main(["config", "set", "gateway.port", "19001"]) == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert main(["config", "set", "gateway.auth.token", "sekret-token-value"]) == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_symlinked_config_stays_a_symlink(home: Path) -> None:
    real = home / "dotfiles" / "gateway.json"
    real.parent.mkdir()
    real.write_text('{"gateway": {"mode": "local"}}')
    link = config_path(home)
    link.parent.mkdir(parents=True)
    link.symlink_to(real)
    assert main(["config", "set", "gateway.port", "19002"]) == 0
    assert link.is_symlink()
    assert json.loads(real.read_text())["gateway"]["port"] == 19002


def test_validate(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "validate"]) == 0
    assert "embedded defaults" in capsys.readouterr().out
    path = config_path(home)
    path.parent.mkdir(parents=True)
    path.write_text('{ gateway: { port: 0, bind: "x" } }')
    assert main(["config", "validate", "--json"]) == 78
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False
    assert report["problems"] == [
        "gateway.port: expected an integer 1-65535, got 0",
        'gateway.bind: expected one of "loopback", "lan", "tailnet", "auto", "custom", got "x"',
    ]
    assert main(["config", "validate"]) == 78
    err = capsys.readouterr().err
    assert "- gateway.port: expected an integer 1-65535, got 0" in err


def test_concurrent_writers_lose_no_update(home: Path) -> None:
    """FAILURE-MODES 10: several ``config set`` at once (CLI, scripts) -- every change lands,
    and the file is one valid document, never two concatenated."""
    import threading

    from gateway.config.edit import set_values

    path = config_path(home)
    assert main(["setup"]) == 0
    keys = [f"channels.telegram.accounts.a{i}.botToken" for i in range(8)]
    errors: list[BaseException] = []

    def writer(key: str) -> None:
        try:
            for n in range(5):
                set_values(path, {key: f"{n}:token-{key[-14:]}"}, {})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(key,)) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    accounts = json.loads(path.read_text())["channels"]["telegram"]["accounts"]
    assert {f"a{i}" for i in range(8)} <= set(accounts)
    assert all(a["botToken"].startswith("4:") for a in accounts.values())


def test_a_file_saved_meanwhile_is_not_overwritten(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FAILURE-MODES 10: an editor that saves while ``config set`` validates wins; the CLI
    writes nothing and says to run it again."""
    from gateway.config import edit
    from gateway.errors import GatewayError

    path = config_path(home)
    assert main(["setup"]) == 0
    real_parse = edit.parse  # type: ignore[attr-defined]

    def parse_while_someone_saves(*args: object, **kwargs: object) -> object:
        path.write_text('{ gateway: { mode: "local", port: 19777 } }')
        return real_parse(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(edit, "parse", parse_while_someone_saves)
    with pytest.raises(GatewayError, match="changed while this command was updating it"):
        edit.set_values(path, {"gateway.port": 19001}, {})
    assert "19777" in path.read_text()


def test_read_only_commands_never_write(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """FAILURE-MODES 11: commands that only read -- config get/validate, status, doctor
    without --fix -- leave a valid and an invalid file byte for byte (and mtime) alone."""
    path = config_path(home)
    path.parent.mkdir(parents=True)
    for text in (
        '// mine\n{ gateway: { mode: "local", port: 19555 } }',
        "{ gateway: { prot: 1 } }",
    ):
        path.write_text(text)
        os.utime(path, (1_000_000_000, 1_000_000_000))
        for argv in (
            ["config", "get", "gateway.port"],
            ["config", "validate"],
            ["config", "validate", "--json"],
            ["status"],
            ["doctor"],
        ):
            main(argv)
            assert path.read_text() == text, argv
            assert path.stat().st_mtime == 1_000_000_000, argv
        capsys.readouterr()


def test_setup_generates_a_token_unless_a_secret_is_configured(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """OPERATIONS.md B.1: setup generates a token even for loopback -- into the 0600 token
    file the gateway reads, never into the config and never printed."""
    token_file = home / ".smart-agent-neo" / "gateway.token"
    assert main(["setup"]) == 0
    out = capsys.readouterr().out
    token = token_file.read_text().strip()
    assert len(token) >= 32
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert f"Gateway token: generated, stored 0600 in {token_file}" in out
    assert token not in out
    assert "token" not in json.loads(config_path(home).read_text()).get("gateway", {})
    assert main(["setup"]) == 0  # idempotent: the same token
    assert token_file.read_text().strip() == token
    assert "already generated" in capsys.readouterr().out
    other = home / "other"
    monkeypatch.setenv("SMART_AGENT_NEO_STATE_DIR", str(other))
    monkeypatch.setenv("SMART_AGENT_NEO_GATEWAY_TOKEN", "from-env")
    assert main(["setup"]) == 0
    assert not (other / "gateway.token").exists()
