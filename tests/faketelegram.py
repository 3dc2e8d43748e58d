"""``FakeTelegram``: the Bot API as a real HTTP server on loopback (CHANNELS.md 8.1).

An ASGI app served by hypercorn's trio worker on ``127.0.0.1:0`` in the test's nursery.
The gateway talks to it through its production code path; only ``apiBaseUrl`` differs.
It is written from the Bot API's documented wire format, not from our code: its HTML
check and length rule are its own, so a gateway bug shows up as a 400 here.

Per token: the bot, an update queue with increasing ids and the confirmed watermark, the
webhook URL, and the messages sent to each chat. ``getUpdates`` confirms everything below
``offset`` and long-polls (capped by ``poll_cap_s``) when nothing is ready; of two
concurrent calls the *older* gets the 409 "terminated by other getUpdates request". With
a webhook set every call gets the "webhook is active" 409.

Injection: :meth:`fail` (an error envelope, ``times`` calls), :meth:`drop_after_commit`
(record the message, then close the socket unanswered), :meth:`delay`, :meth:`hold`
(park a call *before* it is recorded until released -- the deterministic point to kill a
gateway mid-send), :meth:`conflict_from_other_poller`. Every call is logged with the trio
clock time and its parameters.
"""

from __future__ import annotations

import email.policy
import html
import json
import re
from collections.abc import Callable
from email.parser import BytesParser
from functools import partial
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs

import attrs
import trio
from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio.run import worker_serve

CONFLICT = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance "
    "is running"
)
WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to "
    "delete the webhook first"
)
TG_TAGS = {
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a",
    "tg-emoji", "code", "pre", "blockquote",
}  # fmt: skip


