"""The sans-IO parts of agent runs: SSE decoding, retry timing, session keys, transcripts,
the idempotency cache, agent selection and the OpenAI request translation."""

from __future__ import annotations

import email.utils
from pathlib import Path

import pytest

from gateway.agent import transcript
from gateway.agent.agents import agent_specs, resolve_model
from gateway.agent.dedupe import IdempotencyCache
from gateway.agent.keys import (
    file_stem,
    parse_session_key,
    rest_from_stem,
)
from gateway.agent.providers.base import ToolCall
from gateway.agent.providers.http import MAX_BACKOFF_S, error_text, retry_delay
from gateway.agent.providers.sse import SseDecoder, SseEvent
from gateway.agent.tools import HTTP_DENY, TOOLS, allowed, http_allowed
from gateway.config.load import parse
from gateway.config.model import ToolPolicy
from gateway.errors import ConfigError, FormatError, ModelConfigError, SelectError, SessionKeyError
from gateway.openai.chat_format import parse_chat
from gateway.openai.responses_format import parse_responses
from gateway.openai.select import Target, agent_from_model, select_target


def test_sse_decoder_handles_split_chunks_comments_and_crlf() -> None:
    decoder = SseDecoder()
    assert decoder.feed('data: {"a"') == []
    assert decoder.feed(":1}\r\n\r\n: keep-alive\n\nevent: done\ndata: x\ndata: y\r") == [
        SseEvent("message", '{"a":1}')
    ]
    assert decoder.feed("\n") == [SseEvent("done", "x\ny")]
    assert decoder.feed("data: tail") == []
    assert decoder.flush() == [SseEvent("message", "tail")]


def test_retry_delay_honours_retry_after_else_backs_off_with_jitter() -> None:
    assert retry_delay(0, "3", now_epoch=0, rand=0.9) == 3.0
    when = email.utils.formatdate(1_000_010, usegmt=True)
    assert retry_delay(0, when, now_epoch=1_000_000, rand=0.5) == pytest.approx(10.0)
    assert retry_delay(0, "garbage", now_epoch=0, rand=0.0) == 0.25
    assert retry_delay(0, None, now_epoch=0, rand=1.0) == 0.5
    assert retry_delay(2, None, now_epoch=0, rand=0.0) == 1.0
    assert retry_delay(30, None, now_epoch=0, rand=1.0) == MAX_BACKOFF_S


def test_provider_error_text() -> None:
    assert error_text(b'{"error": {"message": "bad key", "type": "auth"}}') == "bad key"
    assert error_text(b'{"error": "overloaded"}') == "overloaded"
    assert error_text(b"<html>502</html>") == "<html>502</html>"


def test_session_keys() -> None:
    assert parse_session_key("Main", "main") == ("main", "main")
    assert parse_session_key("agent:Helper:openai-user:Bob", "main") == (
        "helper",
        "openai-user:bob",
    )
    for bad, message in (
        ("", "must not be empty"),
        ("agent:main", "must look like agent:<agentId>:<key>"),
        ("agent:-x:y", 'invalid agent id "-x"'),
        ("a\x00b", "control characters"),
    ):
        with pytest.raises(SessionKeyError, match=message):
            parse_session_key(bad, "main")
    for rest in ("main", "openai-user:bob/..", "..", "ünï cödé"):
        stem = file_stem(rest)
        assert "/" not in stem
        assert stem not in (".", "..")
        assert rest_from_stem(stem) == rest


def test_model_history_is_bounded_and_drops_half_tool_pairs() -> None:
    call = ToolCall("c1", "read_file", "{}")
    records = [
        transcript.header("agent:main:main", 0),
        transcript.user_message("r1", "old question", 1),
        transcript.assistant_message("r1", "", [call], 2, provider="p", model="m", stop_reason="x"),
        transcript.tool_result("r1", call, "file text", False, 3),
        transcript.assistant_message(
            "r1", "old answer", [], 4, provider="p", model="m", stop_reason="stop"
        ),
        transcript.run_end("r1", "ok", "completed", 4, 4),
        transcript.user_message("r2", "cut off", 5),
        transcript.assistant_message(
            "r2", "half", [ToolCall("c2", "x", "{}")], 6, provider="p", model="m", stop_reason="x"
        ),
    ]
    full = transcript.model_history(transcript.decode(transcript.encode(records)), 100)
    assert [(m.role, m.text) for m in full] == [
        ("user", "old question"),
        ("assistant", ""),
        ("tool", "file text"),
        ("assistant", "old answer"),
        ("user", "cut off"),
        ("assistant", "half"),  # its unanswered call is dropped, the text kept
    ]
    assert full[-1].tool_calls == ()
    # a window that starts inside a tool exchange is moved to the next user turn
    assert [m.text for m in transcript.model_history(records, 4)] == ["cut off", "half"]
    assert transcript.model_history(records, 0) == ()


