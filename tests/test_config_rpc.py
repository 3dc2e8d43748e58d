"""``config.get`` (PROTOCOL.md 7.13, CONTROL-UI.md 5) over a plain ``websockets`` client:
the file, its hash, whether it validates, the running configuration -- secrets redacted."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from gateway.app import Running
from gateway.config.load import parse
from gateway.config.snapshot import REDACTED, is_secret_key, redact, snapshot

from .conftest import StartGateway, handshake, in_thread, make_settings, open_raw, request

SECRETS = {
    "token": "file-token-5f4dcc3b5aa765d61d8327deb882cf99",
    "apiKey": "sk-live-0123456789abcdef",
    "botToken": "123456:AAE-telegram-bot-token",
}

FILE = f"""// the operator's file, with comments
{{
  gateway: {{ mode: "local", auth: {{ token: "{SECRETS["token"]}" }} }},
  models: {{
    providers: {{
      fake: {{
        baseUrl: "http://127.0.0.1:9/v1",
        apiKey: "{SECRETS["apiKey"]}",
        api: "openai-completions",
        models: [{{ id: "m", name: "M" }}],
      }},
    }},
  }},
  channels: {{ telegram: {{ enabled: false, botToken: "{SECRETS["botToken"]}" }} }},
}}
"""


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("token", True),
        ("botToken", True),
        ("accessToken", True),
        ("appSecret", True),
        ("apiKey", True),
        ("password", True),
        ("tokenFile", False),
        ("baseUrl", False),
    ],
)
def test_secret_keys(key: str, secret: bool) -> None:
    assert is_secret_key(key) is secret


def test_redact_keeps_env_references_and_reports_what_it_hid() -> None:
    found: set[str] = set()
    doc = {"a": {"token": "t0p", "apiKey": "${KEY}", "list": [{"password": "pw"}], "n": 1}}
    assert redact(doc, found) == {
        "a": {"token": REDACTED, "apiKey": "${KEY}", "list": [{"password": REDACTED}], "n": 1}
    }
    assert found == {"t0p", "pw"}


def test_raw_is_withheld_when_a_secret_cannot_be_found_in_the_text() -> None:
    running = parse("{}", {})[0]
    escaped = snapshot("f", '{gateway: {auth: {token: "s\\u0065cret-value"}}}', {}, running)
    assert escaped.raw is None  # "secret-value" spelled with an escape: not replaceable
    assert escaped.parsed == {"gateway": {"auth": {"token": REDACTED}}}
    broken = snapshot("f", '{gateway: {auth: {token: "abc"', {}, running)
    assert broken.raw is None  # does not parse: nothing is known to be safe
    plain = snapshot("f", '{gateway: {auth: {token: "abc"}}} // abc', {}, running)
    assert plain.raw == f'{{gateway: {{auth: {{token: "{REDACTED}"}}}}}} // {REDACTED}'


def get_config(running: Running, **connect: Any) -> dict[str, Any]:
    with open_raw(running.url) as ws:
        handshake(ws, **connect)
        return request(ws, "config.get", {})


async def test_without_a_file(gateway: Running) -> None:
    res = await in_thread(get_config, gateway)
    assert res["ok"] is True, res
    got = res["payload"]
    assert got["exists"] is False
    assert got["raw"] is None
    assert got["parsed"] is None
    assert got["valid"] is True
    assert got["hash"] == hashlib.sha256(b"").hexdigest()
    assert got["issues"] == got["warnings"] == got["legacyIssues"] == []
    assert got["path"].endswith("smart-agent-neo.json")
    assert got["config"]["gateway"]["ws"]["tickIntervalMs"] == 30_000  # defaults included


async def test_the_file_and_the_running_config_with_secrets_redacted(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    config_path = tmp_path / "smart-agent-neo.json"
    config_path.write_text(FILE)
    config, _ = parse(FILE, {})
    running = await start_gateway(make_settings(tmp_path, config=config))
    res = await in_thread(get_config, running)
    got = res["payload"]
    text = json.dumps(got)
    for secret in SECRETS.values():
        assert secret not in text  # nowhere: raw, parsed, config
    assert got["exists"] is True
    assert got["valid"] is True
    assert got["hash"] == hashlib.sha256(FILE.encode()).hexdigest()
    assert got["raw"].startswith("// the operator's file")
    assert f'token: "{REDACTED}"' in got["raw"]
    assert got["parsed"]["models"]["providers"]["fake"]["apiKey"] == REDACTED
    assert got["parsed"]["models"]["providers"]["fake"]["baseUrl"] == "http://127.0.0.1:9/v1"
    assert got["config"]["gateway"]["auth"]["token"] == REDACTED
    assert got["config"]["channels"]["telegram"]["botToken"] == REDACTED


async def test_an_invalid_edit_is_reported_with_its_key_path(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    running = await start_gateway()
    config_path = tmp_path / "smart-agent-neo.json"
    config_path.write_text('{gateway: {port: "high"}}')
    got = (await in_thread(get_config, running))["payload"]
    assert got["exists"] is True
    assert got["valid"] is False
    assert got["issues"][0]["path"] == "gateway.port"
    assert "high" in got["issues"][0]["message"]
    assert got["parsed"] == {"gateway": {"port": "high"}}
    config_path.write_text("{gateway: ")  # not even JSON5
    broken = (await in_thread(get_config, running))["payload"]
    assert broken["valid"] is False
    assert broken["parsed"] is None
    assert broken["issues"][0]["message"].startswith("syntax error")


async def test_read_scope_is_enough_and_needed(gateway: Running) -> None:
    reader = await in_thread(lambda: get_config(gateway, scopes=["operator.read"]))
    other = await in_thread(lambda: get_config(gateway, scopes=["operator.approvals"]))
    assert reader["ok"] is True
    assert other["error"]["code"] == "FORBIDDEN"
    assert other["error"]["message"] == "missing scope: operator.read"


# -- config.set / apply / patch / schema ---------------------------------------------------------


def calls(running: Running, *steps: tuple[str, dict[str, Any]], **connect: Any) -> list[Any]:
    with open_raw(running.url) as ws:
        handshake(ws, **connect)
        return [request(ws, method, params) for method, params in steps]


async def with_file(start_gateway: StartGateway, tmp_path: Path) -> tuple[Running, Path]:
    config_path = tmp_path / "smart-agent-neo.json"
    config_path.write_text(FILE)
    config, _ = parse(FILE, {})
    return await start_gateway(make_settings(tmp_path, config=config)), config_path


async def test_patch_merges_keeps_secrets_and_says_what_reloads(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    running, config_path = await with_file(start_gateway, tmp_path)
    base = hashlib.sha256(FILE.encode()).hexdigest()
    patch = "{gateway: {ws: {tickIntervalMs: 5000}}, channels: null}"
    (res,) = await in_thread(
        lambda: calls(running, ("config.patch", {"raw": patch, "baseHash": base}))
    )
    assert res["ok"] is True, res
    written = json.loads(config_path.read_text())
    assert written["gateway"]["ws"]["tickIntervalMs"] == 5000
    assert written["gateway"]["auth"]["token"] == SECRETS["token"]  # untouched, unredacted
    assert "channels" not in written  # null deletes
    got = res["payload"]
    assert got["reload"] == "hot"  # tickIntervalMs is hot; channels too
    assert got["hash"] == hashlib.sha256(config_path.read_bytes()).hexdigest()
    assert got["config"]["gateway"]["auth"]["token"] == REDACTED
    assert SECRETS["apiKey"] not in json.dumps(got)


async def test_apply_of_a_redacted_document_keeps_the_secrets(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    """config.get -> edit the redacted document -> config.apply: the secrets stay."""
    running, config_path = await with_file(start_gateway, tmp_path)

    def edit() -> Any:
        (got,) = calls(running, ("config.get", {}))
        document = got["payload"]["parsed"]
        document["gateway"]["port"] = 19555
        raw = json.dumps(document)
        return calls(running, ("config.apply", {"raw": raw, "baseHash": got["payload"]["hash"]}))[0]

    res = await in_thread(edit)
    assert res["ok"] is True, res
    assert res["payload"]["reload"] == "restart"  # gateway.port
    written = json.loads(config_path.read_text())
    assert written["gateway"]["port"] == 19555
    assert written["gateway"]["auth"]["token"] == SECRETS["token"]
    assert written["models"]["providers"]["fake"]["apiKey"] == SECRETS["apiKey"]
    assert written["channels"]["telegram"]["botToken"] == SECRETS["botToken"]


@pytest.mark.parametrize(
    ("method", "params", "code", "message"),
    [
        ("config.set", {"raw": "{}"}, "CONFIG_BASE_HASH_REQUIRED", "baseHash is required"),
        ("config.patch", {"raw": "{}", "baseHash": "0" * 64}, "CONFIG_BASE_HASH_MISMATCH", ""),
        (
            "config.patch",
            {"raw": "{gateway: {port: 'x'}}", "baseHash": "<base>"},
            "CONFIG_INVALID",
            "invalid config: gateway.port",
        ),
        (
            "config.apply",
            {"raw": "[1]", "baseHash": "<base>"},
            None,
            "invalid config.apply params: raw: expected an object",
        ),
        (
            "config.apply",
            {"raw": "{hooks: {token: '__REDACTED__'}}", "baseHash": "<base>"},
            None,
            "raw: hooks.token: __REDACTED__ stands for the secret",
        ),
        ("config.set", {"raw": "", "baseHash": "<base>"}, None, "invalid config.set params: raw"),
    ],
)
async def test_refused_writes_leave_the_file_alone(
    start_gateway: StartGateway,
    tmp_path: Path,
    method: str,
    params: dict[str, Any],
    code: str | None,
    message: str,
) -> None:
    running, config_path = await with_file(start_gateway, tmp_path)
    base = hashlib.sha256(FILE.encode()).hexdigest()
    sent = {k: (base if v == "<base>" else v) for k, v in params.items()}
    (res,) = await in_thread(lambda: calls(running, (method, sent)))
    assert res["ok"] is False
    assert res["error"]["code"] == "INVALID_REQUEST"
    if code is not None:
        assert res["error"]["details"]["code"] == code
    assert message in res["error"]["message"]
    assert config_path.read_text() == FILE


async def test_set_creates_a_private_file_and_writes_need_admin(
    gateway: Running, tmp_path: Path
) -> None:
    config_path = tmp_path / "smart-agent-neo.json"
    raw = '{gateway: {mode: "local", auth: {token: "new-token-value"}}}'
    refused, schema_refused = await in_thread(
        lambda: calls(
            gateway,
            ("config.set", {"raw": raw}),
            ("config.schema", {}),
            scopes=["operator.read", "operator.write"],
        )
    )
    assert refused["error"]["message"] == "missing scope: operator.admin"
    assert schema_refused["error"]["message"] == "missing scope: operator.admin"
    assert not config_path.exists()
    created, schema = await in_thread(
        lambda: calls(gateway, ("config.set", {"raw": raw}), ("config.schema", {}))
    )
    assert created["ok"] is True, created
    assert json.loads(config_path.read_text())["gateway"]["auth"]["token"] == "new-token-value"
    assert config_path.stat().st_mode & 0o777 == 0o600
    assert created["payload"]["reload"] == "restart"  # gateway.auth.token
    assert "gateway" in schema["payload"]["schema"]["properties"]
