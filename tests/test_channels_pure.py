"""The channels' pure parts: config rules, account resolution, reload plan, backoff, breaker,
pairing, chunking, policy, routing, inbound parsing (CHANNELS.md 1-5)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import attrs
import pytest

from gateway.channels import pairing
from gateway.channels.accounts import plan_accounts, read_token_file, resolve_telegram
from gateway.channels.backoff import LoopBackoff, restart_delay_ms
from gateway.channels.breaker import Boot, BootHistory, decide
from gateway.channels.policy import dm_decision, group_decision
from gateway.channels.routing import PeerKind, select_agent, session_rest
from gateway.channels.telegram.format import render_or_plain, split_text, utf16_len
from gateway.channels.telegram.inbound import Drop, Message, parse_update
from gateway.config.load import parse
from gateway.config.model import Config
from gateway.config.reload import classify
from gateway.errors import ConfigError
from gateway.logs.redact import Redactor

from .faketelegram import parse_html

TOKEN = "123456789:AAH5rPzN0fakeTokenForTests_abcdefgh"


def load(document: dict[str, Any], env: dict[str, str] | None = None) -> Config:
    return parse(json.dumps(document), env or {})[0]


def problems(document: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(document)
    return info.value.problems


# -- config -------------------------------------------------------------------------------------


def test_every_documented_telegram_key_is_accepted() -> None:
    config = load(
        {
            "channels": {
                "telegram": {
                    "enabled": True,
                    "botToken": "123:abc",
                    "apiBaseUrl": "https://api.telegram.org",
                    "dmPolicy": "pairing",
                    "allowFrom": ["123456789", 55, "tg:77", "telegram:88"],
                    "groupPolicy": "allowlist",
                    "groupAllowFrom": [],
                    "groups": {
                        "*": {"requireMention": True},
                        "-1001234567890": {
                            "requireMention": False,
                            "groupPolicy": "open",
                            "topics": {"3": {"agentId": "coder"}},
                        },
                    },
                    "textChunkLimit": 4000,
                    "chunkMode": "length",
                    "mediaMaxMb": 100,
                    "mediaGroupFlushMs": 500,
                    "linkPreview": True,
                    "replyToMode": "off",
                    "pollingStallThresholdMs": 120000,
                    "timeoutSeconds": 30,
                    "defaultAccount": "main",
                    "accounts": {
                        "main": {"botToken": "1:a", "name": "Main bot"},
                        "ops": {"tokenFile": "/x", "dmPolicy": "allowlist", "allowFrom": ["42"]},
                    },
                }
            },
            "session": {"dmScope": "per-channel-peer"},
        }
    )
    tg = config.channels.telegram
    assert tg is not None
    assert tg.accounts["ops"].allow_from == ["42"]
    assert tg.groups["-1001234567890"].topics["3"].agent_id == "coder"


def test_allowlist_needs_an_entry_with_its_key_path() -> None:
    assert problems({"channels": {"telegram": {"dmPolicy": "allowlist"}}}) == [
        'channels.telegram.allowFrom: dmPolicy "allowlist" needs at least one entry'
    ]
    found = problems(
        {
            "channels": {
                "telegram": {"accounts": {"ops": {"dmPolicy": "allowlist", "allowFrom": []}}}
            }
        }
    )
    assert found == [
        'channels.telegram.accounts.ops.allowFrom: dmPolicy "allowlist" needs at least one entry'
    ]


def test_open_needs_a_star_and_tokens_are_unique() -> None:
    assert problems({"channels": {"telegram": {"dmPolicy": "open", "allowFrom": ["1"]}}})[
        0
    ].startswith('channels.telegram.allowFrom: dmPolicy "open" needs "*"')
    found = problems(
        {
            "channels": {
                "telegram": {"accounts": {"a": {"botToken": "1:x"}, "b": {"botToken": "1:x"}}}
            }
        }
    )
    assert found == ["channels.telegram.accounts: duplicate botToken in accounts a, b"]


def test_bad_values_name_their_key_and_hide_tokens() -> None:
    found = problems({"channels": {"telegram": {"botToken": 12345, "allowFrom": ["bob"]}}})
    assert "channels.telegram.botToken: expected a string, got a number (value hidden)" in found
    found = problems({"channels": {"telegram": {"allowFrom": ["bob"]}}})
    assert found[0].startswith(
        'channels.telegram.allowFrom[0]: expected a numeric Telegram user id or "*"'
    )
    found = problems({"channels": {"telegram": {"apiBaseUrl": f"ftp://x/bot{TOKEN}"}}})
    assert found[0].startswith("channels.telegram.apiBaseUrl: expected an http(s) URL")
    assert TOKEN not in " ".join(found)
    found = problems({"channels": {"telegram": {"pollingStallThresholdMs": 1000}}})
    assert found == [
        "channels.telegram.pollingStallThresholdMs: expected an integer 30000-600000, got 1000"
    ]
    assert problems({"channels": {"telegarm": {}}}) == [
        'channels.telegarm: unknown key (did you mean "telegram"?)'
    ]


def test_an_api_root_ending_in_a_bot_endpoint_fails_only_that_account() -> None:
    """CHANNELS 1.1: an apiBaseUrl/apiRoot ending in /bot<TOKEN> is wrong, but it is one
    account's config error (``failed``, naming the key), not a gateway that will not start;
    ``doctor --fix`` strips it (test_service_doctor)."""
    config = load(
        {
            "channels": {
                "telegram": {
                    "accounts": {
                        "a": {
                            "botToken": "1:a",
                            "apiRoot": f"https://api.telegram.org/bot{TOKEN}/",
                        },
                        "b": {"botToken": "2:b", "apiBaseUrl": "https://tg.example/botapi"},
                    },
                    "apiBaseUrl": "https://top.example/bot1:x",
                }
            }
        }
    )
    accounts = resolve_telegram(config, {})
    error = accounts["a"].token_error
    assert error is not None
    assert error.startswith(
        "channels.telegram.accounts.a.apiRoot: must be the API root without /bot<TOKEN>"
    )
    assert TOKEN not in error
    # a path that merely starts with "bot" is a root like any other; the account's own key
    # wins over the top-level one
    assert accounts["b"].token_error is None
    assert accounts["b"].api_base_url == "https://tg.example/botapi"


def test_group_ids_belong_under_groups_and_group_lists_are_checked() -> None:
    """CHANNELS 3.5: "-100..." chat ids go under groups, not groupAllowFrom/allowFrom (a
    sender list holds people); groups keys are chat ids or "*", topics keys thread ids, and
    the sender lists inside them are checked like the top-level ones."""
    found = problems(
        {
            "channels": {
                "telegram": {
                    "groupAllowFrom": ["-1001234567890"],
                    "groups": {
                        "@mygroup": {},
                        "-100": {"allowFrom": ["bob"], "topics": {"general": {"allowFrom": [-5]}}},
                    },
                    "accounts": {"ops": {"allowFrom": ["tg:-42"], "groups": {"*": {}}}},
                }
            }
        }
    )
    assert found == [
        'channels.telegram.groupAllowFrom[0]: "-1001234567890" is a group chat id, not a user'
        " id: put the group under channels.telegram.groups (this list names the people who"
        " may write)",
        "channels.telegram.groups.@mygroup: expected a numeric group chat id (like"
        ' "-1001234567890") or "*" as the key (the log names the id of a group the bot does'
        " not know yet)",
        'channels.telegram.groups.-100.allowFrom[0]: expected a numeric Telegram user id or "*",'
        ' got "bob" (find your id: message the bot and see `pairing list`)',
        "channels.telegram.groups.-100.topics.general: expected a numeric topic (thread) id",
        'channels.telegram.groups.-100.topics.general.allowFrom[0]: "-5" is a group chat id,'
        " not a user id: put the group under channels.telegram.groups (this list names the"
        " people who may write)",
        'channels.telegram.accounts.ops.allowFrom[0]: "tg:-42" is a group chat id, not a user'
        " id: put the group under channels.telegram.groups (this list names the people who"
        " may write)",
    ]


def test_reload_classes_of_the_new_keys() -> None:
    assert classify("channels.telegram.allowFrom") == "hot"
    assert classify("channels.telegram.botToken") == "hot"  # the supervisor restarts the account
    assert classify("session.dmScope") == "none"
    assert classify("bindings") == "none"


# -- accounts ---------------------------------------------------------------------------------


def test_token_order_and_sources(tmp_path: Path) -> None:
    token_file = tmp_path / "tok"
    token_file.write_text("  555:filetoken \n")
    config = load(
        {
            "channels": {
                "telegram": {
                    "tokenFile": str(token_file),
                    "dmPolicy": "open",
                    "allowFrom": ["*"],
                    "accounts": {
                        "default": {},
                        "ops": {"botToken": "666:cfg"},
                        "bare": {},
                    },
                }
            }
        }
    )
    accounts = resolve_telegram(config, {"TELEGRAM_BOT_TOKEN": "777:env"})
    assert (accounts["default"].token, accounts["default"].token_source) == (
        "555:filetoken",
        "file",
    )
    assert (accounts["ops"].token, accounts["ops"].token_source) == ("666:cfg", "config")
    assert (accounts["bare"].token, accounts["bare"].token_source) == (None, "none")
    assert accounts["ops"].dm_policy == "open"  # inherited from the top level
    env_only = resolve_telegram(
        load({"channels": {"telegram": {}}}), {"TELEGRAM_BOT_TOKEN": "777:env"}
    )
    assert (env_only["default"].token, env_only["default"].token_source) == ("777:env", "env")


def test_token_file_symlink_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.write_text("1:a")
    link = tmp_path / "link"
    os.symlink(real, link)
    with pytest.raises(Exception, match="symlink"):
        read_token_file(str(link))
    config = load({"channels": {"telegram": {"tokenFile": str(link)}}})
    acct = resolve_telegram(config, {})["default"]
    assert acct.token is None
    assert acct.token_error is not None
    assert acct.token_error.startswith("channels.telegram.tokenFile: ")


def test_plan_accounts_restarts_only_what_the_transport_was_built_from() -> None:
    base = {
        "botToken": "1:a",
        "allowFrom": ["1"],
        "accounts": {"a": {"botToken": "1:a"}, "b": {"botToken": "2:b"}},
    }
    old = resolve_telegram(load({"channels": {"telegram": base}}), {})
    policy = json.loads(json.dumps(base))
    policy["allowFrom"] = ["1", "2"]
    assert plan_accounts(old, resolve_telegram(load({"channels": {"telegram": policy}}), {})) == {
        "a": "hot",
        "b": "hot",
    }
    token = json.loads(json.dumps(base))
    token["accounts"]["a"]["botToken"] = "3:c"
    token["accounts"]["c"] = {"botToken": "4:d"}
    del token["accounts"]["b"]
    new = resolve_telegram(load({"channels": {"telegram": token}}), {})
    assert plan_accounts(old, new) == {"a": "restart", "b": "stop", "c": "start"}


# -- backoff and breaker -------------------------------------------------------------------------


def test_restart_delay_grows_to_five_minutes_and_never_stops() -> None:
    mid = [restart_delay_ms(n, lambda lo, hi: 1.0) for n in range(1, 31)]
    assert mid[:7] == [5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000]
    assert all(d == 300_000 for d in mid[6:])
    assert restart_delay_ms(30, lambda lo, hi: lo) == 240_000
    assert restart_delay_ms(10_000, lambda lo, hi: hi) == 360_000
    loop = LoopBackoff(lambda lo, hi: 1.0)
    assert [loop.next_ms() for _ in range(7)] == [2000, 3600, 6480, 11664, 20995, 30000, 30000]
    loop.reset()
    assert loop.next_ms() == 2000


def test_breaker_trips_after_three_unclean_boots_in_five_minutes() -> None:
    now = 10_000_000
    unclean = [Boot(1, now - 60_000), Boot(2, now - 30_000), Boot(3, now - 10_000)]
    assert decide(unclean, now)
    assert not decide(unclean[1:], now)
    assert not decide([attrs.evolve(b, clean=True) for b in unclean], now)
    assert not decide([Boot(1, now - 400_000), *unclean[1:]], now)
    # the boot that lifted the breaker crashed: trip at once
    assert decide([Boot(9, now - 3_600_000, lifted=True)], now)
    assert not decide([Boot(9, now - 3_600_000, clean=True, lifted=True)], now)


def test_boot_history_file(tmp_path: Path) -> None:
    for i in range(3):
        assert not BootHistory(tmp_path).record_boot(1_000_000 + i)
    history = BootHistory(tmp_path)
    assert history.record_boot(1_000_100)
    history.mark_clean()
    data = json.loads((tmp_path / "boot-history.json").read_text())
    assert [b["clean"] for b in data["boots"]] == [False, False, False, True]


# -- pairing --------------------------------------------------------------------------------------


def test_pairing_codes_slots_and_expiry() -> None:
    requests: list[pairing.Request] = []
    requests, first, created = pairing.touch(requests, "100", "default", 0)
    assert created
    assert first is not None
    assert len(first.code) == 8
    assert set(first.code) <= set(pairing.ALPHABET)
    requests, again, created = pairing.touch(requests, "100", "default", 60_000)
    assert not created
    assert again is not None
    assert again.code == first.code
    for sender in ("101", "102"):
        requests, _, created = pairing.touch(requests, sender, "default", 1000)
        assert created
    requests, none, created = pairing.touch(requests, "103", "default", 2000)
    assert (none, created) == (None, False)
    assert len({r.code for r in requests}) == 3
    # an hour later the slots are free again
    requests, fresh, created = pairing.touch(requests, "103", "default", pairing.TTL_MS + 1000)
    assert created
    assert [r.id for r in requests] == ["103"]
    left, approved = pairing.approve_in(
        requests, fresh.code.lower() if fresh else "", None, pairing.TTL_MS + 2000
    )
    assert approved is not None
    assert left == []


def test_pairing_store_files_are_private(tmp_path: Path) -> None:
    store = pairing.PairingStore(tmp_path, "telegram")
    req, created = store.request("55", "default", 0, username="bob")
    assert created
    assert req is not None
    assert store.pending(1) == [req]
    assert store.approve(req.code, None, 2) == req
    assert store.approved("default", True) == {"55"}
    for path in (store.requests_path, store.allow_path("default")):
        assert os.stat(path).st_mode & 0o777 == 0o600
    assert store.pending(3) == []


# -- chunking and HTML ---------------------------------------------------------------------------


def _long_markdown() -> str:
    prose = "".join(f"Sentence number {i} is **bold** & <escaped>. " for i in range(90))
    code = "\n".join(f"let value{i} = {i}; // keep <b> & stuff" for i in range(160))
    text = f"# Report\n\n{prose}\n\n```typescript\n{code}\n```\n\nThe end. " + "tail " * 400
    return text[:10_000]


def test_ten_thousand_characters_with_a_fence_make_three_valid_messages() -> None:
    text = _long_markdown()
    assert len(text) == 10_000
    chunks = split_text(text, 4000)
    assert len(chunks) == 3
    fence_opens = 0
    for chunk in chunks:
        body, is_html = render_or_plain(chunk)
        assert is_html
        plain, error = parse_html(body)  # the fake's own Telegram-HTML rules
        assert error is None, (error, body[:200])
        assert 0 < utf16_len(plain) <= 4096
        fence_opens += chunk.count("```typescript")
    assert fence_opens == 2  # opened once, reopened once after the cut
    assert chunks[1].rstrip().endswith("```")
    assert chunks[2].startswith("```typescript\n")


def test_chunks_never_split_a_surrogate_pair() -> None:
    text = "🙂" * 5000
    chunks = split_text(text, 4000)
    assert "".join(chunks) == text
    assert all(utf16_len(c) <= 4000 for c in chunks)


def test_markdown_renders_to_allowed_tags_and_escapes_the_rest() -> None:
    body, is_html = render_or_plain(
        "**b** _i_ ~~s~~ `a<b` [x](https://e.x/?a=1&b=2) 1 < 2 && 3 > 2"
    )
    assert is_html
    assert body == (
        '<b>b</b> <i>i</i> <s>s</s> <code>a&lt;b</code> <a href="https://e.x/?a=1&amp;b=2">x</a>'
        " 1 &lt; 2 &amp;&amp; 3 &gt; 2"
    )
    assert parse_html(body)[1] is None


# -- inbound parsing, policy, routing --------------------------------------------------------------


def _msg(text: str = "hi", **extra: Any) -> dict[str, Any]:
    return {
        "update_id": 7,
        "message": {
            "message_id": 3,
            "chat": {"id": 42, "type": "private"},
            "from": {"id": 42, "is_bot": False, "first_name": "A"},
            "text": text,
            **extra,
        },
    }


def test_malformed_updates_become_drops_with_a_reason() -> None:
    assert parse_update("x", None) == Drop(None, "update is not an object")
    assert parse_update({"update_id": 1}, None) == Drop(1, "unsupported update type: nothing")
    assert parse_update({"update_id": 1, "callback_query": {}}, None) == Drop(
        1, "unsupported update type: callback_query"
    )
    assert parse_update({"update_id": 1, "message": "nope"}, None) == Drop(
        1, "message is not an object"
    )
    assert isinstance(parse_update(_msg("x" * 20_000), None), Drop)
    lone = parse_update(_msg("caption \ud800 here"), None)
    assert isinstance(lone, Message)
    lone.text.encode("utf-8")  # storable and sendable


def _tg(**telegram: Any) -> Any:
    body = {"botToken": TOKEN, **telegram}
    return resolve_telegram(load({"channels": {"telegram": body}}), {})["default"]


def test_dm_policies() -> None:
    assert dm_decision(_tg(), "5", set()).action == "pair"
    assert dm_decision(_tg(), "5", {"5"}).action == "run"
    assert dm_decision(_tg(allowFrom=["tg:5"]), "5", set()).action == "run"
    assert dm_decision(_tg(dmPolicy="allowlist", allowFrom=["6"]), "5", {"5"}).action == "drop"
    assert dm_decision(_tg(dmPolicy="open", allowFrom=["*"]), "5", set()).action == "run"
    assert dm_decision(_tg(dmPolicy="disabled"), "6", {"6"}).action == "drop"


def _group_msg(text: str, *, entities: list[dict[str, Any]] | None = None, **extra: Any) -> Message:
    update = {
        "update_id": 1,
        "message": {
            "message_id": 9,
            "chat": {"id": -100, "type": "supergroup"},
            "from": {"id": 42, "is_bot": False, "first_name": "A"},
            "text": text,
            "entities": entities or [],
            **extra,
        },
    }
    parsed = parse_update(update, "123456789")
    assert isinstance(parsed, Message)
    return parsed


def test_group_mention_gating() -> None:
    cfg = _tg(allowFrom=["42"], groups={"-100": {}})

    def decide_(msg: Message, patterns: tuple[str, ...] = ()) -> str:
        return group_decision(
            cfg, msg, bot_username="neo_bot", bot_id="123456789", mention_patterns=patterns
        ).action

    assert decide_(_group_msg("just chatting")) == "history"
    mention = [{"type": "mention", "offset": 3, "length": 8}]
    assert decide_(_group_msg("🙂 @Neo_Bot hi", entities=mention)) == "run"  # UTF-16 offsets
    reply = {
        "message_id": 1,
        "from": {"id": 123456789, "is_bot": True, "first_name": "Neo"},
        "text": "x",
    }
    assert decide_(_group_msg("and?", reply_to_message=reply)) == "run"
    assert decide_(_group_msg("hey neo, help"), (r"\bneo\b",)) == "run"
    command = [{"type": "bot_command", "offset": 0, "length": 13}]
    assert decide_(_group_msg("/help@neo_bot", entities=command)) == "run"
    other = group_decision(
        _tg(allowFrom=["42"], groups={"-200": {}}),
        _group_msg("@neo_bot", entities=mention),
        bot_username="neo_bot",
        bot_id=None,
    )
    assert (other.action, other.reason) == (
        "drop",
        "group -100 not allowlisted (add it under groups)",
    )
    # approved by DM pairing but not in groupAllowFrom: dropped
    stranger = group_decision(
        _tg(allowFrom=["7"], groupAllowFrom=["8"], groups={"*": {"requireMention": False}}),
        _group_msg("hi"),
        bot_username="neo_bot",
        bot_id=None,
    )
    assert stranger.action == "drop"


def test_session_keys_follow_dm_scope() -> None:
    def rest(scope: str, kind: PeerKind = "direct", thread: int | None = None) -> str:
        config = load({"session": {"dmScope": scope}})
        return session_rest(
            config,
            channel="telegram",
            account_id="ops",
            peer_kind=kind,
            peer_id="42",
            thread_id=thread,
        )

    assert rest("main") == "main"
    assert rest("per-peer") == "direct:42"
    assert rest("per-channel-peer") == "telegram:direct:42"
    assert rest("per-account-channel-peer") == "telegram:ops:direct:42"
    assert rest("main", "group") == "telegram:group:42"
    assert rest("main", "group", 3) == "telegram:group:42:topic:3"
    linked = load({"session": {"dmScope": "per-peer", "identityLinks": {"bob": ["telegram:42"]}}})
    assert (
        session_rest(linked, channel="telegram", account_id="a", peer_kind="direct", peer_id="42")
        == "direct:bob"
    )


def test_bindings_pick_the_agent_peer_then_account_then_channel() -> None:
    config = load(
        {
            "agents": {
                "list": [
                    {"id": "main", "default": True},
                    {"id": "ops"},
                    {"id": "vip"},
                    {"id": "tg"},
                ]
            },
            "bindings": [
                {"agentId": "tg", "match": {"channel": "telegram"}},
                {"agentId": "ops", "match": {"channel": "telegram", "accountId": "ops"}},
                {
                    "agentId": "vip",
                    "match": {"channel": "telegram", "peer": {"kind": "direct", "id": "42"}},
                },
            ],
        }
    )

    def agent(account: str, peer: str) -> str:
        return select_agent(
            config, channel="telegram", account_id=account, peer_kind="direct", peer_id=peer
        )

    assert agent("ops", "42") == "vip"
    assert agent("ops", "7") == "ops"
    assert agent("default", "7") == "tg"


def test_bot_urls_are_masked_in_logs() -> None:
    redactor = Redactor()
    line = f"POST https://api.telegram.org/bot{TOKEN}/getUpdates failed"
    assert TOKEN not in redactor.text(line)
    assert "123:short" not in redactor.text("GET http://127.0.0.1:1/bot123:short/getMe")