def test_chat_messages_mark_runs_without_an_end_as_interrupted() -> None:
    records = [
        transcript.user_message("r1", "x" * 20, 1),
        transcript.user_message("r2", "running", 2),
        transcript.user_message("r3", "crashed", 3),
    ]
    messages = transcript.chat_messages(records, {"r2"}, max_chars=10)
    assert [(m.role, m.run_id, m.stop_reason) for m in messages] == [
        ("user", "r1", None),
        ("system", "r1", "interrupted"),
        ("user", "r2", None),
        ("user", "r3", None),
        ("system", "r3", "interrupted"),
    ]
    assert messages[0].content[0].truncated is True
    window, more, offset = transcript.page(messages, 2, 1)
    assert [m.run_id for m in window] == ["r2", "r3"]
    assert (more, offset) == (True, 3)


def test_decode_skips_damaged_lines() -> None:
    assert transcript.decode('{"type":"session"}\nnot json\n[1]\n{"type":"run"}\n') == [
        {"type": "session"},
        {"type": "run"},
    ]


def test_idempotency_cache_expires_and_is_bounded() -> None:
    cache: IdempotencyCache[str] = IdempotencyCache(ttl_ms=1000, max_entries=2)
    cache.put("a", "A", now_ms=0)
    cache.put("b", "B", now_ms=500)
    assert cache.get("a", now_ms=1000) == "A"
    assert cache.get("a", now_ms=1001) is None
    cache.put("c", "C", now_ms=1100)
    cache.put("d", "D", now_ms=1200)
    assert (cache.get("b", 1200), cache.get("c", 1200), cache.get("d", 1200)) == (None, "C", "D")
    assert len(cache) == 2


def test_agents_and_model_resolution(tmp_path: Path) -> None:
    config, _ = parse(
        """{
          models: { providers: { local: { baseUrl: "http://x/v1", models: [{ id: "m", maxTokens: 99 }] } } },
          agents: { list: [{ id: "Work", default: true }, { id: "home", model: { primary: "local/other" },
                             workspace: "~/h" }] },
        }""",
        {},
    )
    work, home = agent_specs(config, tmp_path)
    assert (work.id, work.is_default, work.workspace) == ("work", True, tmp_path / "workspace-work")
    assert home.workspace == Path("~/h").expanduser()
    first = resolve_model(config, work)
    assert (first.label, first.max_tokens) == ("local/m", 99)
    assert resolve_model(config, home).label == "local/other"

    duplicate, _ = parse('{agents: {list: [{id: "a"}, {id: "A"}]}}', {})
    with pytest.raises(ModelConfigError, match=r'agents.list\[1\].id: duplicate agent id "a"'):
        agent_specs(duplicate, tmp_path)
    bad_ref, _ = parse('{agents: {defaults: {model: {primary: "no-slash"}}}}', {})
    (spec,) = agent_specs(bad_ref, tmp_path)
    with pytest.raises(ModelConfigError, match='expected "<provider>/<model id>"'):
        resolve_model(bad_ref, spec)


def test_tool_policy() -> None:
    assert allowed("read_file", ToolPolicy(), ToolPolicy(allow=["read_*"]))
    assert not allowed("read_file", ToolPolicy(deny=["*"]), ToolPolicy(allow=["read_file"]))
    assert not allowed("current_time", ToolPolicy(allow=["read_*"]))
    assert "exec" in HTTP_DENY
    read = TOOLS["read_file"]
    assert http_allowed(read, ToolPolicy())
    assert not http_allowed(read, ToolPolicy(deny=["read_file"]))


def test_agent_selection() -> None:
    assert agent_from_model("smart-agent-neo") == ""
    assert agent_from_model("smart-agent-neo/default") == ""
    assert agent_from_model("smart-agent-neo:Work") == "work"
    assert agent_from_model("agent:home") == "home"
    assert agent_from_model("gpt-4o") is None

    def pick(headers: dict[str, str], model: str | None, user: str | None) -> Target:
        return select_target(
            headers,
            model,
            user,
            known_agents=["main", "work"],
            default_agent="main",
            prefix="openai",
        )

    target = pick({}, "agent:work", "Bob")
    assert (target.agent_id, target.session_key) == ("work", "agent:work:openai-user:bob")
    header = {"x-smart-agent-neo-agent-id": "work", "x-smart-agent-neo-session-key": "s1"}
    assert pick(header, "gpt-4o", None).session_key == "s1"
    assert pick({}, None, None).session_key.startswith("agent:main:openai:")
    with pytest.raises(SelectError) as unknown:
        pick({}, "smart-agent-neo/ghost", None)
    assert unknown.value.http_status == 404
    with pytest.raises(SelectError, match="reserved session key prefix"):
        pick({"x-smart-agent-neo-session-key": "cron:x"}, None, None)


