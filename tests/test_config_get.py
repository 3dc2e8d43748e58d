"""``config.get``: the Config panel's read-only view, with every secret hidden (PROTOCOL.md
7.13; CONTROL-UI.md 4; FAILURE-MODES 22: secrets never leave through the control plane)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import trio

from gateway.app import Running
from gateway.config.model import Config
from gateway.config.snapshot import REDACTED, build, is_sensitive_key, redact, redact_text

from .conftest import TOKEN, StartGateway, handshake, in_thread, open_raw, request

FILE = """// my gateway
{
  gateway: { mode: "local", auth: { token: "file-secret-abc" } },
  models: {
    providers: {
      local: {
        baseUrl: "http://127.0.0.1:9/v1",
        api: "openai-completions",
        apiKey: 'sk-live-"quoted"',
        models: [{ id: "m" }],
      },
      other: { baseUrl: "http://127.0.0.1:9/v1", apiKey: "${OTHER_KEY}", models: [{ id: "n" }] },
    },
  },
}
"""


def test_which_keys_are_secrets() -> None:
    for name in ("token", "botToken", "password", "appSecret", "apiKey", "api_key", "verifyToken"):
        assert is_sensitive_key(name), name
    for name in ("maxTokens", "tokenSource", "tickIntervalMs", "baseUrl", "mode"):
        assert not is_sensitive_key(name), name


def test_redaction_walks_documents_and_text() -> None:
    secrets: set[str] = set()
    doc = {"auth": {"token": "t0k", "mode": "token"}, "list": [{"apiKey": 42}], "s": {"x": "y"}}
    assert redact(doc, secrets) == {
        "auth": {"token": REDACTED, "mode": "token"},
        "list": [{"apiKey": REDACTED}],
        "s": {"x": "y"},
    }
    assert secrets == {"t0k", "42"}
    # an environment reference names a secret without being one; empty and null stay
    assert redact({"token": "${GW_TOKEN}", "password": "", "secret": None}) == {
        "token": "${GW_TOKEN}",
        "password": "",
        "secret": None,
    }
    # a file that does not parse still loses the values of its secret keys
    half = "{gateway: {auth: {token: 'half-saved', password: \"p\\\"w\"}, mode: 'local'"
    text = redact_text(half, set())
    assert "half-saved" not in text
    assert 'p\\"w' not in text
    assert "mode: 'local'" in text


def test_snapshot_of_a_file_with_secrets(tmp_path: Path) -> None:
    snap = build(str(tmp_path / "c.json"), FILE, Config(), {"OTHER_KEY": "sk-other-xyz"})
    dumped = json.dumps(snap.parsed) + (snap.raw or "") + json.dumps(snap.config)
    for secret in ("file-secret-abc", "sk-live-", "sk-other-xyz"):
        assert secret not in dumped, secret
    assert snap.valid
    assert snap.exists
    assert not snap.issues
    assert snap.raw is not None
    assert snap.raw.startswith("// my gateway")
    assert snap.raw.count(REDACTED) == 2
    assert "${OTHER_KEY}" in snap.raw
    assert isinstance(snap.parsed, dict)
    assert snap.parsed["gateway"]["auth"]["token"] == REDACTED
    assert snap.hash == hashlib.sha256(FILE.encode()).hexdigest()  # of the file, not the copy
    # the config in force, defaults included
    assert snap.config["gateway"]["port"] == 18789  # type: ignore[index]


def test_snapshot_of_a_broken_or_missing_file(tmp_path: Path) -> None:
    broken = build("c.json", '{gateway: {port: "abc", auth: {token: "s3cret"}}}', Config(), {})
    assert not broken.valid
    assert [(i.path, i.message) for i in broken.issues] == [
        ("gateway.port", 'expected an integer 1-65535, got "abc"')
    ]
    assert "s3cret" not in (broken.raw or "")
    syntax = build("c.json", "{gateway: {auth: {token: 'half", Config(), {})
    assert not syntax.valid
    assert syntax.parsed is None
    assert syntax.issues[0].message.startswith("syntax error")
    assert "half" not in (syntax.raw or "")
    missing = build("c.json", None, Config(), {})
    assert missing.valid
    assert not missing.exists
    assert missing.raw is None


async def test_config_get_over_the_control_plane(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    (tmp_path / "smart-agent-neo.json").write_text(FILE)
    running: Running = await start_gateway()
    url = f"ws://{running.host}:{running.port}"

    def client() -> tuple[dict[str, Any], str, dict[str, Any]]:
        with open_raw(url) as ws:
            hello = handshake(ws)
            assert hello["ok"], hello
            assert "config.get" in hello["payload"]["features"]["methods"]
            res = request(ws, "config.get", {})
        with open_raw(url) as ws:
            handshake(ws, scopes=["operator.pairing"], role="operator")
            denied = request(ws, "config.get", {})
        return res, json.dumps(res), denied

    with trio.fail_after(30):
        res, text, denied = await in_thread(client)
    assert res["ok"], res
    payload = res["payload"]
    assert set(payload) == {
        "path",
        "exists",
        "raw",
        "parsed",
        "valid",
        "config",
        "hash",
        "issues",
        "warnings",
        "legacyIssues",
    }
    assert payload["path"] == str(tmp_path / "smart-agent-neo.json")
    assert payload["exists"]
    assert payload["valid"]
    assert payload["hash"] == hashlib.sha256(FILE.encode()).hexdigest()
    for secret in ("file-secret-abc", "sk-live-", TOKEN):
        assert secret not in text, secret
    assert REDACTED in payload["raw"]
    assert payload["parsed"]["gateway"]["auth"]["token"] == REDACTED
    # read scope: a pairing-only operator is refused, naming the scope
    assert not denied["ok"]
    assert "operator.read" in denied["error"]["message"]
