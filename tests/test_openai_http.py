"""The OpenAI-compatible HTTP APIs (OPERATIONS.md A.0-A.3, A.5), with the official ``openai``
SDK as the client (sync, in a worker thread) and a loopback provider double as the model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import trio
from gateway_client import open_client

from gateway.app import Running
from gateway.config.load import parse
from gateway.config.model import Config
from gateway.server import agent_http

from .conftest import TOKEN, StartGateway, in_thread, make_settings
from .fakeprovider import FakeProvider, chat_sse, error_reply, start_fake_provider


def http_config(
    fake: FakeProvider | None = None, *, chat: bool = True, responses: bool = True, **gateway: Any
) -> Config:
    raw: dict[str, Any] = {
        "gateway": {
            "http": {
                "endpoints": {
                    "chatCompletions": {"enabled": chat},
                    "responses": {"enabled": responses},
                }
            },
            **gateway,
        },
        "agents": {"list": [{"id": "main", "default": True}, {"id": "helper"}]},
    }
    if fake is not None:
        raw["models"] = {
            "providers": {
                "fake": {"baseUrl": fake.base_url, "apiKey": "sk-test", "models": [{"id": "m1"}]}
            }
        }
    config, _ = parse(json.dumps(raw), {})
    return config


def base(running: Running) -> str:
    return running.url.replace("ws://", "http://")


def sdk(running: Running, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=base(running) + "/v1", api_key=TOKEN, max_retries=0, timeout=10, **kwargs
    )


async def test_endpoints_are_off_by_default_but_tools_invoke_is_on(gateway: Running) -> None:
    async with httpx.AsyncClient(base_url=base(gateway)) as http:
        headers = {"authorization": f"Bearer {TOKEN}"}
        chat = await http.post("/v1/chat/completions", json={}, headers=headers)
        models = await http.get("/v1/models", headers=headers)
        responses = await http.post("/v1/responses", json={}, headers=headers)
        tools = await http.post("/tools/invoke", json={"tool": "current_time"})
    assert [r.status_code for r in (chat, models, responses)] == [404, 404, 404]
    assert tools.status_code == 401
    # the OpenAI-style error shape, plus the endpoint's own "ok" (issue 17: one shape)
    assert tools.json() == {
        "ok": False,
        "error": {"message": "Unauthorized", "type": "unauthorized"},
    }


async def test_chat_completions_with_the_openai_sdk(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    """Non-streaming and streaming: the user's message and the configured model id reach
    the provider; the answer reaches the SDK; the stream ends with finish_reason stop,
    a usage chunk when asked, and [DONE]."""
    fake = await start_fake_provider(nursery)
    fake.queue(chat_sse("Paris is ", "the capital."), chat_sse("Streamed ", "answer."))
    running = await start_gateway(make_settings(tmp_path, config=http_config(fake)))

    def talk() -> tuple[Any, list[Any]]:
        with sdk(running) as client:
            reply = client.chat.completions.create(
                model="smart-agent-neo",
                messages=[
                    {"role": "system", "content": "Answer briefly."},
                    {"role": "user", "content": "What is the capital of France?"},
                ],
            )
            stream = client.chat.completions.create(
                model="smart-agent-neo/helper",
                messages=[{"role": "user", "content": [{"type": "text", "text": "Stream it"}]}],
                stream=True,
                stream_options={"include_usage": True},
            )
            return reply, list(stream)

    reply, chunks = await in_thread(talk)
    assert reply.choices[0].message.content == "Paris is the capital."
    assert reply.choices[0].finish_reason == "stop"
    assert reply.model == "smart-agent-neo"
    assert reply.id.startswith("chatcmpl_")
    assert reply.usage is not None
    assert reply.usage.total_tokens == 18
    first, second = (r.body for r in fake.requests)
    assert first["model"] == "m1"
    assert first["messages"][-1] == {"role": "user", "content": "What is the capital of France?"}
    assert "Answer briefly." in first["messages"][0]["content"]
    assert second["messages"][-1] == {"role": "user", "content": "Stream it"}
    assert "agent id helper" in second["messages"][0]["content"]
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Streamed answer."
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == 11


async def test_offline_model_and_sticky_user_sessions(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    running = await start_gateway(make_settings(tmp_path, config=http_config()))

    def talk() -> list[str]:
        with sdk(running) as client:
            out = []
            for text in ("first", "second"):
                reply = client.chat.completions.create(
                    model="agent:main", user="Alice", messages=[{"role": "user", "content": text}]
                )
                out.append(reply.choices[0].message.content or "")
            return out

    replies = await in_thread(talk)
    assert replies[1].endswith("You said: second")
    async with open_client(running.url, token=TOKEN) as c:
        history = await c.call("chat.history", {"sessionKey": "agent:main:openai-user:alice"})
    assert [m["role"] for m in history["messages"]] == ["user", "assistant"] * 2


async def test_models_list_and_detail(start_gateway: StartGateway, tmp_path: Path) -> None:
    running = await start_gateway(make_settings(tmp_path, config=http_config()))

    def talk() -> tuple[list[str], str, Exception, Exception]:
        with sdk(running) as client:
            ids = [m.id for m in client.models.list()]
            detail = client.models.retrieve("smart-agent-neo/helper").id
            try:
                client.models.retrieve("smart-agent-neo/nobody")
            except openai.NotFoundError as exc:
                missing: Exception = exc
            try:
                client.models.retrieve("gpt-4o")
            except openai.BadRequestError as exc:
                invalid: Exception = exc
            return ids, detail, missing, invalid

    ids, detail, missing, invalid = await in_thread(talk)
    assert ids == [
        "smart-agent-neo",
        "smart-agent-neo/default",
        "smart-agent-neo/main",
        "smart-agent-neo/helper",
    ]
    assert detail == "smart-agent-neo/helper"
    assert "Model 'smart-agent-neo/nobody' not found." in str(missing)
    assert "Invalid model id." in str(invalid)
    # A.3: a broken escape or non-UTF-8 bytes in the id are an encoding error; a valid
    # escape is decoded first (smart-agent-neo%2Fhelper is smart-agent-neo/helper)
    for path, status, message in (
        ("/v1/models/smart-agent-neo%2Fhelper", 200, None),
        ("/v1/models/smart-agent-neo%2", 400, "Invalid model id encoding."),
        ("/v1/models/%E0%A4", 400, "Invalid model id encoding."),
        ("/v1/models/", 400, "Missing model id."),
    ):
        got_status, body = await raw_get(running, path)
        assert got_status == status, path
        if message is not None:
            assert json.loads(body) == {
                "error": {"message": message, "type": "invalid_request_error"}
            }


async def raw_get(running: Running, path: str) -> tuple[int, bytes]:
    """A GET sent byte for byte (an HTTP client would re-encode a broken escape)."""
    stream = await trio.open_tcp_stream("127.0.0.1", running.port)
    async with stream:
        head = (
            f"GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {TOKEN}\r\n"
            "connection: close\r\n\r\n"
        )
        await stream.send_all(head.encode())
        data = b""
        with trio.fail_after(10):
            while chunk := await stream.receive_some():
                data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[1]


async def test_responses_with_the_openai_sdk(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    fake = await start_fake_provider(nursery)
    fake.queue(chat_sse("Hello ", "there."), chat_sse("Streaming ", "too."), chat_sse("Again."))
    running = await start_gateway(make_settings(tmp_path, config=http_config(fake)))

    def talk() -> tuple[Any, list[Any], Any]:
        with sdk(running) as client:
            reply = client.responses.create(
                model="smart-agent-neo", input="Say hello", instructions="Be nice."
            )
            events = list(
                client.responses.create(model="smart-agent-neo", input="Stream", stream=True)
            )
            follow_up = client.responses.create(
                model="smart-agent-neo", input="And again", previous_response_id=reply.id
            )
            return reply, events, follow_up

    reply, events, follow_up = await in_thread(talk)
    assert reply.output_text == "Hello there."
    assert reply.status == "completed"
    assert "Be nice." in fake.requests[0].body["messages"][0]["content"]
    assert fake.requests[0].body["messages"][-1] == {"role": "user", "content": "Say hello"}
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == "Streaming too."
    assert events[-1].response.output[0].content[0].text == "Streaming too."
    assert follow_up.output_text == "Again."
    previous_turns = [m["content"] for m in fake.requests[2].body["messages"][1:]]
    assert previous_turns == ["Say hello", "Hello there.", "And again"]


async def test_http_error_statuses_and_bodies(start_gateway: StartGateway, tmp_path: Path) -> None:
    """OPERATIONS.md A.0: 400 (bad JSON, validation naming the field), 401, 404, 405 with
    Allow, 413 over the body limit, 429 with Retry-After once locked out."""
    raw_limit = {"endpoints": {"chatCompletions": {"enabled": True, "maxBodyBytes": 2048}}}
    config, _ = parse(
        json.dumps(
            {
                "gateway": {
                    "http": raw_limit,
                    "auth": {"rateLimit": {"maxAttempts": 2, "exemptLoopback": False}},
                }
            }
        ),
        {},
    )
    running = await start_gateway(make_settings(tmp_path, config=config))
    auth = {"authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=base(running)) as http:
        bad_json = await http.post("/v1/chat/completions", content=b"{nope", headers=auth)
        no_messages = await http.post("/v1/chat/completions", json={"model": "x"}, headers=auth)
        empty_body = await http.post("/v1/chat/completions", headers=auth)
        not_a_list = await http.post("/v1/chat/completions", json={"messages": "hi"}, headers=auth)
        bad_role = await http.post(
            "/v1/chat/completions", json={"messages": [{"role": "robot"}]}, headers=auth
        )
        hot = await http.post(
            "/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "x"}], "temperature": 3},
            headers=auth,
        )
        unknown_agent = await http.post(
            "/v1/chat/completions",
            json={"model": "agent:ghost", "messages": [{"role": "user", "content": "x"}]},
            headers=auth,
        )
        get = await http.get("/v1/chat/completions", headers=auth)
        too_big = await http.post("/v1/chat/completions", content=b"x" * 4096, headers=auth)
        missing_auth = await http.post("/v1/chat/completions", json={})
        wrong = [
            await http.post("/v1/chat/completions", json={}, headers={"authorization": "Bearer no"})
            for _ in range(3)
        ]
        locked = await http.post("/v1/chat/completions", json={}, headers=auth)
    assert bad_json.status_code == 400
    assert bad_json.json()["error"]["message"].startswith("Invalid JSON body")
    assert bad_json.json()["error"]["type"] == "invalid_request_error"
    # A.0: an empty body is {}; A.2: no user message is said one way
    assert no_messages.json()["error"]["message"] == "Missing user message in `messages`."
    assert empty_body.status_code == 400
    assert empty_body.json() == {
        "error": {"message": "Missing user message in `messages`.", "type": "invalid_request_error"}
    }
    assert not_a_list.json()["error"]["message"] == "messages: is required and must be an array"
    assert bad_role.json()["error"]["message"].startswith("messages[0].role: expected one of")
    assert hot.json()["error"]["message"] == "temperature: expected a number from 0 to 2, got 3"
    assert unknown_agent.status_code == 404
    assert unknown_agent.json()["error"]["message"] == "Model 'agent:ghost' not found."
    assert get.status_code == 405
    assert get.headers["allow"] == "POST"
    assert too_big.status_code == 413
    assert too_big.json() == {
        "error": {"message": "Payload too large", "type": "invalid_request_error"}
    }
    assert missing_auth.status_code == 401
    assert [r.status_code for r in wrong] == [401, 401, 429]
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) > 0
    assert locked.json()["error"]["type"] == "rate_limited"


async def post_raw(running: Running, body: dict[str, Any]) -> trio.SocketStream:
    """A POST over a plain socket (so the test decides exactly when the client goes away)."""
    payload = json.dumps(body).encode()
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nhost: gateway\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(payload)}\r\nauthorization: Bearer {TOKEN}\r\n"
        "x-smart-agent-neo-session-key: agent:main:d\r\n\r\n"
    )
    stream = await trio.open_tcp_stream("127.0.0.1", running.port)
    await stream.send_all(head.encode() + payload)
    return stream


async def test_client_disconnect_aborts_the_run(
    nursery: trio.Nursery,
    start_gateway: StartGateway,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """FAILURE-MODES.md 31: SSE keep-alives flow while the model is quiet; a client that goes
    away (streaming or not) aborts its run, and the transcript says so."""
    monkeypatch.setattr(agent_http, "KEEPALIVE_S", 0.05)
    fake = await start_fake_provider(nursery)
    fake.queue(chat_sse("partial ", "text", hold_after=2), chat_sse("never", hold_after=1))
    running = await start_gateway(make_settings(tmp_path, config=http_config(fake)))
    body = {"model": "smart-agent-neo", "messages": [{"role": "user", "content": "go"}]}
    agents = running.runtime.agents
    with trio.fail_after(10):
        stream = await post_raw(running, {**body, "stream": True})
        received = b""
        while b": keep-alive" not in received:  # role chunk, first words, then quiet
            received += await stream.receive_some()
        await stream.aclose()
        (run,) = agents.active.values()
        await run.done.wait()
        fake.streaming = trio.Event()
        stream = await post_raw(running, body)
        await fake.streaming.wait()
        await stream.aclose()
        (run,) = agents.active.values()
        await run.done.wait()
    async with open_client(running.url, token=TOKEN) as c:
        history = await c.call("chat.history", {"sessionKey": "agent:main:d"})
    system = [m["content"][0]["text"] for m in history["messages"] if m["role"] == "system"]
    assert system == ["Run aborted: client disconnected"] * 2
    assistant = [m["content"][0]["text"] for m in history["messages"] if m["role"] == "assistant"]
    assert assistant[0] == "partial "  # what the provider had sent before the client left


async def test_run_failure_is_an_api_error(
    nursery: trio.Nursery, start_gateway: StartGateway, tmp_path: Path
) -> None:
    fake = await start_fake_provider(nursery)
    fake.queue(error_reply(401, "bad key"), error_reply(401, "bad key"))
    running = await start_gateway(make_settings(tmp_path, config=http_config(fake)))

    def talk() -> tuple[Exception, list[Any]]:
        with sdk(running) as client:
            try:
                client.chat.completions.create(
                    model="smart-agent-neo", messages=[{"role": "user", "content": "x"}]
                )
            except openai.InternalServerError as exc:
                error: Exception = exc
            chunks = list(
                client.chat.completions.create(
                    model="smart-agent-neo",
                    messages=[{"role": "user", "content": "x"}],
                    stream=True,
                )
            )
            return error, chunks

    error, chunks = await in_thread(talk)
    assert "provider fake returned HTTP 401: bad key" in str(error)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Error: provider fake returned HTTP 401: bad key"
    assert chunks[-1].choices[0].finish_reason == "stop"


# -- /tools/invoke ----------------------------------------------------------------------------


async def test_tools_invoke(
    start_gateway: StartGateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FAILURE-MODES.md 24: the same registry and policy as agent runs; dangerous tools are
    denied over HTTP unless gateway.tools.allow lists them; auth as on /v1."""
    from gateway.agent import tools

    async def run(ctx: Any, args: Any) -> object:
        return "ran"

    danger = tools.Tool("exec", "run a command", {"type": "object"}, run, dangerous=True)
    monkeypatch.setitem(tools.TOOLS, "exec", danger)
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "a.txt").write_text("hello")
    raw = {
        "agents": {"defaults": {"workspace": str(ws)}},
        "gateway": {"tools": {"deny": ["sessions_*"]}},
    }
    config, _ = parse(json.dumps(raw), {})
    running = await start_gateway(make_settings(tmp_path / "state", config=config))
    auth = {"authorization": f"Bearer {TOKEN}"}

    async def invoke(body: object) -> httpx.Response:
        return await http.post("/tools/invoke", json=body, headers=auth)

    async with httpx.AsyncClient(base_url=base(running)) as http:
        now = await invoke({"tool": "current_time", "args": {"timezone": "Asia/Tokyo"}})
        read = await invoke({"name": "read_file", "args": {"path": "a.txt"}, "sessionKey": "main"})
        outside = await invoke({"tool": "read_file", "args": {"path": "/etc/passwd"}})
        bad_args = await invoke({"tool": "read_file", "args": {"path": 5}})
        unknown = await invoke({"tool": "nope"})
        denied = await invoke({"tool": "sessions_list"})
        dangerous = await invoke({"tool": "exec"})
        missing = await invoke({"args": {}})
        get = await http.get("/tools/invoke", headers=auth)
        too_big = await http.post("/tools/invoke", content=b"x" * (3 * 1024 * 1024), headers=auth)
    assert now.status_code == 200
    assert now.json()["result"]["timezone"] == "Asia/Tokyo"
    assert read.json() == {
        "ok": True,
        "result": {"path": "a.txt", "size": 5, "truncated": False, "content": "hello"},
    }
    assert outside.status_code == 400
    assert outside.json()["error"]["type"] == "tool_error"
    assert "outside the agent workspace" in outside.json()["error"]["message"]
    assert bad_args.json()["error"]["message"] == "args.path: 5 is not of type 'string'"
    for response, name in ((unknown, "nope"), (denied, "sessions_list"), (dangerous, "exec")):
        assert response.status_code == 404
        assert response.json() == {
            "ok": False,
            "error": {"type": "not_found", "message": f"Tool not available: {name}"},
        }
    assert missing.status_code == 400
    assert missing.json()["error"]["message"] == "tools.invoke requires body.tool"
    assert get.status_code == 405
    assert too_big.status_code == 413
    assert too_big.json()["error"]["message"] == "Payload too large"
    for response in (now, read, outside, bad_args, unknown, missing, too_big):
        assert set(response.json()) <= {"ok", "result", "error"}  # one shape for every answer
        assert response.json()["ok"] is (response.status_code == 200)

    allow, _ = parse(json.dumps({"gateway": {"tools": {"allow": ["exec"]}}}), {})
    running = await start_gateway(make_settings(tmp_path / "state2", config=allow))
    async with httpx.AsyncClient(base_url=base(running)) as http:
        allowed = await http.post("/tools/invoke", json={"tool": "exec"}, headers=auth)
    assert allowed.json() == {"ok": True, "result": "ran"}
