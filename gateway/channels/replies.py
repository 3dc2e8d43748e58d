"""An agent run's reply delivered to a chat through the outbox (CHANNELS.md 5.3).

``agent`` with ``deliver``, WebChat's ``chat.send`` with ``deliver``, hooks and the
heartbeat all end the same way: the run's payloads (minus the silent ``NO_REPLY`` /
``HEARTBEAT_OK``) become records under ``<prefix>:<n>`` -- so a retried request never sends
twice -- and the caller may wait up to ``send.ackWaitMs`` for their first attempts to learn
the ``deliveryStatus``: ``sent`` | ``partial_failed`` | ``failed`` | ``suppressed`` |
``queued`` (records still pending).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import attrs
import trio

from .delivery import Destination, new_record
from .outbox.model import Payload, Record, Source

if TYPE_CHECKING:
    from ..runtime import Runtime

log = logging.getLogger("gateway.outbox")

DeliveryStatus = Literal["sent", "partial_failed", "failed", "suppressed", "queued"]
SILENT = frozenset({"NO_REPLY", "HEARTBEAT_OK"})


def suppressed(text: str) -> bool:
    return text.strip() in SILENT


def status_of(records: Sequence[Record]) -> DeliveryStatus:
    if not records:
        return "suppressed"
    if any(not r.terminal for r in records):
        return "queued"
    sent = [r for r in records if r.state == "sent"]
    if len(sent) == len(records):
        return "sent"
    if sent or any(r.state == "partial_failed" for r in records):
        return "partial_failed"
    return "failed"


async def deliver_payloads(
    rt: Runtime,
    destination: Destination,
    key_prefix: str,
    payloads: Sequence[str],
    source: Source,
    *,
    wait: bool = True,
) -> DeliveryStatus:
    """Enqueue the non-silent payloads; with ``wait``, their status after the first
    attempts (at most ``send.ackWaitMs``), else ``queued``."""
    texts = [p for p in payloads if p.strip() and not suppressed(p)]
    if not texts:
        return "suppressed"
    mgr = rt.channels
    target = destination.target
    records = []
    for i, text in enumerate(texts):
        # the message answered (replyTo) is quoted by the first payload only
        dest = (
            destination
            if i == 0
            else attrs.evolve(destination, target=attrs.evolve(target, reply_to_id=None))
        )
        records.append(new_record(mgr, dest, f"{key_prefix}:{i}", source, Payload(text)))
    written = await mgr.outbox.enqueue(records)
    if not wait:
        return "queued"
    wait_s = rt.settings.config.send.ack_wait_ms / 1000
    done = []
    deadline = trio.current_time() + wait_s
    for record, _ in written:
        left = max(0.0, deadline - trio.current_time())
        done.append(await mgr.outbox.wait_attempted(record, left))
    status = status_of(done)
    log.info(
        "%s delivered to %s:%s (%s): %s",
        key_prefix,
        destination.channel,
        destination.account_id,
        destination.target.to,
        status,
    )
    return status
