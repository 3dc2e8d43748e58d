"""``FakeMeta``: the WhatsApp Cloud API (Graph) as a real HTTP server on loopback, and a
webhook sender that signs its posts like Meta (CHANNELS.md 8.2).

Written from Meta's documented wire format, not from our code. Graph side (hypercorn on
``127.0.0.1:0``; the gateway reaches it through ``apiBaseUrl``):

* ``GET /{ver}/{phone_number_id}`` -- the number (the gateway's probe);
* ``POST /{ver}/{phone_number_id}/messages`` -- a message (``{messages:[{id:"wamid.T<n>"}]}``)
  or a read receipt (``{status:"read", message_id}``); text bodies of 1-4096 characters;
* ``POST /{ver}/{phone_number_id}/media``, ``GET /{ver}/{media_id}``, ``GET /media/{id}``;
* a Bearer token on every call, else 401 with Graph code 190.

Injection: :meth:`fail` (a Graph error envelope), :meth:`drop_after_commit` (record the
message, then cut the answer off: the ambiguous case), :meth:`hold`, :meth:`revoke`.
With ``auto_statuses`` every accepted message is followed by those status webhooks
(``sent``, ``delivered``, ``read``), echoing ``biz_opaque_callback_data``.

:class:`WebhookSender` posts Meta's envelope to the gateway's webhook with
``X-Hub-Signature-256: sha256=<HMAC-SHA256 of the exact bytes>`` (or none, or a wrong one)
and does the ``GET`` verification handshake.
"""

from __future__ import annotations

import email.policy
import hashlib
import hmac
import json
from collections.abc import Callable
from email.parser import BytesParser
from functools import partial
from typing import Any
from urllib.parse import parse_qs

import attrs
import httpx
import trio
from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio.run import worker_serve

VERSION = "v24.0"
BAD_TOKEN = {
    "error": {
        "message": "Invalid OAuth access token - Cannot parse access token",
        "type": "OAuthException",
        "code": 190,
        "fbtrace_id": "AfakeTrace190",
    }
}


@attrs.define
class Call:
    at: float
    method: str
    path: str
    body: Any
    status: int = 0


@attrs.define
class Failure:
    status: int
    code: int
    message: str
    details: str | None
    times: int
    after: int = 0


@attrs.define
class Number:
    phone_number_id: str
    token: str
    display: str = "+1 555-010-0001"
    verified_name: str = "Neo Test"
    sent: list[dict[str, Any]] = attrs.field(factory=list)  # accepted message bodies
    reads: list[str] = attrs.field(factory=list)


