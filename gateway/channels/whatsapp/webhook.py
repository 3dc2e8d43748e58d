"""``GET|POST <webhookPath>[/<accountId>]`` on the gateway port: Meta's webhook (CHANNELS.md 4.2).

    GET  ?hub.mode=subscribe&hub.verify_token=T&hub.challenge=C
         T == verifyToken (constant time) -> 200 text/plain C; else 403
    POST X-Hub-Signature-256: sha256=<hex HMAC-SHA256(appSecret, raw body)>
         missing/wrong -> 401, nothing parsed; then object == whatsapp_business_account,
         messages and statuses of *this* number -> ledger rows, one transaction ->
         200 (empty) after the commit, 500 if it fails (Meta retries) -> dispatch

The route needs no gateway token (the HMAC authenticates Meta) and is exempt from the
browser origin policy by nature: Meta's servers send no ``Origin``. The body is read raw
(1 MiB at most) and checked before anything parses it. Redeliveries are key collisions in
the ledger: answered 200, processed once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import trio

from ...errors import GatewayError
from ...server.http import TEXT, Receive, SendFn, respond
from ...server.httpapi import header, read_body, send_error
from ..slot import AccountSlot, wall_ms
from .config import WhatsAppAccountConfig
from .inbound import is_status, rows_of

if TYPE_CHECKING:
    from ...runtime import Runtime

log = logging.getLogger("gateway.channels.whatsapp")

MAX_BODY = 1024 * 1024
WARN_EVERY_S = 60.0


def find_account(rt: Runtime, path: str) -> AccountSlot | None:
    """The WhatsApp account whose webhook ``path`` is (exact match, trailing / ignored)."""
    wanted = "/" + path.strip("/")
    for (channel, _), slot in rt.channels.slots.items():
        cfg = slot.config
        if channel == "whatsapp" and isinstance(cfg, WhatsAppAccountConfig):
            if cfg.webhook_path == wanted:
                return slot
    return None


def signature_ok(app_secret: str | None, body: bytes, signature: str | None) -> bool:
    if not app_secret or not signature or not signature.startswith("sha256="):
        return False
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature[len("sha256=") :].strip().lower())


def _query(scope: dict[str, Any]) -> dict[str, str]:
    raw = scope.get("query_string", b"")
    text = raw.decode("latin-1") if isinstance(raw, bytes | bytearray) else str(raw)
    return {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}


async def handle(
    rt: Runtime, slot: AccountSlot, scope: dict[str, Any], receive: Receive, send: SendFn
) -> None:
    method = scope["method"]
    if method in ("GET", "HEAD"):
        await _verify(rt, slot, scope, send, head=method == "HEAD")
    elif method == "POST":
        await _post(rt, slot, scope, receive, send)
    else:
        await respond(send, 405, b"Method Not Allowed", TEXT, extra=[(b"allow", b"GET, POST")])


async def _verify(
    rt: Runtime, slot: AccountSlot, scope: dict[str, Any], send: SendFn, *, head: bool
) -> None:
    cfg = slot.config
    assert isinstance(cfg, WhatsAppAccountConfig)
    query = _query(scope)
    token = query.get("hub.verify_token", "")
    ok = (
        query.get("hub.mode") == "subscribe"
        and bool(cfg.verify_token)
        and hmac.compare_digest(token.encode(), (cfg.verify_token or "").encode())
    )
    metric = rt.metrics.whatsapp_webhook_requests
    if not ok:
        metric.labels(result="verify_fail").inc()
        log.warning(
            "%s webhook verification refused (hub.mode %r; verify token %s)",
            slot.prefix,
            query.get("hub.mode"),
            "missing" if not token else "mismatch",
        )
        await respond(send, 403, b"Forbidden", TEXT, head=head)
        return
    metric.labels(result="verify_ok").inc()
    log.info("%s webhook verified by Meta", slot.prefix)
    challenge = query.get("hub.challenge", "").encode()
    await respond(send, 200, challenge, b"text/plain", head=head)


async def _post(
    rt: Runtime, slot: AccountSlot, scope: dict[str, Any], receive: Receive, send: SendFn
) -> None:
    cfg = slot.config
    assert isinstance(cfg, WhatsAppAccountConfig)
    metric = rt.metrics.whatsapp_webhook_requests
    try:
        body = bytes(await read_body(rt, scope, receive, MAX_BODY))
    except GatewayError as exc:
        await send_error(send, exc)
        return
    if not signature_ok(cfg.app_secret, body, header(scope, "x-hub-signature-256")):
        metric.labels(result="bad_signature").inc()
        now = trio.current_time()
        last = slot.extra.get("_signatureWarnedAt")
        if last is None or now - float(last) >= WARN_EVERY_S:
            slot.extra["_signatureWarnedAt"] = now
            reason = "appSecret is not configured" if not cfg.app_secret else "wrong or missing"
            log.warning(
                "whatsapp webhook signature mismatch (account %s): %s; check the app's "
                "secret and that no proxy rewrites the body",
                slot.account_id,
                reason,
            )
        await respond(send, 401, b"Unauthorized", TEXT)
        return
    try:
        payload = json.loads(body)
    except ValueError:
        await respond(send, 400, b"invalid JSON", TEXT)
        return
    if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
        log.warning(
            "%s webhook for another object (%r) ignored",
            slot.prefix,
            payload.get("object") if isinstance(payload, dict) else None,
        )
        await respond(send, 400, b"expected object whatsapp_business_account", TEXT)
        return
    now = wall_ms()
    parsed = rows_of(payload, "whatsapp", slot.account_id, cfg.phone_number_id or "", now)
    for number in parsed.foreign:
        log.warning(
            "%s webhook change for phone number id %s ignored (this account is %s)",
            slot.prefix,
            number,
            cfg.phone_number_id,
        )
    service = rt.channels.service
    try:
        assert service is not None
        ledger = await service.open_ledger()
        fresh = set(await ledger.record_batch("whatsapp", slot.account_id, parsed.rows, None))
    except Exception as exc:
        log.error("%s webhook not stored (Meta will retry): %s", slot.prefix, exc)
        await respond(send, 500, b"not stored; retry", TEXT)
        return
    metric.labels(result="ok").inc()
    await respond(send, 200, b"", TEXT)
    slot.extra["lastWebhookAt"] = now
    inbound = rt.metrics.inbound_messages
    new_rows = [r for r in parsed.rows if r.key in fresh]
    for row in parsed.rows:
        if row.key not in fresh:
            inbound.labels(channel="whatsapp", result="duplicate").inc()
        elif not is_status(row):
            inbound.labels(channel="whatsapp", result="accepted").inc()
    if new_rows:
        service.marked()
        accept = getattr(slot.transport, "accept", None)
        if accept is not None and slot.state == "running":
            accept(new_rows)  # else: dispatched when the account (re)starts
