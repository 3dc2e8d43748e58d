"""``smart-agent-neo dashboard`` and the dashboard line of the banner (CONTROL-UI.md 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio

from gateway.cli.main import main

from .test_cli_process import gateway_process, run_cli


def _write_config(home: Path, text: str) -> None:
    state = home / ".smart-agent-neo"
    state.mkdir(parents=True, exist_ok=True)
    (state / "smart-agent-neo.json").write_text(text)


@pytest.mark.usefixtures("isolated_env")
def test_prints_the_url_without_a_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_config(tmp_path, '{gateway: {port: 19123, auth: {token: "very-secret-token"}}}')
    assert main(["dashboard", "--no-open"]) == 0
    out = capsys.readouterr().out
    assert "Dashboard: http://127.0.0.1:19123/" in out
    assert "very-secret-token" not in out
    assert main(["dashboard", "--no-open", "--token-link"]) == 0  # stdout is not a terminal
    captured = capsys.readouterr()
    assert "very-secret-token" not in captured.out
    assert "not a terminal" in captured.err


@pytest.mark.usefixtures("isolated_env")
def test_json_base_path_and_disabled(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write_config(tmp_path, '{gateway: {port: 19124, controlUi: {basePath: "/dash/"}}}')
    assert main(["dashboard", "--no-open", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload == {
        "enabled": True,
        "url": "http://127.0.0.1:19124/dash/",
        "basePath": "/dash",
        "source": "local loopback, port from config",
        "running": False,
        "opened": False,
    }
    _write_config(tmp_path, "{gateway: {controlUi: {enabled: false}}}")
    assert main(["dashboard", "--no-open"]) == 1
    assert "The Control UI is turned off" in capsys.readouterr().err
    assert main(["dashboard", "--no-open", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["enabled"] is False


async def test_finds_the_running_gateway_and_the_banner_names_it(tmp_path: Path) -> None:
    async with gateway_process(tmp_path, "gateway", "--allow-unconfigured", "--port", "0") as proc:
        assert f"Dashboard: http://127.0.0.1:{proc.port}/" in proc.banner
        assert "Canvas: http://127.0.0.1:" in proc.banner
        result = await trio.to_thread.run_sync(
            lambda: run_cli(tmp_path, "dashboard", "--no-open", "--json")
        )
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["url"] == f"http://127.0.0.1:{proc.port}/"
    assert payload["running"] is True
