"""The built-in offline model: answers when no provider is configured.

It says plainly that no model provider is configured, shows how to add one, and echoes the
message -- so ``agent``, the CLI and the OpenAI endpoints work end to end out of the box,
with no network. The reply is streamed word by word like a real model's.
"""

from __future__ import annotations

import re

import trio

from .base import ModelReply, ModelRequest, OnDelta, TokenUsage

WORDS_PER_DELTA = 8
HOW_TO = (
    "No model provider is configured, so this is smart-agent-neo's built-in offline model. "
    "To use a real model, add one to the config file, for example:\n"
    '  models: { providers: { myprovider: { baseUrl: "http://127.0.0.1:1234/v1", '
    'apiKey: "${MY_API_KEY}", api: "openai-completions", models: [{ id: "my-model" }] } } },\n'
    '  agents: { defaults: { model: { primary: "myprovider/my-model" } } }\n'
)


ECHO_CHARS = 64 * 1024  # a megabyte-sized message is not echoed whole (issue 16: memory)


def reply_text(request: ModelRequest) -> str:
    last = next((m for m in reversed(request.messages) if m.role == "user"), None)
    said = last.text if last is not None else ""
    if len(said) > ECHO_CHARS:
        said = said[:ECHO_CHARS] + f"… ({len(said) - ECHO_CHARS:,} more characters)"
    images = len(last.images) if last is not None else 0
    seen = f" (with {images} image{'s' if images != 1 else ''} attached)" if images else ""
    return f"{HOW_TO}You said: {said}{seen}"


async def complete(request: ModelRequest, on_delta: OnDelta) -> ModelReply:
    text = reply_text(request)
    words = re.findall(r"\S+\s*|\s+", text)
    for i in range(0, len(words), WORDS_PER_DELTA):
        on_delta("".join(words[i : i + WORDS_PER_DELTA]))
        await trio.lowlevel.checkpoint()
    usage = TokenUsage(sum(len(m.text.split()) for m in request.messages), len(text.split()))
    return ModelReply(text, (), "stop", usage)