class FakeMeta:
    def __init__(self) -> None:
        self.base_url = ""
        self.numbers: dict[str, Number] = {}
        self.revoked: set[str] = set()
        self.calls: list[Call] = []
        self.media: dict[str, tuple[bytes, str]] = {}
        self.uploads: list[dict[str, Any]] = []
        self.webhook: WebhookSender | None = None
        self.auto_statuses: list[str] = []
        self.nursery: trio.Nursery | None = None
        self._failures: dict[str, list[Failure]] = {}
        self._drops: dict[str, int] = {}
        self._holds: dict[str, tuple[trio.Event, trio.Event]] = {}
        self._changed = trio.Event()
        self._next_wamid = 1
        self._next_media = 1

    # -- setup and injection ----------------------------------------------------------------

    def add_number(self, phone_number_id: str, token: str, **kwargs: Any) -> Number:
        number = Number(phone_number_id, token, **kwargs)
        self.numbers[phone_number_id] = number
        return number

    def add_media(self, media_id: str, data: bytes, mime: str) -> None:
        self.media[media_id] = (data, mime)

    def fail(
        self,
        kind: str,
        status: int,
        code: int,
        message: str,
        details: str | None = None,
        *,
        times: int = 1,
        after: int = 0,
    ) -> None:
        """``kind``: ``messages`` | ``probe`` | ``media``."""
        self._failures.setdefault(kind, []).append(
            Failure(status, code, message, details, times, after)
        )

    def drop_after_commit(self, kind: str = "messages", *, times: int = 1) -> None:
        self._drops[kind] = self._drops.get(kind, 0) + times

    def hold(self, kind: str = "messages") -> tuple[trio.Event, trio.Event]:
        arrived, release = trio.Event(), trio.Event()
        self._holds[kind] = (arrived, release)
        return arrived, release

    def revoke(self, token: str) -> None:
        self.revoked.add(token)

    # -- inspection -------------------------------------------------------------------------

    def sent_to(self, phone_number_id: str, to: str) -> list[dict[str, Any]]:
        return [m for m in self.numbers[phone_number_id].sent if m["to"] == to]

    def calls_of(self, kind: str) -> list[Call]:
        return [c for c in self.calls if _kind(c.method, c.path) == kind]

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    # -- ASGI -------------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        method, path = scope["method"], scope["path"]
        call = Call(trio.current_time(), method, path, _decode(headers, body))
        self.calls.append(call)
        self._notify()
        token = headers.get("authorization", "").removeprefix("Bearer ").strip()
        known = {n.token for n in self.numbers.values()} - self.revoked
        if token not in known:
            call.status = 401
            await _respond(send, 401, BAD_TOKEN)
            return
        status, payload, after = await self._handle(method, path, scope, call.body, token)
        if status == 0:
            raise _Drop  # recorded; the socket closes without an answer
        call.status = status
        self._notify()
        if isinstance(payload, bytes):
            await send({"type": "http.response.start", "status": status, "headers": []})
            await send({"type": "http.response.body", "body": payload})
        else:
            await _respond(send, status, payload)
        if after is not None and self.nursery is not None:
            self.nursery.start_soon(after)

    async def _handle(
        self, method: str, path: str, scope: dict[str, Any], body: Any, token: str
    ) -> tuple[int, Any, Callable[[], Any] | None]:
        parts = path.strip("/").split("/")
        if parts[0] == "media" and len(parts) == 2 and method == "GET":
            found = self.media.get(parts[1])
            return (200, found[0], None) if found else (404, {"error": {"code": 100}}, None)
        if len(parts) < 2 or parts[0] != VERSION:
            return 404, {"error": {"message": "Unknown path", "code": 100}}, None
        kind = _kind(method, path)
        hold = self._holds.pop(kind, None)
        if hold is not None:
            hold[0].set()
            await hold[1].wait()
        failures = self._failures.get(kind)
        if failures and failures[0].after > 0:
            failures[0].after -= 1
        elif failures:
            failure = failures[0]
            failure.times -= 1
            if failure.times <= 0:
                failures.pop(0)
            return failure.status, _error(failure), None
        number = self.numbers.get(parts[1])
        if kind == "probe":
            if number is None or number.token != token:
                return 400, _error(Failure(400, 100, "Unsupported get request", None, 1)), None
            return (
                200,
                {
                    "display_phone_number": number.display,
                    "verified_name": number.verified_name,
                    "quality_rating": "GREEN",
                    "id": number.phone_number_id,
                },
                None,
            )
        if kind == "media-info":
            found = self.media.get(parts[1])
            if found is None:
                return 404, _error(Failure(404, 100, "media not found", None, 1)), None
            return (
                200,
                {
                    "messaging_product": "whatsapp",
                    "url": f"{self.base_url}/media/{parts[1]}",
                    "mime_type": found[1],
                    "file_size": len(found[0]),
                    "id": parts[1],
                },
                None,
            )
        if number is None:
            return 400, _error(Failure(400, 100, "Invalid parameter", "no such number", 1)), None
        if kind == "upload":
            media_id = f"media-up-{self._next_media}"
            self._next_media += 1
            self.uploads.append(body)
            return 200, {"id": media_id}, None
        if kind == "messages":
            return self._message(number, body)
        return 404, {"error": {"message": "Unknown path", "code": 100}}, None

    def _message(self, number: Number, body: Any) -> tuple[int, Any, Callable[[], Any] | None]:
        if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
            return 400, _error(Failure(400, 100, "Invalid parameter", "messaging_product", 1)), None
        if body.get("status") == "read":
            number.reads.append(str(body.get("message_id")))
            return 200, {"success": True}, None
        to = body.get("to")
        if not isinstance(to, str) or not to.isdigit():
            return 400, _error(Failure(400, 100, "Invalid parameter", "to", 1)), None
        kind = body.get("type")
        if kind == "text":
            text = (body.get("text") or {}).get("body")
            if not isinstance(text, str) or not 1 <= len(text) <= 4096:
                return (
                    400,
                    _error(Failure(400, 100, "Invalid parameter", "text.body length", 1)),
                    None,
                )
        elif kind in ("image", "document", "audio", "video"):
            media = body.get(kind) or {}
            if not (media.get("link") or media.get("id")):
                return (
                    400,
                    _error(Failure(400, 100, "Invalid parameter", f"{kind} needs link or id", 1)),
                    None,
                )
        else:
            return 400, _error(Failure(400, 100, "Invalid parameter", f"type {kind}", 1)), None
        wamid = f"wamid.T{self._next_wamid}"
        self._next_wamid += 1
        number.sent.append({**body, "_wamid": wamid})
        self._notify()
        after = None
        if self.auto_statuses and self.webhook is not None:
            after = partial(self._statuses, number, wamid, to, body.get("biz_opaque_callback_data"))
        if self._drops.get("messages", 0) > 0:
            self._drops["messages"] -= 1
            if after is not None and self.nursery is not None:
                self.nursery.start_soon(after)
            return 0, None, None  # recorded; the answer is cut off
        answer = {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to}],
            "messages": [{"id": wamid}],
        }
        return 200, answer, after

    async def _statuses(self, number: Number, wamid: str, to: str, opaque: str | None) -> None:
        assert self.webhook is not None
        for state in self.auto_statuses:
            await self.webhook.deliver(
                self.webhook.status(
                    wamid, state, opaque, recipient=to, phone_number_id=number.phone_number_id
                )
            )


