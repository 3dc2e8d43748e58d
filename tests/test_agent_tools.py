"""The tool-call loop against each provider wire format, and the built-in tools' limits."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest
import trio
from gateway_client import GatewayRpcError, open_client

from gateway.config.model import ToolPolicy

from .conftest import TOKEN, StartGateway, make_settings
from .fakeprovider import anthropic_sse, chat_sse, responses_sse, start_fake_provider
from .test_agent_runs import provider_config, run_agent


def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "notes.txt").write_text("the password is swordfish\n")
    (tmp_path / "secret.txt").write_text("outside\n")
    (ws / "escape.txt").symlink_to(tmp_path / "secret.txt")
    return ws


async def test_tool_loop_with_chat_completions(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """The model calls read_file (inside, ``..`` outside, a symlink out) and current_time;
    every result goes back to it; the events show each step; the reply ends the loop."""
    fake = await start_fake_provider(nursery)
    calls = (
        ("call_1", "read_file", json.dumps({"path": "notes.txt"})),
        ("call_2", "read_file", json.dumps({"path": "../secret.txt"})),
        ("call_3", "read_file", json.dumps({"path": "escape.txt"})),
        ("call_4", "current_time", json.dumps({"timezone": "Europe/Paris"})),
        ("call_5", "no_such_tool", "{}"),
    )
    fake.queue(chat_sse("Let me look. ", tool_calls=calls), chat_sse("It says swordfish."))
    ws = workspace(tmp_path)
    config = provider_config(fake, agents={"workspace": str(ws)})
    running = await start_gateway(make_settings(tmp_path / "state", config=config))
    async with (
        open_client(running.url, token=TOKEN, caps=["tool-events"]) as c,
        open_client(running.url, token=TOKEN) as plain,
        c.subscribe({"agent"}) as events,
        plain.subscribe({"agent"}) as plain_events,
    ):
        final = await run_agent(c, "tools", "what does my note say?")
        history = await c.call("chat.history", {"sessionKey": "main"})
        steps = []
        while True:
            frame = events.receive_nowait()
            if frame["payload"]["stream"] == "tool":
                steps.append(frame["payload"]["data"])
            if frame["payload"]["data"].get("phase") == "end":
                break
        # PROTOCOL 4.4: a client that did not advertise caps ["tool-events"] sees the run but
        # none of its tool steps
        plain_streams = set()
        while True:
            with trio.fail_after(10):  # another connection: its frames may still be in flight
                frame = await plain_events.receive()
            plain_streams.add(frame["payload"]["stream"])
            if frame["payload"]["data"].get("phase") == "end":
                break
        assert "tool" not in plain_streams
        assert "assistant" in plain_streams
    first, second = (r.body for r in fake.requests)
    assert sorted(t["function"]["name"] for t in first["tools"]) == [
        "current_time",
        "gateway_status",
        "read_file",
        "sessions_list",
    ]
    results = {m["tool_call_id"]: m["content"] for m in second["messages"] if m["role"] == "tool"}
    assert json.loads(results["call_1"])["content"] == "the password is swordfish\n"
    assert "outside the agent workspace" in results["call_2"]
    assert "outside the agent workspace" in results["call_3"]
    assert json.loads(results["call_4"])["timezone"] == "Europe/Paris"
    assert results["call_5"] == "tool not available: no_such_tool"
    assistant = next(m for m in second["messages"] if m["role"] == "assistant")
    assert [c["id"] for c in assistant["tool_calls"]] == [c[0] for c in calls]
    assert final["result"]["payloads"] == [
        {"text": "Let me look. "},
        {"text": "It says swordfish."},
    ]
    assert [(s["phase"], s["toolCallId"]) for s in steps[:2]] == [
        ("start", "call_1"),
        ("result", "call_1"),
    ]
    assert [s["isError"] for s in steps if s["phase"] == "result"] == [
        False,
        True,
        True,
        False,
        True,
    ]
    roles = [m["role"] for m in history["messages"]]
    assert roles == ["user", "assistant", *["toolResult"] * 5, "assistant"]


async def test_tool_steps_are_bounded(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    fake = await start_fake_provider(nursery)
    loop = (("c", "gateway_status", "{}"),)
    fake.queue(chat_sse(tool_calls=loop), chat_sse(tool_calls=loop))
    config = provider_config(fake, agents={"maxToolSteps": 2})
    running = await start_gateway(make_settings(tmp_path, config=config))
    async with open_client(running.url, token=TOKEN) as c:
        with pytest.raises(GatewayRpcError) as raised:
            await run_agent(c, "loop")
    assert raised.value.message.startswith("stopped after 2 model calls")
    assert len(fake.requests) == 2


async def test_tools_policy_hides_denied_tools(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    fake = await start_fake_provider(nursery)
    fake.queue(chat_sse(tool_calls=(("c", "read_file", '{"path": "x"}'),)), chat_sse("ok"))
    config = attrs.evolve(provider_config(fake), tools=ToolPolicy(deny=["read_*"]))
    running = await start_gateway(make_settings(tmp_path, config=config))
    async with open_client(running.url, token=TOKEN) as c:
        await run_agent(c, "policy")
    names = [t["function"]["name"] for t in fake.requests[0].body["tools"]]
    assert "read_file" not in names
    tool_reply = next(m for m in fake.requests[1].body["messages"] if m["role"] == "tool")
    assert tool_reply["content"] == "tool not available: read_file"


async def test_anthropic_messages_stream_and_tool_use(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    fake = await start_fake_provider(nursery, prefix="")
    fake.queue(
        anthropic_sse("Checking.", tool_use=("toolu_1", "read_file", '{"path": "notes.txt"}')),
        anthropic_sse("Swordfish, ", "it says."),
    )
    ws = workspace(tmp_path)
    config = provider_config(fake, api="anthropic-messages", agents={"workspace": str(ws)})
    running = await start_gateway(make_settings(tmp_path / "state", config=config))
    async with open_client(running.url, token=TOKEN) as c:
        final = await run_agent(c, "claude", "read my note")
    first, second = fake.requests
    assert first.path == "/v1/messages"
    assert first.headers["x-api-key"] == "sk-test"
    assert first.headers["anthropic-version"] == "2023-06-01"
    assert first.body["model"] == "fake-model"
    assert first.body["max_tokens"] == 4096
    assert isinstance(first.body["system"], str)
    assert first.body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "read my note"}]}
    ]
    assert {t["name"] for t in first.body["tools"]} >= {"read_file"}
    assistant, tool_turn = second.body["messages"][1:]
    assert assistant["content"][1] == {
        "type": "tool_use",
        "id": "toolu_1",
        "name": "read_file",
        "input": {"path": "notes.txt"},
    }
    (result,) = tool_turn["content"]
    assert result["type"] == "tool_result"
    assert result["tool_use_id"] == "toolu_1"
    assert "swordfish" in result["content"]
    assert final["result"]["payloads"][-1] == {"text": "Swordfish, it says."}
    assert final["result"]["meta"]["agentMeta"]["usage"]["input"] == 18


async def test_openai_responses_stream_and_function_call(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    fake = await start_fake_provider(nursery)
    fake.queue(
        responses_sse(function_call=("call_9", "gateway_status", "{}")),
        responses_sse("All ", "good."),
    )
    config = provider_config(fake, api="openai-responses")
    running = await start_gateway(make_settings(tmp_path, config=config))
    async with open_client(running.url, token=TOKEN) as c:
        final = await run_agent(c, "responses", "how are you?")
    first, second = fake.requests
    assert first.path == "/v1/responses"
    assert first.headers["authorization"] == "Bearer sk-test"
    assert first.body["model"] == "fake-model"
    assert first.body["input"] == [
        {"role": "user", "content": [{"type": "input_text", "text": "how are you?"}]}
    ]
    assert "instructions" in first.body
    call, output = second.body["input"][1:]
    assert call == {
        "type": "function_call",
        "call_id": "call_9",
        "name": "gateway_status",
        "arguments": "{}",
    }
    assert output["type"] == "function_call_output"
    assert output["call_id"] == "call_9"
    assert json.loads(output["output"])["activeRuns"] == 1
    assert final["result"]["payloads"] == [{"text": "All good."}]


def test_every_registered_tool_has_a_valid_parameters_schema() -> None:
    """What register() used to check at import time (jsonschema is imported on first use)."""
    from gateway.agent.tools import TOOLS
    from gateway.agent.tools.registry import check_schema

    assert TOOLS
    for tool in TOOLS.values():
        check_schema(tool)