class _TgHtml(HTMLParser):
    """Telegram's rules as documented: only these tags, properly nested, known entities."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack: list[str] = []
        self.error: str | None = None
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in TG_TAGS:
            self.error = self.error or f'unsupported start tag "{tag}"'
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.error = self.error or f'can\'t find end tag corresponding to start tag "{tag}"'
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if "<" in data or ">" in data:
            self.error = self.error or "unescaped < or >"
        self.text.append(data)

    def handle_entityref(self, name: str) -> None:
        if name not in ("lt", "gt", "amp", "quot"):
            self.error = self.error or f"unsupported entity &{name};"
        self.text.append(html.unescape(f"&{name};"))

    def handle_charref(self, name: str) -> None:
        self.text.append(html.unescape(f"&#{name};"))


def parse_html(text: str) -> tuple[str, str | None]:
    """``(plain text, error)`` of a Telegram-HTML message."""
    if re.search(r"&(?![a-zA-Z]+;|#\d+;|#x[0-9a-fA-F]+;)", text):
        return text, "unescaped &"
    parser = _TgHtml()
    parser.feed(text)
    parser.close()
    if parser.stack and parser.error is None:
        parser.error = f'can\'t find end tag corresponding to start tag "{parser.stack[-1]}"'
    return "".join(parser.text), parser.error


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


@attrs.define
class Call:
    at: float
    token: str
    method: str
    params: dict[str, Any]
    status: int = 0


@attrs.define
class Failure:
    error_code: int
    description: str
    parameters: dict[str, Any] | None
    times: int
    after: int = 0  # successful calls to let through first


@attrs.define
class Bot:
    token: str
    id: int
    username: str
    can_join_groups: bool = True
    can_read_all_group_messages: bool = False
    has_topics_enabled: bool = False
    updates: list[dict[str, Any]] = attrs.field(factory=list)
    confirmed: int = 0  # every update_id below this is confirmed
    next_update_id: int = 100_000
    webhook_url: str = ""
    sent: dict[str, list[dict[str, Any]]] = attrs.field(factory=dict)
    next_message_id: int = 1
    poll_generation: int = 0
    actions: list[dict[str, Any]] = attrs.field(factory=list)


class FakeTelegram:
    def __init__(self, *, poll_cap_s: float = 1.0) -> None:
        self.base_url = ""
        self.bots: dict[str, Bot] = {}
        self.calls: list[Call] = []
        self.poll_cap_s = poll_cap_s
        self._failures: dict[str, list[Failure]] = {}
        self._drops: dict[str, int] = {}
        self._delays: dict[str, float] = {}
        self._holds: dict[str, tuple[int, trio.Event, trio.Event]] = {}
        self._changed = trio.Event()
        self.other_poller = False
        self.concurrent_polls = 0
        self.max_concurrent_polls = 0
        self.files: dict[str, bytes] = {}

    # -- setup ----------------------------------------------------------------------------------

    def add_bot(self, token: str, *, username: str = "neo_test_bot", **kwargs: Any) -> Bot:
        bot_id = int(token.split(":", 1)[0])
        bot = Bot(token, bot_id, username, **kwargs)
        self.bots[token] = bot
        return bot

    def push_updates(self, token: str, updates: list[dict[str, Any]]) -> list[int]:
        """Queue updates (``update_id`` assigned when absent); returns their ids."""
        bot = self.bots[token]
        ids = []
        for update in updates:
            if "update_id" not in update:
                update = {"update_id": bot.next_update_id, **update}
                bot.next_update_id += 1
            else:
                bot.next_update_id = max(bot.next_update_id, int(update["update_id"]) + 1)
            bot.updates.append(update)
            ids.append(int(update["update_id"]))
        self._notify()
        return ids

    def message(
        self,
        token: str,
        text: str,
        *,
        user_id: int = 42,
        chat_id: int | None = None,
        chat_type: str = "private",
        username: str | None = "alice",
        first_name: str = "Alice",
        **extra: Any,
    ) -> int:
        """Push one text message update; returns its update_id."""
        bot = self.bots[token]
        chat = {"id": chat_id if chat_id is not None else user_id, "type": chat_type}
        if chat_type != "private":
            chat["title"] = "Group"
        msg: dict[str, Any] = {
            "message_id": bot.next_update_id,
            "date": 1_700_000_000,
            "chat": chat,
            "from": {"id": user_id, "is_bot": False, "first_name": first_name},
            "text": text,
            **extra,
        }
        if username:
            msg["from"]["username"] = username
        return self.push_updates(token, [{"message": msg}])[0]

    # -- injection ------------------------------------------------------------------------------

    def fail(
        self,
        method: str,
        error_code: int,
        description: str,
        parameters: dict[str, Any] | None = None,
        *,
        times: int = 1,
        after: int = 0,
    ) -> None:
        """The next ``times`` calls of ``method`` (after ``after`` that succeed) get this
        error envelope."""
        self._failures.setdefault(method.lower(), []).append(
            Failure(error_code, description, parameters, times, after)
        )

    def heal(self, method: str | None = None) -> None:
        """Forget the injected failures (of ``method``, or all)."""
        if method is None:
            self._failures.clear()
        else:
            self._failures.pop(method.lower(), None)

    def drop_after_commit(self, method: str, *, times: int = 1) -> None:
        self._drops[method.lower()] = self._drops.get(method.lower(), 0) + times

    def delay(self, method: str, seconds: float) -> None:
        self._delays[method.lower()] = seconds

    def hold(self, method: str, *, after: int = 0) -> tuple[trio.Event, trio.Event]:
        """Park the call of ``method`` that comes after ``after`` successful ones, before it
        takes effect. Returns ``(arrived, release)``."""
        arrived, release = trio.Event(), trio.Event()
        self._holds[method.lower()] = (after, arrived, release)
        return arrived, release

    def conflict_from_other_poller(self, active: bool) -> None:
        self.other_poller = active
        self._notify()

    # -- inspection -----------------------------------------------------------------------------

    def sent_to(self, token: str, chat_id: int | str) -> list[dict[str, Any]]:
        return self.bots[token].sent.get(str(chat_id), [])

    def all_sent(self, token: str) -> list[dict[str, Any]]:
        return [m for msgs in self.bots[token].sent.values() for m in msgs]

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method.lower() == method.lower()]

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            await self._changed.wait()

    def _notify(self) -> None:
        """Wake every waiter (each re-checks its own condition)."""
        self._changed.set()
        self._changed = trio.Event()

    # -- ASGI -----------------------------------------------------------------------------------

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
        path: str = scope["path"]
        file_match = re.fullmatch(r"/file/bot([^/]+)/(.+)", path)
        if file_match:
            data = self.files.get(file_match.group(2))
            if file_match.group(1) not in self.bots or data is None:
                await _respond(
                    send, 404, {"ok": False, "error_code": 404, "description": "Not Found"}
                )
            else:
                await send({"type": "http.response.start", "status": 200, "headers": []})
                await send({"type": "http.response.body", "body": data})
            return
        match = re.fullmatch(r"/bot([^/]+)/([A-Za-z]+)", path)
        if not match:
            await _respond(send, 404, {"ok": False, "error_code": 404, "description": "Not Found"})
            return
        token, method = match.group(1), match.group(2)
        params = _params(scope, body)
        call = Call(trio.current_time(), token, method, params)
        self.calls.append(call)
        self._notify()
        bot = self.bots.get(token)
        if bot is None:
            call.status = 401
            await _respond(
                send, 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
            )
            return
        status, payload = await self._handle(bot, method.lower(), params, send)
        if status == 0:
            return  # the connection was dropped on purpose
        call.status = status
        self._notify()
        await _respond(send, status, payload)

    async def _handle(
        self, bot: Bot, method: str, params: dict[str, Any], send: Any
    ) -> tuple[int, dict[str, Any]]:
        delay = self._delays.get(method)
        if delay:
            await trio.sleep(delay)
        hold = self._holds.get(method)
        if hold is not None:
            after, arrived, release = hold
            if after <= 0:
                del self._holds[method]
                arrived.set()
                await release.wait()
            else:
                self._holds[method] = (after - 1, arrived, release)
        failures = self._failures.get(method)
        if failures and failures[0].after > 0:
            failures[0].after -= 1
        elif failures:
            failure = failures[0]
            failure.times -= 1
            if failure.times <= 0:
                failures.pop(0)
            envelope: dict[str, Any] = {
                "ok": False,
                "error_code": failure.error_code,
                "description": failure.description,
            }
            if failure.parameters:
                envelope["parameters"] = failure.parameters
            return failure.error_code, envelope
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return 404, {
                "ok": False,
                "error_code": 404,
                "description": "Not Found: method not found",
            }
        status, payload = await handler(bot, params)
        if self._drops.get(method, 0) > 0 and status == 200:
            self._drops[method] -= 1
            raise _Drop  # recorded; the socket closes without an answer
        return status, payload

    # -- methods --------------------------------------------------------------------------------

    async def _m_getme(self, bot: Bot, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return 200, _ok(
            {
                "id": bot.id,
                "is_bot": True,
                "first_name": "Neo Test",
                "username": bot.username,
                "can_join_groups": bot.can_join_groups,
                "can_read_all_group_messages": bot.can_read_all_group_messages,
                "has_topics_enabled": bot.has_topics_enabled,
            }
        )

    async def _m_getwebhookinfo(
        self, bot: Bot, params: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        pending = len([u for u in bot.updates if u["update_id"] >= bot.confirmed])
        return 200, _ok(
            {
                "url": bot.webhook_url,
                "has_custom_certificate": False,
                "pending_update_count": pending,
            }
        )

    async def _m_deletewebhook(
        self, bot: Bot, params: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        bot.webhook_url = ""
        if params.get("drop_pending_updates"):
            bot.updates.clear()
        return 200, _ok(True)

    async def _m_setwebhook(self, bot: Bot, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        bot.webhook_url = str(params.get("url", ""))
        return 200, _ok(True)

    async def _m_setmycommands(
        self, bot: Bot, params: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        return 200, _ok(True)

    async def _m_sendchataction(
        self, bot: Bot, params: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        bot.actions.append(params)
        return 200, _ok(True)

    async def _m_getfile(self, bot: Bot, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        file_id = str(params.get("file_id"))
        path = f"photos/{file_id}.jpg"
        if path not in self.files:
            return 400, {
                "ok": False,
                "error_code": 400,
                "description": "Bad Request: invalid file_id",
            }
        return 200, _ok(
            {
                "file_id": file_id,
                "file_unique_id": file_id,
                "file_size": len(self.files[path]),
                "file_path": path,
            }
        )

    async def _m_getupdates(self, bot: Bot, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if bot.webhook_url:
            return 409, {"ok": False, "error_code": 409, "description": WEBHOOK_CONFLICT}
        if self.other_poller:
            return 409, {"ok": False, "error_code": 409, "description": CONFLICT}
        offset = int(params.get("offset", 0) or 0)
        limit = max(1, min(100, int(params.get("limit", 100) or 100)))
        timeout = float(params.get("timeout", 0) or 0)
        if offset:
            bot.confirmed = max(bot.confirmed, offset)
            bot.updates = [u for u in bot.updates if u["update_id"] >= offset]
        bot.poll_generation += 1
        mine = bot.poll_generation
        self._notify()  # an older poll still waiting gets its 409 now
        self.concurrent_polls += 1
        self.max_concurrent_polls = max(self.max_concurrent_polls, self.concurrent_polls)
        try:
            with trio.move_on_after(min(timeout, self.poll_cap_s)):
                while not self._ready(bot, offset) and bot.poll_generation == mine:
                    await self._changed.wait()
        finally:
            self.concurrent_polls -= 1
        if bot.poll_generation != mine:
            return 409, {"ok": False, "error_code": 409, "description": CONFLICT}
        ready = [u for u in bot.updates if u["update_id"] >= offset][:limit]
        return 200, _ok(ready)

    def _ready(self, bot: Bot, offset: int) -> bool:
        return any(u["update_id"] >= offset for u in bot.updates) or self.other_poller

    async def _m_sendmessage(self, bot: Bot, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        text = params.get("text")
        if not isinstance(text, str):
            return 400, _bad("message text is empty")
        plain = text
        if str(params.get("parse_mode", "")).upper() == "HTML":
            plain, error = parse_html(text)
            if error:
                return 400, _bad(f"can't parse entities: {error}")
        if not plain.strip():
            return 400, _bad("message text is empty")
        if utf16_len(plain) > 4096:
            return 400, _bad("message is too long")
        return 200, _ok(self._record(bot, params, {"text": text}))

    async def _m_sendphoto(self, bot: Bot, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        bad = _caption_problem(params)
        if bad:
            return 400, _bad(bad)
        return 200, _ok(self._record(bot, params, {"photo": [{"file_id": "p"}]}))

    async def _m_senddocument(self, bot: Bot, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        bad = _caption_problem(params)
        if bad:
            return 400, _bad(bad)
        return 200, _ok(self._record(bot, params, {"document": {"file_id": "d"}}))

    async def _m_sendvideo(self, bot: Bot, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        bad = _caption_problem(params)
        if bad:
            return 400, _bad(bad)
        return 200, _ok(self._record(bot, params, {"video": {"file_id": "v"}}))

    async def _m_sendaudio(self, bot: Bot, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        bad = _caption_problem(params)
        if bad:
            return 400, _bad(bad)
        return 200, _ok(self._record(bot, params, {"audio": {"file_id": "a"}}))

    async def _m_sendvoice(self, bot: Bot, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        bad = _caption_problem(params)
        if bad:
            return 400, _bad(bad)
        return 200, _ok(self._record(bot, params, {"voice": {"file_id": "o"}}))

    def _record(self, bot: Bot, params: dict[str, Any], content: dict[str, Any]) -> dict[str, Any]:
        chat = str(params.get("chat_id"))
        message = {
            "message_id": bot.next_message_id,
            "date": 1_700_000_000,
            "chat": {"id": int(chat) if chat.lstrip("-").isdigit() else chat},
            **content,
            "_params": params,
        }
        bot.next_message_id += 1
        bot.sent.setdefault(chat, []).append(message)
        self._notify()
        return {k: v for k, v in message.items() if k != "_params"}


class _Drop(Exception):
    pass


def _caption_problem(params: dict[str, Any]) -> str | None:
    """Media methods: the file is required, a caption is 0-1024 characters after parsing."""
    if not any(params.get(k) for k in ("photo", "document", "video", "audio", "voice")):
        return "there is no media in the request"
    caption = params.get("caption")
    if not isinstance(caption, str):
        return None
    plain = caption
    if str(params.get("parse_mode", "")).upper() == "HTML":
        plain, error = parse_html(caption)
        if error:
            return f"can't parse entities: {error}"
    if utf16_len(plain) > 1024:
        return "message caption is too long"
    return None


def _ok(result: Any) -> dict[str, Any]:
    return {"ok": True, "result": result}


def _bad(description: str) -> dict[str, Any]:
    return {"ok": False, "error_code": 400, "description": f"Bad Request: {description}"}


def _multipart(content_type: str, body: bytes) -> dict[str, Any]:
    """multipart/form-data as the Bot API reads it: fields (JSON-decoded when they are
    JSON objects), files as ``{"filename", "content_type", "size", "data"}``."""
    message = BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    out: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        raw = part.get_payload(decode=True)
        data = raw if isinstance(raw, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            out[str(name)] = {
                "filename": filename,
                "content_type": part.get_content_type(),
                "size": len(data),
                "data": data,
            }
            continue
        text = data.decode()
        try:
            value = json.loads(text)
            out[str(name)] = value if isinstance(value, dict | list) else text
        except ValueError:
            out[str(name)] = text
    return out


def _params(scope: dict[str, Any], body: bytes) -> dict[str, Any]:
    params: dict[str, Any] = {
        k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()
    }
    if body:
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        if headers.get("content-type", "").startswith("application/json"):
            loaded = json.loads(body)
            if isinstance(loaded, dict):
                params.update(loaded)
        elif headers.get("content-type", "").startswith("multipart/form-data"):
            params.update(_multipart(headers["content-type"], body))
        else:
            params.update({k: v[-1] for k, v in parse_qs(body.decode()).items()})
    return params


async def _respond(send: Any, status: int, payload: dict[str, Any]) -> None:
    data = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


class _App:
    """Turns a deliberate drop into a closed socket (hypercorn closes on an app error)."""

    def __init__(self, fake: FakeTelegram) -> None:
        self.fake = fake

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            await self.fake(scope, receive, send)
        except _Drop:
            # half an answer, then the app fails: hypercorn closes the connection mid-body,
            # which the client sees as a reset after the request went out (ambiguous)
            headers = [(b"content-type", b"application/json"), (b"content-length", b"512")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b'{"ok":', "more_body": True})
            raise RuntimeError("dropped after commit (FakeTelegram)") from None


async def start_fake_telegram(nursery: trio.Nursery, **kwargs: Any) -> FakeTelegram:
    fake = FakeTelegram(**kwargs)
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