def _kind(method: str, path: str) -> str:
    parts = path.strip("/").split("/")
    if parts and parts[0] == "media":
        return "media-file"
    if len(parts) == 3 and parts[2] == "messages":
        return "messages"
    if len(parts) == 3 and parts[2] == "media":
        return "upload"
    if len(parts) == 2 and method == "GET":
        return "probe" if parts[1].isdigit() else "media-info"
    return "other"


def _error(failure: Failure) -> dict[str, Any]:
    error: dict[str, Any] = {
        "message": failure.message,
        "type": "OAuthException",
        "code": failure.code,
        "fbtrace_id": "AfakeTrace",
    }
    if failure.details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": failure.details}
    return {"error": error}


def _decode(headers: dict[str, str], body: bytes) -> Any:
    kind = headers.get("content-type", "")
    if not body:
        return None
    if kind.startswith("application/json"):
        return json.loads(body)
    if kind.startswith("multipart/form-data"):
        message = BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + kind.encode() + b"\r\n\r\n" + body
        )
        out: dict[str, Any] = {}
        for part in message.iter_parts():
            name = str(part.get_param("name", header="content-disposition"))
            raw = part.get_payload(decode=True)
            data = raw if isinstance(raw, bytes) else b""
            filename = part.get_filename()
            out[name] = {"filename": filename, "data": data} if filename else data.decode()
        return out
    return body


async def _respond(send: Any, status: int, payload: Any) -> None:
    data = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


class _Drop(Exception):
    pass


