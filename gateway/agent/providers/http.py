"""Outbound HTTP to model providers: timeouts, retries with backoff and jitter, SSE.

A request is retried (up to ``maxRetries`` times) only while nothing of the answer has been
consumed: on connect failures, on 429 and on 5xx. ``Retry-After`` (seconds or an HTTP
date) is honoured up to :data:`MAX_RETRY_AFTER_S`; a provider that asks for a longer pause
fails the run with that number instead of silently stalling it. Once the stream has started,
a failure ends the run: replaying it would duplicate text the user has already seen.

Every failure becomes a :class:`ProviderError` whose message names the provider and the
cause (status and the provider's own error message, or which timeout expired).
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from contextlib import aclosing
from typing import TypeVar, cast

import httpx
import trio

from ...config.model import Provider
from .base import ProviderError
from .sse import SseDecoder, SseEvent

log = logging.getLogger("gateway.agent.http")
T = TypeVar("T")

BASE_BACKOFF_S = 0.5
MAX_BACKOFF_S = 8.0
MAX_RETRY_AFTER_S = 30.0
MAX_ERROR_BODY = 64 * 1024


def retry_delay(attempt: int, retry_after: str | None, now_epoch: float, rand: float) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based); pure.

    ``Retry-After`` wins when present; otherwise exponential backoff with "equal jitter"
    (half fixed, half random) so that many clients hitting one provider spread out.
    """
    if retry_after is not None:
        parsed = parse_retry_after(retry_after, now_epoch)
        if parsed is not None:
            return parsed
    ceiling = min(MAX_BACKOFF_S, BASE_BACKOFF_S * 2.0**attempt)
    return ceiling / 2 + rand * ceiling / 2


def parse_retry_after(value: str, now_epoch: float) -> float | None:
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now_epoch)


def error_text(body: bytes) -> str:
    """The provider's own error message from an error body, if it has one."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.decode(errors="replace").strip()[:300]
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
    return json.dumps(data)[:300]


def _timeout(provider: Provider) -> httpx.Timeout:
    return httpx.Timeout(
        connect=provider.connect_timeout_ms / 1000,
        read=provider.read_timeout_ms / 1000,
        write=provider.read_timeout_ms / 1000,
        pool=provider.connect_timeout_ms / 1000,
    )


async def stream_events(
    name: str,
    provider: Provider,
    url: str,
    headers: Mapping[str, str],
    body: dict[str, object],
    on_event: Callable[[SseEvent], None],
) -> None:
    """POST ``body`` to ``url`` and feed every SSE event of the answer to ``on_event``.

    Cancellation: safe; the connection is closed on the way out.
    """
    all_headers = {"accept": "text/event-stream", **provider.headers, **headers}
    attempt = 0
    async with httpx.AsyncClient(timeout=_timeout(provider)) as client:
        while True:
            failure = await _attempt(name, provider, client, url, all_headers, body, on_event)
            if failure is None:
                return
            error, retry_after = failure
            if not error.retryable or attempt >= provider.max_retries:
                raise error
            delay = retry_delay(attempt, retry_after, time.time(), random.random())
            if retry_after is not None and delay > MAX_RETRY_AFTER_S:
                raise ProviderError(
                    f"{error} (the provider asks to retry after {delay:.0f} s)",
                    status=error.status,
                )
            attempt += 1
            log.info("%s; retry %d/%d in %.2f s", error, attempt, provider.max_retries, delay)
            await trio.sleep(delay)


async def _attempt(
    name: str,
    provider: Provider,
    client: httpx.AsyncClient,
    url: str,
    headers: Mapping[str, str],
    body: dict[str, object],
    on_event: Callable[[SseEvent], None],
) -> tuple[ProviderError, str | None] | None:
    """One try: ``None`` when the stream completed, else the error and any Retry-After."""
    try:
        async with client.stream("POST", url, json=body, headers=dict(headers)) as response:
            if response.status_code >= 400:
                raw = b""
                async with aclosing(_generator(response.aiter_bytes())) as chunks:
                    async for chunk in chunks:
                        raw += chunk
                        if len(raw) > MAX_ERROR_BODY:
                            break
                status = response.status_code
                retryable = status == 429 or status >= 500
                message = f"provider {name} returned HTTP {status}: {error_text(raw) or 'no body'}"
                return ProviderError(message, status=status, retryable=retryable), (
                    response.headers.get("retry-after")
                )
            decoder = SseDecoder()
            # aclosing: a cancelled run must not leave the generator for the GC to finalize
            async with aclosing(_generator(response.aiter_text())) as texts:
                async for text in texts:
                    for event in decoder.feed(text):
                        on_event(event)
            for event in decoder.flush():
                on_event(event)
            return None
    except httpx.ConnectTimeout:
        message = (
            f"provider {name}: no connection to {url} within "
            f"{provider.connect_timeout_ms} ms (connect timeout)"
        )
        return ProviderError(message, retryable=True), None
    except httpx.ConnectError as exc:
        return ProviderError(
            f"provider {name}: cannot connect to {url}: {exc}", retryable=True
        ), None
    except httpx.ReadTimeout:
        raise ProviderError(
            f"provider {name} sent nothing for {provider.read_timeout_ms} ms (read timeout)"
        ) from None
    except httpx.HTTPError as exc:
        raise ProviderError(f"provider {name}: {type(exc).__name__}: {exc}") from None


def _generator(iterator: AsyncIterator[T]) -> AsyncGenerator[T, None]:
    # httpx types its streams as iterators; they are async generators (they have aclose)
    return cast("AsyncGenerator[T, None]", iterator)


def parse_json(name: str, data: str) -> dict[str, object]:
    """One SSE ``data`` payload as a JSON object, or a ProviderError naming the provider."""
    try:
        value = json.loads(data)
    except ValueError:
        raise ProviderError(
            f"provider {name} sent invalid JSON in its stream: {data[:200]}"
        ) from None
    if not isinstance(value, dict):
        raise ProviderError(f"provider {name} sent a non-object event: {data[:200]}")
    return value
