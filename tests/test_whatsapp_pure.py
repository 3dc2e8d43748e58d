"""WhatsApp without sockets: config and accounts, webhook payloads, formatting, Graph error
classes, the signature (CHANNELS.md 1.2, 4.2-4.7)."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest

from gateway.channels.accounts import plan_accounts
from gateway.channels.ledger import Inbound
from gateway.channels.telegram.inbound import Drop, Message
from gateway.channels.whatsapp.api import GraphError, GraphNetworkError, classify
from gateway.channels.whatsapp.config import resolve_whatsapp
from gateway.channels.whatsapp.format import render
from gateway.channels.whatsapp.inbound import message_of, rows_of, status_of
from gateway.channels.whatsapp.webhook import signature_ok
from gateway.config.load import parse
from gateway.errors import ConfigError


def config(**whatsapp: Any) -> Any:
    return parse(json.dumps({"channels": {"whatsapp": whatsapp}}), {})[0]


def problems(**whatsapp: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config(**whatsapp)
    return caught.value.problems


def test_config_errors_name_the_key() -> None:
    assert problems(allowFrom=["bob"], dmPolicy="allowlist") == [
        "channels.whatsapp.allowFrom[0]: expected a phone number in E.164 form (+15551234567) "
        'or "*", got "bob"'
    ]
    assert problems(dmPolicy="open") == [
        'channels.whatsapp.allowFrom: dmPolicy "open" needs "*" in allowFrom (anyone may write)'
    ]
    assert problems(webhookPath="/") == [
        'channels.whatsapp.webhookPath: may not be "/" (e.g. "/webhooks/whatsapp")'
    ]
    assert problems(graphApiVersion="24")[0].startswith("channels.whatsapp.graphApiVersion")
    assert problems(accounts={"a": {"phoneNumberId": "1"}, "b": {"phoneNumberId": "1"}}) == [
        "channels.whatsapp.accounts: duplicate phoneNumberId in accounts a, b"
    ]


@pytest.mark.parametrize("channel", ["telegram", "whatsapp"])
def test_account_ids_and_the_default_account_are_checked_alike(channel: str) -> None:
    base = f"channels.{channel}"
    document = {"channels": {channel: {"defaultAccount": "x", "accounts": {"a b": {}, "c": {}}}}}
    with pytest.raises(ConfigError) as caught:
        parse(json.dumps(document), {})
    assert caught.value.problems == [
        f'{base}.accounts.a b: account ids use letters, digits, "_" and "-" (got "a b")',
        f'{base}.defaultAccount: no account "x" (configured: a b, c)',
    ]


def test_accounts_inherit_the_app_and_token_and_get_their_own_webhook_path() -> None:
    cfg = config(
        accessToken="T",
        appSecret="S",
        verifyToken="V",
        defaultAccount="main",
        allowFrom=["whatsapp:+1 555 123 4567"],
        accounts={
            "main": {"phoneNumberId": "111"},
            "biz2": {"phoneNumberId": "222", "verifyToken": "V2"},
        },
    )
    accounts = resolve_whatsapp(cfg, {})
    main, biz2 = accounts["main"], accounts["biz2"]
    assert (main.webhook_path, biz2.webhook_path) == (
        "/webhooks/whatsapp",
        "/webhooks/whatsapp/biz2",
    )
    assert (main.token, biz2.token, biz2.app_secret, biz2.verify_token) == ("T", "T", "S", "V2")
    assert main.allow_from == ("+15551234567",)
    assert (main.configured, biz2.configured) == (True, True)
    env = resolve_whatsapp(config(phoneNumberId="9"), {"WHATSAPP_ACCESS_TOKEN": "E"})["default"]
    assert (env.token, env.token_source) == ("E", "env")
    missing = resolve_whatsapp(config(), {})["default"]
    assert not missing.configured
    assert "phoneNumberId and accessToken missing" in missing.missing_text()


def test_a_token_file_error_names_its_key_and_only_the_default_account_reads_the_env(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "missing.token"
    cfg = config(
        defaultAccount="b",
        accounts={"a": {"accessTokenFile": str(missing)}, "b": {}, "c": {}},
    )
    accounts = resolve_whatsapp(cfg, {"WHATSAPP_ACCESS_TOKEN": " E "})
    a, b, c = accounts["a"], accounts["b"], accounts["c"]
    assert (a.token, a.token_source) == (None, "none")
    assert (
        a.token_error == f"channels.whatsapp.accounts.a.accessTokenFile: {missing} does not exist"
    )
    assert (b.token, b.token_source, b.token_error) == ("E", "env", None)
    assert (c.token, c.token_source, c.token_error) == (None, "none", None)


def test_a_token_change_restarts_the_account_a_policy_change_does_not() -> None:
    old = resolve_whatsapp(config(phoneNumberId="1", accessToken="T"), {})
    hot = resolve_whatsapp(config(phoneNumberId="1", accessToken="T", dmPolicy="disabled"), {})
    new = resolve_whatsapp(config(phoneNumberId="1", accessToken="T2"), {})
    assert plan_accounts(old, hot) == {"default": "hot"}
    assert plan_accounts(old, new) == {"default": "restart"}


def payload(value: dict[str, Any], number: str = "42") -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "W",
                "changes": [
                    {
                        "field": "messages",
                        "value": {"metadata": {"phone_number_id": number}, **value},
                    }
                ],
            }
        ],
    }


def test_a_webhook_becomes_ledger_rows_that_parse_the_same_later() -> None:
    body = payload(
        {
            "contacts": [{"profile": {"name": "Ada"}, "wa_id": "15551234567"}],
            "messages": [
                {
                    "from": "15551234567",
                    "id": "wamid.A",
                    "timestamp": "1700000000",
                    "type": "text",
                    "text": {"body": "hi there"},
                    "context": {"from": "15550000000", "id": "wamid.PREV"},
                },
                {"from": "15551234567", "id": "wamid.R", "type": "reaction", "reaction": {}},
            ],
            "statuses": [
                {
                    "id": "wamid.OUT",
                    "status": "failed",
                    "recipient_id": "15551234567",
                    "biz_opaque_callback_data": "rec:1",
                    "errors": [{"code": 131047, "title": "Re-engagement message"}],
                }
            ],
        }
    )
    parsed = rows_of(body, "whatsapp", "default", "42", 1)
    assert [r.key for r in parsed.rows] == [
        "wa:default:wamid.A",
        "wa:default:wamid.R",
        "wa:default:st:wamid.OUT:failed",
    ]
    msg = message_of(parsed.rows[0])
    assert isinstance(msg, Message)
    assert (msg.sender_id, msg.chat_id, msg.sender_name, msg.text, msg.channel) == (
        "+15551234567",
        "15551234567",
        "Ada",
        "hi there",
        "whatsapp",
    )
    assert msg.reply is not None
    assert msg.reply.message_id == "wamid.PREV"
    dropped = message_of(parsed.rows[1])
    assert isinstance(dropped, Drop)
    assert dropped.reason == "reaction message (nothing to answer)"
    status = status_of(parsed.rows[2])
    assert status is not None
    assert (status.status, status.opaque, status.error_code) == ("failed", "rec:1", 131047)
    assert rows_of(body, "whatsapp", "default", "other", 1).foreign == ["42"]


@pytest.mark.parametrize("junk", [None, [], {"entry": "x"}, {"entry": [{"changes": [7]}]}])
def test_junk_payloads_give_no_rows_and_no_exception(junk: object) -> None:
    assert rows_of(junk, "whatsapp", "default", "42", 1).rows == []
    row = Inbound("wa:default:x", "whatsapp", "default", None, 1, "{not json")
    dropped = message_of(row)
    assert isinstance(dropped, Drop)
    assert dropped.reason == "unreadable row"


def test_markdown_becomes_whatsapp_marks_and_code_is_untouched() -> None:
    assert render("# Plan\n**bold**, *it*, ~~gone~~, [docs](https://x.y/z)") == (
        "*Plan*\n*bold*, _it_, ~gone~, docs (https://x.y/z)"
    )
    assert render("use `**raw**` here") == "use `**raw**` here"
    assert render("```python\nx = **y**\n```") == "```\nx = **y**\n```"
    assert render("2 * 3 * 4") == "2 * 3 * 4"


@pytest.mark.parametrize(
    ("error", "kind", "retry"),
    [
        (GraphError(401, 190, "Invalid OAuth access token"), "auth", None),
        (GraphError(400, 131047, "Re-engagement message"), "permanent", None),
        (GraphError(400, 131026, "Message undeliverable"), "permanent", None),
        (GraphError(400, 131056, "pair rate limit"), "rate_limit", 6.0),
        (GraphError(400, 131048, "spam rate limit"), "rate_limit", 600.0),
        (GraphError(429, 130429, "throughput"), "rate_limit", None),
        (GraphError(500, 131000, "Something went wrong"), "network", None),
        (GraphError(400, 100, "Invalid parameter"), "permanent", None),
        (GraphNetworkError("refused", sent=False), "network", None),
        (GraphNetworkError("reset", sent=True), "ambiguous", None),
    ],
)
def test_graph_errors_are_classed_by_code(error: Any, kind: str, retry: float | None) -> None:
    classed = classify(error)
    assert (classed.kind, classed.retry_after_s) == (kind, retry)
    if getattr(error, "code", None) == 131047:
        assert "write first" in str(classed)


def test_the_signature_is_the_hmac_of_the_exact_bytes() -> None:
    body = b'{"object":"whatsapp_business_account"}'
    good = "sha256=" + hmac.new(b"secret", body, hashlib.sha256).hexdigest()
    assert signature_ok("secret", body, good)
    assert not signature_ok("secret", body + b" ", good)
    assert not signature_ok("other", body, good)
    assert not signature_ok(None, body, good)
    assert not signature_ok("secret", body, None)
    assert not signature_ok("secret", body, good.replace("sha256=", "sha1="))
