"""``send``: deliver a message through a channel, durably (PROTOCOL.md 7.5, CHANNELS.md 5.4).

validate (text or media) -> channel and account -> ``NOT_LINKED`` -> target -> outbox
lookup by ``idempotencyKey`` (a hit answers from the record) -> insert and commit -> wait
up to ``send.ackWaitMs`` for the first attempt -> answer ``sent`` (the platform's message
id) or ``queued`` (the outbox keeps trying; the same key asks again later). A permanent
failure is the platform's text as ``INVALID_REQUEST`` (a bad target) or ``UNAVAILABLE``.

Two concurrent calls with one key meet at the outbox's UNIQUE key and wait for the same
record; a retry days later (7) still finds it, across restarts.
"""

from __future__ import annotations

import base64
import binascii
import logging
import mimetypes
import re
import uuid

import attrs
import trio

from ..agent.keys import session_key
from ..auth import WRITE
from ..channels import delivery
from ..channels.agent_delivery import peer_session
from ..channels.outbox import Media, Mirror, OutboxFull, Payload, Record
from ..channels.outbox.service import OUTBOX_MEDIA_DIR
from ..errors import InvalidRequest, RpcError, Unavailable
from ..fsutil import write_atomic
from ..protocol.frames import ErrorCode
from ..protocol.send import SendParams, SendResult
from .registry import CallContext, method

log = logging.getLogger("gateway.outbox")

MAX_BUFFER_BYTES = 20 * 1024 * 1024
_URL = re.compile(r"https?://[^\s]+", re.IGNORECASE)


def result_of(record: Record) -> SendResult:
    """The answer for a record as it is now; raises for a record that failed."""
    if record.state in ("failed", "partial_failed", "expired", "cancelled"):
        raise RpcError(
            record.error_code or ErrorCode.UNAVAILABLE,
            record.last_error or f"delivery {record.state}",
            details={
                "deliveryState": record.state,
                "errorClass": record.last_error_class,
                "channel": record.channel,
            },
        )
    sent = record.state == "sent"
    to = record.target.to
    return SendResult(
        run_id=record.idempotency_key,
        message_id=record.message_id if sent else "",
        channel=record.channel,
        delivery_state="sent" if sent else "queued",
        chat_id=to if record.channel == "telegram" else None,
        to_jid=f"{to}@s.whatsapp.net" if record.channel == "whatsapp" else None,
    )


def _media(params: SendParams) -> list[Media]:
    urls = [u for u in [params.media_url, *(params.media_urls or [])] if u and u.strip()]
    out = []
    for url in urls:
        if not _URL.fullmatch(url.strip()):
            raise InvalidRequest(
                f'invalid send params: mediaUrl must be an http(s) URL, got "{url[:100]}" '
                "(send a local file as buffer; the CLI's --media does)"
            )
        out.append(Media(url=url.strip(), mime=params.content_type if len(urls) == 1 else None))
    return out


def _buffer(params: SendParams) -> bytes | None:
    if not params.buffer:
        return None
    try:
        data = base64.b64decode(params.buffer, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("invalid send params: buffer is not valid base64") from None
    if len(data) > MAX_BUFFER_BYTES:
        raise InvalidRequest(
            f"invalid send params: buffer is {len(data)} bytes (at most {MAX_BUFFER_BYTES})"
        )
    return data


@method("send", params=SendParams, result=SendResult, scope=WRITE)
async def send(ctx: CallContext, params: SendParams) -> SendResult:
    rt = ctx.runtime
    mgr = rt.channels
    text = params.message if params.message and params.message.strip() else ""
    media = _media(params)
    data = _buffer(params)
    if not text and not media and data is None:
        raise InvalidRequest("invalid send params: text or media is required")
    if rt.draining or mgr.service is None:
        raise Unavailable("gateway is stopping; retry shortly", retryable=True, retry_after_ms=1000)
    destination = delivery.resolve(
        mgr,
        params.channel,
        params.account_id,
        params.to,
        thread_id=params.thread_id,
        reply_to=params.reply_to_id,
    )
    outbox = mgr.outbox
    wait_s = rt.settings.config.send.ack_wait_ms / 1000
    key = params.idempotency_key
    existing = await outbox.lookup(key)
    if existing is not None:
        return result_of(await outbox.wait_attempted(existing, wait_s))
    record_id = str(uuid.uuid4())
    saved = None
    if data is not None:
        name = params.filename or "file"
        mime = params.content_type or mimetypes.guess_type(name)[0]
        suffix = (mimetypes.guess_extension(mime) if mime else None) or ""
        saved = (
            rt.settings.paths.state_dir / "channels" / OUTBOX_MEDIA_DIR / f"{record_id}-0{suffix}"
        )
        await trio.to_thread.run_sync(lambda: write_atomic(saved, data, secret=True))
        media = [Media(path=str(saved), mime=mime, filename=name), *media]
    payload = Payload(
        text=text,
        media=tuple(media),
        parse_mode=params.parse_mode,
        silent=bool(params.silent),
        as_voice=bool(params.as_voice),
        force_document=bool(params.force_document),
    )
    record = delivery.new_record(
        mgr, destination, key, "send", payload, _mirror(ctx, params, destination)
    )
    try:
        [(written, created)] = await outbox.enqueue([attrs.evolve(record, record_id=record_id)])
    except OutboxFull:
        raise Unavailable(
            f"outbox full for {destination.channel}:{destination.account_id}; retry later",
            retryable=True,
            retry_after_ms=30_000,
        ) from None
    if not created and saved is not None:
        await trio.to_thread.run_sync(lambda: saved.unlink(missing_ok=True))
    if created:
        log.info(
            "outbox: %s queued for %s:%s (%d part(s))",
            key,
            destination.channel,
            destination.account_id,
            len(record.parts),
        )
    return result_of(await outbox.wait_attempted(written, wait_s))


def _mirror(
    ctx: CallContext, params: SendParams, destination: delivery.Destination
) -> Mirror | None:
    """The session the sent message is mirrored into: ``sessionKey``, else the one an
    inbound message from that peer would use (CHANNELS.md 5.5)."""
    svc = ctx.runtime.agents
    try:
        if params.session_key:
            spec, rest = svc.resolve(params.agent_id, params.session_key)
            return Mirror(session_key(spec.id, rest), spec.id)
        agent_id, key = peer_session(ctx.runtime, destination, params.agent_id)
        spec, rest = svc.resolve(agent_id, key)
        return Mirror(session_key(spec.id, rest), spec.id)
    except InvalidRequest as exc:
        if params.session_key or params.agent_id:
            raise InvalidRequest(f"invalid send params: {exc.message}") from None
        return None