class _App:
    def __init__(self, fake: FakeMeta) -> None:
        self.fake = fake

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            await self.fake(scope, receive, send)
        except _Drop:
            # the message was recorded: half an answer, then the connection goes
            headers = [(b"content-type", b"application/json"), (b"content-length", b"512")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b'{"messa', "more_body": True})
            raise RuntimeError("dropped after commit (FakeMeta)") from None


async def start_fake_meta(nursery: trio.Nursery) -> FakeMeta:
    fake = FakeMeta()
    fake.nursery = nursery
    app: Any = _App(fake)
    config = HypercornConfig()
    config.bind = ["127.0.0.1:0"]
    config.graceful_timeout = 0.1
    config.accesslog = None
    config.errorlog = None
    binds: list[str] = await nursery.start(
        partial(worker_serve, ASGIWrapper(app), config, shutdown_trigger=trio.sleep_forever)
    )
    fake.base_url = binds[0]
    return fake


class WebhookSender:
    """Meta's side of the webhook, aimed at a gateway's HTTP port."""

    def __init__(self, base_url: str, path: str, app_secret: str, phone_number_id: str) -> None:
        self.base_url = base_url.replace("ws://", "http://").rstrip("/")
        self.path = path
        self.app_secret = app_secret
        self.phone_number_id = phone_number_id
        self._next = 1

    async def verify(
        self, token: str, challenge: str, mode: str = "subscribe", path: str | None = None
    ) -> httpx.Response:
        params = {"hub.mode": mode, "hub.verify_token": token, "hub.challenge": challenge}
        async with httpx.AsyncClient() as client:
            return await client.get(f"{self.base_url}{path or self.path}", params=params)

    async def deliver(
        self, payload: dict[str, Any], sign: bool | str = True, path: str | None = None
    ) -> httpx.Response:
        body = json.dumps(payload).encode()
        headers = {"content-type": "application/json", "user-agent": "facebookexternalua"}
        if sign is True:
            digest = hmac.new(self.app_secret.encode(), body, hashlib.sha256).hexdigest()
            headers["x-hub-signature-256"] = f"sha256={digest}"
        elif sign == "wrong":
            headers["x-hub-signature-256"] = "sha256=" + "0" * 64
        async with httpx.AsyncClient() as client:
            return await client.post(
                f"{self.base_url}{path or self.path}", content=body, headers=headers
            )

    def _envelope(
        self, value: dict[str, Any], phone_number_id: str | None = None
    ) -> dict[str, Any]:
        number = phone_number_id or self.phone_number_id
        return {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "WABA-1",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {
                                    "display_phone_number": "15550100001",
                                    "phone_number_id": number,
                                },
                                **value,
                            },
                        }
                    ],
                }
            ],
        }

    def message(
        self,
        sender: str,
        text: str | None = None,
        wamid: str | None = None,
        *,
        name: str = "Alice",
        extra: dict[str, Any] | None = None,
        phone_number_id: str | None = None,
    ) -> dict[str, Any]:
        if wamid is None:
            wamid = f"wamid.IN{self._next}"
            self._next += 1
        msg: dict[str, Any] = {"from": sender, "id": wamid, "timestamp": "1700000000"}
        if text is not None:
            msg.update({"type": "text", "text": {"body": text}})
        msg.update(extra or {})
        return self._envelope(
            {"contacts": [{"profile": {"name": name}, "wa_id": sender}], "messages": [msg]},
            phone_number_id,
        )

    def status(
        self,
        wamid: str,
        status: str,
        opaque: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        *,
        recipient: str = "15551234567",
        phone_number_id: str | None = None,
    ) -> dict[str, Any]:
        item: dict[str, Any] = {
            "id": wamid,
            "status": status,
            "timestamp": "1700000001",
            "recipient_id": recipient,
        }
        if opaque is not None:
            item["biz_opaque_callback_data"] = opaque
        if errors:
            item["errors"] = errors
        return self._envelope({"statuses": [item]}, phone_number_id)


def query_of(url: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(url.split("?", 1)[-1]).items()}
