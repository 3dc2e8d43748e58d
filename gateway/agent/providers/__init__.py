"""Model providers: one module per wire format, plus the offline built-in model.

base.py                 provider-neutral request/reply types, ProviderError
http.py                 outbound HTTP: timeouts, retries with backoff + jitter, SSE
sse.py                  server-sent events decoder (pure)
openai_completions.py   POST {baseUrl}/chat/completions (streaming, tool calls)
openai_responses.py     POST {baseUrl}/responses
anthropic_messages.py   POST {baseUrl}/v1/messages
offline.py              answers without a network when no provider is configured

The wire-format modules (and httpx with them) are imported by the first run that needs one:
a gateway without a configured provider never loads them (BENCHMARKS.md, idle RSS).
"""

from __future__ import annotations

from ..agents import ModelChoice
from .base import ModelReply, ModelRequest, OnDelta, ProviderError


async def complete(choice: ModelChoice, request: ModelRequest, on_delta: OnDelta) -> ModelReply:
    """Ask the model in ``choice`` for the next assistant message, streaming text to ``on_delta``.

    Raises :class:`ProviderError` with a message that names the provider and what went wrong.
    """
    provider = choice.provider
    if provider is None:
        from . import offline

        return await offline.complete(request, on_delta)
    if provider.api == "openai-responses":
        from . import openai_responses

        return await openai_responses.complete(choice.provider_name, provider, request, on_delta)
    if provider.api == "anthropic-messages":
        from . import anthropic_messages

        return await anthropic_messages.complete(choice.provider_name, provider, request, on_delta)
    from . import openai_completions

    return await openai_completions.complete(choice.provider_name, provider, request, on_delta)


__all__ = ["ModelReply", "ModelRequest", "OnDelta", "ProviderError", "complete"]
