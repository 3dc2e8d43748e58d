"""What every authenticated HTTP API on the gateway port shares (OPERATIONS.md A.0).

Order of checks, each answered with the documented status and body: method (405 with
``Allow``), rate-limit lockout (429 with ``Retry-After``), bearer auth (401), body size
(413, checked against ``Content-Length`` first and again while reading), JSON (400).
Bodies are read with the ASGI ``receive`` callable. ``watch_disconnect`` turns the client
going away (``http.disconnect``) into a callback, so a run can be aborted when nobody waits
for it any more.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import trio

from .. import observe
from ..auth import check_bearer
from ..errors import (
    GatewayError,
    HttpError,
    PayloadTooLarge,
    RateLimited,
    Unauthorized,
    Unavailable,
)
from ..protocol.codec import JsonRejected, dumps, loads
from ..runtime import Runtime
from .bodies import RESERVED, SMALL_BODY
from .http import BASELINE_HEADERS, JSON, TEXT, Receive, SendFn, client_of, respond

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"connection", b"keep-alive"),
    *[h for h in BASELINE_HEADERS if h[0] != b"cache-control"],
]


DRAIN_CAP = 64 * 1024 * 1024


def header(scope: dict[str, Any], name: str) -> str | None:
    wanted = name.lower().encode()
    for key, value in scope.get("headers", []):
        if key.lower() == wanted:
            return bytes(value).decode("latin-1")
    return None


def headers_dict(scope: dict[str, Any]) -> dict[str, str]:
    return {
        bytes(k).decode("latin-1").lower(): bytes(v).decode("latin-1")
        for k, v in scope.get("headers", [])
    }


def check_method(scope: dict[str, Any], allowed: tuple[str, ...]) -> None:
    if scope["method"] not in allowed:
        raise HttpError(
            405, "Method Not Allowed", headers=[(b"allow", ", ".join(allowed).encode())]
        )


def authorize(rt: Runtime, scope: dict[str, Any]) -> None:
    """Bearer auth with the same secret and failed-attempt limiter as the control plane.

    The limiter's bucket is the client behind any trusted proxy (clientip.py); only a local
    direct request is loopback-exempt, and never one from a browser page: a browser's
    attempts are bucketed per ``Origin`` (CONTROL-UI.md 3), so a hostile page on this
    machine cannot guess at full speed."""
    client = client_of(rt, scope)
    origin = header(scope, "origin")
    key = f"{client.ip or '?'} origin {origin}" if origin else client.ip
    local = client.local_direct and not origin
    ip = client.ip
    now = rt.now_ms()
    wait_ms = rt.limiter.retry_after_ms(key, now, local=local)
    if wait_ms is not None:
        observe.auth_failed(rt, "http", ip, "AUTH_RATE_LIMITED")
        raise RateLimited(
            "Too many failed authentication attempts. Please try again later.",
            retry_after_ms=wait_ms,
            headers=[(b"retry-after", str(math.ceil(wait_ms / 1000)).encode())],
        )
    authorization = header(scope, "authorization")
    if not check_bearer(rt.settings.auth, authorization):
        if authorization:  # a wrong secret counts; a missing one does not (as on the WS)
            rt.limiter.record_failure(key, now, local=local)
        reason = "AUTH_BEARER_MISMATCH" if authorization else "AUTH_BEARER_MISSING"
        observe.auth_failed(rt, "http", ip, reason)
        raise Unauthorized("Unauthorized")
    rt.limiter.record_success(key)


async def read_body(
    rt: Runtime, scope: dict[str, Any], receive: Receive, limit: int
) -> bytes | bytearray:
    """The request body, or 413 once it is over ``limit``.

    A body bigger than ``bodies.SMALL_BODY`` first reserves its size from the gateway's
    body budget (``server/bodies.py``; given back by ``routes.handle_http`` once the request
    is answered): 503 if its turn does not come within the body deadline. The whole body
    must arrive within ``gateway.http.bodyTimeoutMs``: 408 otherwise.

    An over-limit body is still read to its end (and dropped) when it is no bigger than
    :data:`DRAIN_CAP`: answering while the client is still sending races hypercorn's own
    connection shutdown, and the client may never see the 413. Bigger bodies are refused
    at once on their ``Content-Length``.
    """
    too_large = PayloadTooLarge("Payload too large")
    declared = header(scope, "content-length")
    length = int(declared) if declared is not None and declared.isdigit() else None
    if length is not None and length > max(limit, DRAIN_CAP):
        raise too_large
    http = rt.settings.config.gateway.http
    deadline = trio.current_time() + http.body_timeout_ms / 1000
    expected = min(length if length is not None else limit, limit)
    if expected > SMALL_BODY and RESERVED not in scope:
        capacity = http.max_body_bytes_in_flight
        with trio.move_on_at(deadline):
            await rt.bodies.acquire(expected, capacity)
            scope[RESERVED] = expected
        if RESERVED not in scope:
            raise Unavailable(
                "too many large request bodies at once; retry shortly",
                retry_after_ms=1000,
                headers=[(b"retry-after", b"1")],
            )
    body = bytearray()
    size = 0
    with trio.move_on_at(deadline):
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise HttpError(400, "client disconnected before sending the whole body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size <= limit:
                body += chunk
            elif size > DRAIN_CAP:
                raise too_large
            if not message.get("more_body", False):
                if size > limit:
                    raise too_large
                return body  # no copy: the parser takes a bytearray
    raise HttpError(408, "Request body timeout", headers=[(b"connection", b"close")])


def parse_json(body: bytes | bytearray) -> dict[str, object]:
    """An empty body is ``{}`` (as the reference treats it); otherwise a JSON object."""
    if not body or body.isspace():  # (no copy of a big body)
        return {}
    try:
        value = loads(body)
    except JsonRejected as exc:
        raise HttpError(400, f"Invalid JSON body: {exc.message}") from None
    if not isinstance(value, dict):
        raise HttpError(400, "Invalid JSON body: expected an object")
    return value


async def send_error(send: SendFn, error: GatewayError, *, ok_field: bool = False) -> None:
    """Any error of the tree as an HTTP answer: its status, its headers, and an OpenAI-style
    body ``{"error": {message, type}}`` unless it brings its own. ``ok_field``: the
    endpoint answers ``{"ok": ..., ...}`` (``/tools/invoke``), so its errors carry
    ``"ok": false`` too -- one shape for every answer of that endpoint."""
    status = error.http_status
    if status == 405:
        await respond(send, 405, b"Method Not Allowed", TEXT, extra=error.headers)
        return
    body = (
        error.body
        if error.body is not None
        else {"error": {"message": error.message, "type": error.kind}}
    )
    if ok_field and isinstance(body, dict):
        body = {"ok": False, **body}
    await respond(send, status, dumps(body).encode(), JSON, extra=error.headers)


async def send_json(send: SendFn, status: int, value: object) -> None:
    await respond(send, status, dumps(value).encode(), JSON)


async def start_sse(send: SendFn) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})


async def sse(send: SendFn, data: object, event: str | None = None) -> None:
    text = data if isinstance(data, str) else dumps(data)
    prefix = f"event: {event}\n" if event else ""
    chunk = f"{prefix}data: {text}\n\n".encode()
    await send({"type": "http.response.body", "body": chunk, "more_body": True})


async def sse_comment(send: SendFn, text: str = "keep-alive") -> None:
    await send({"type": "http.response.body", "body": f": {text}\n\n".encode(), "more_body": True})


async def end_sse(send: SendFn) -> None:
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def watch_disconnect(receive: Receive, on_disconnect: Callable[[], None]) -> None:
    """Call ``on_disconnect`` once the client goes away; run it in a nursery and cancel it
    when the response is complete."""
    while (await receive())["type"] != "http.disconnect":
        pass
    on_disconnect()