def test_chat_request_translation() -> None:
    request = parse_chat(
        {
            "model": "smart-agent-neo",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "What is 2+2?"},
                {"role": "assistant", "content": "4"},
                {"role": "user", "content": [{"type": "text", "text": "And 3+3?"}]},
            ],
        }
    )
    assert request.message == "And 3+3?"
    assert [(m.role, m.text) for m in request.prelude] == [
        ("user", "What is 2+2?"),
        ("assistant", "4"),
    ]
    assert request.system == "Be brief."
    image_only = parse_chat(
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}
    )
    assert image_only.message == "User sent image(s) with no text."
    cases: list[tuple[dict[str, object], str]] = [
        ({"messages": []}, "Missing user message in `messages`."),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content: expected a string"),
        ({"messages": [{"role": "user", "content": "x"}], "top_p": -1}, "top_p: expected a number"),
        (
            {"messages": [{"role": "user", "content": "x"}], "max_tokens": 0},
            "max_tokens: expected a positive",
        ),
        (
            {"messages": [{"role": "user", "content": "x"}], "stream": "yes"},
            "stream: expected true or false",
        ),
    ]
    for body, message in cases:
        with pytest.raises(FormatError, match=message.replace("[", r"\[").replace("]", r"\]")):
            parse_chat(body)


def test_responses_request_translation() -> None:
    request = parse_responses(
        {
            "model": "smart-agent-neo",
            "instructions": "Be kind.",
            "input": [
                {"type": "message", "role": "developer", "content": "Use metric."},
                {"role": "user", "content": [{"type": "input_text", "text": "hi"}]},
                {"type": "function_call_output", "call_id": "c1", "output": "42"},
            ],
        }
    )
    assert request.message == "Tool result (c1): 42"
    assert request.system == "Be kind.\n\nUse metric."
    bad: list[tuple[dict[str, object], str]] = [
        ({"input": "x"}, "model: is required"),
        ({"model": "m", "input": 5}, "input: is required"),
        # OPERATIONS.md A.5's texts first, then our refusal of client-side tools
        (
            {"model": "m", "input": "x", "tool_choice": "required"},
            "^tool_choice=required but no tools were provided$",
        ),
        (
            {"model": "m", "input": "x", "tool_choice": {"type": "function", "name": "f"}},
            "^tool_choice requested unknown tool: f$",
        ),
        (
            {
                "model": "m",
                "input": "x",
                "tools": [{"type": "function", "name": "f"}],
                "tool_choice": "required",
            },
            "tool_choice: only auto/none",
        ),
        ({"model": "m", "input": [{"type": "mystery"}]}, "unsupported input item type"),
    ]
    for body, message in bad:
        with pytest.raises(FormatError, match=message):
            parse_responses(body)


def test_chat_history_size_caps() -> None:
    records = [transcript.user_message(f"r{i}", "x" * 1000, i) for i in range(5)]
    records.append(transcript.user_message("big", "y" * 5000, 9))
    messages = transcript.chat_messages(records, {"r0", "r1", "r2", "r3", "r4", "big"}, 10_000)
    capped = transcript.cap_size(messages, max_message=4000, max_total=2500)
    assert [m.run_id for m in capped] == ["r3", "r4", "big"]
    assert capped[-1].content[0].text is not None
    assert capped[-1].content[0].text.startswith("[message omitted:")


def test_provider_config_takes_keys_from_the_environment_and_names_bad_keys() -> None:
    text = """{ models: { providers: { p: { baseUrl: "http://x/v1", apiKey: "${MY_KEY}",
                  headers: { "x-org": "${ORG}" } } } } }"""
    config, warnings = parse(text, {"MY_KEY": "sk-secret"})
    provider = config.models.providers["p"]
    assert provider.api_key == "sk-secret"
    assert warnings == ["models.providers.p.headers.x-org: environment variable ORG is not set"]
    bad = '{ models: { providers: { p: { api: "grpc", maxRetries: 99 } } } }'
    with pytest.raises(ConfigError) as raised:
        parse(bad, {})
    assert raised.value.problems == [
        'models.providers.p.api: expected one of "openai-completions", "openai-responses", '
        '"anthropic-messages", got "grpc"',
        "models.providers.p.maxRetries: expected an integer 0-10, got 99",
        "models.providers.p.baseUrl: is required",
    ]
