"""Where an outbound message goes, and the outbox record it becomes (CHANNELS.md 5.3, 5.4).

``send``, ``agent`` with ``deliver``, hooks, heartbeats and WebChat's ``deliver`` all
resolve a destination the same way -- channel (omitted: the only configured one;
``webchat`` is internal), account (omitted: the channel's ``defaultAccount``), linked or
``NOT_LINKED``, then the target in the channel's own syntax -- and turn a payload into a
:class:`~gateway.channels.outbox.model.NewRecord` whose parts are planned with the
account's chunk settings. Parsing and checking are pure; the manager is only read.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import attrs

from ..errors import InvalidRequest, NotLinked
from .outbox.model import Mirror, NewRecord, Payload, Source, Target
from .outbox.parts import plan_parts

if TYPE_CHECKING:
    from .slot import AccountSlot
    from .supervisor import ChannelManager

SUPPORTED = ("telegram", "whatsapp")
INTERNAL = ("webchat",)
WEBCHAT_TEXT = (
    "unsupported channel: webchat (internal only: WebChat messages go through chat.send; "
    "choose a messaging channel such as telegram or whatsapp)"
)
_TG_USERNAME = re.compile(r"@[A-Za-z][A-Za-z0-9_]{3,31}")
_TG_ID = re.compile(r"-?[0-9]{1,20}")
_TG_TOPIC = re.compile(r"(-?[0-9]{1,20}):topic:([0-9]{1,10})")
_E164 = re.compile(r"\+?[1-9][0-9]{6,14}")


@attrs.frozen
class Destination:
    channel: str
    account_id: str
    target: Target


def channel_name(mgr: ChannelManager, raw: str | None) -> str:
    """The channel a message goes to; ``INVALID_REQUEST`` naming the problem."""
    configured = mgr.configured_channels()
    if raw is None or not raw.strip():
        if len(configured) == 1:
            return configured[0]
        if not configured:
            raise InvalidRequest(
                "no messaging channel is configured (set up channels.telegram or "
                "channels.whatsapp first)"
            )
        raise InvalidRequest(
            f"channel is required: more than one channel is configured ({', '.join(configured)})"
        )
    name = raw.strip().lower()
    if name in INTERNAL:
        raise InvalidRequest(WEBCHAT_TEXT)
    if name not in SUPPORTED:
        raise InvalidRequest(f"unsupported channel: {raw}")
    return name


def account_slot(
    mgr: ChannelManager, channel: str, account_id: str | None, *, check: bool = True
) -> AccountSlot:
    """The account to send from; ``NOT_LINKED`` when it cannot send (``check``)."""
    slots = mgr.select(channel, None)
    if not slots:
        raise NotLinked(f"{channel} not linked (account {account_id or 'default'}): not configured")
    wanted = account_id.strip() if account_id and account_id.strip() else None
    if wanted is None:
        wanted = mgr.default_account(channel) or slots[0].account_id
    slot = next((s for s in slots if s.account_id == wanted), None)
    if slot is None:
        known = ", ".join(s.account_id for s in slots)
        raise InvalidRequest(f'unknown account "{wanted}" for {channel} (configured: {known})')
    if check:
        check_linked(slot)
    return slot


def check_linked(slot: AccountSlot) -> None:
    cfg = slot.config
    reason: str | None = None
    if not cfg.enabled:
        reason = "disabled"
    elif not cfg.configured:
        reason = slot.last_error or cfg.token_error or "credentials missing"
    elif slot.linked is False:
        reason = slot.last_error or "credentials rejected"
    if reason is not None:
        raise NotLinked(f"{slot.channel} not linked (account {slot.account_id}): {reason}")


def _strip_prefix(raw: str, prefixes: tuple[str, ...]) -> str:
    text = raw.strip()
    lowered = text.lower()
    for prefix in prefixes:
        if lowered.startswith(prefix):
            return text[len(prefix) :].strip()
    return text


def telegram_target(raw: str, thread_id: str | None = None, reply_to: str | None = None) -> Target:
    """A chat id (``123``, ``-100...``), ``@channelname``, or ``<chatId>:topic:<n>``."""
    text = _strip_prefix(raw, ("telegram:", "tg:"))
    thread = thread_id.strip() if thread_id and thread_id.strip() else None
    topic = _TG_TOPIC.fullmatch(text)
    if topic:
        text, thread = topic.group(1), thread or topic.group(2)
    elif not (_TG_ID.fullmatch(text) or _TG_USERNAME.fullmatch(text)):
        raise InvalidRequest(
            f'invalid target for telegram: "{raw}" (expected a numeric chat id, @channelname '
            "or <chatId>:topic:<n>)"
        )
    if thread is not None and not thread.isdigit():
        raise InvalidRequest(f'invalid threadId for telegram: "{thread}" (a topic number)')
    if reply_to is not None and not reply_to.strip().isdigit():
        raise InvalidRequest(f'invalid replyToId for telegram: "{reply_to}" (a message id)')
    return Target(text, thread, reply_to.strip() if reply_to else None)


def whatsapp_target(raw: str, thread_id: str | None = None, reply_to: str | None = None) -> Target:
    """An E.164 number (``+15551234567``); ``whatsapp:`` and ``@s.whatsapp.net`` accepted."""
    text = _strip_prefix(raw, ("whatsapp:", "wa:"))
    text = text.split("@", 1)[0] if text.endswith("@s.whatsapp.net") else text
    compact = re.sub(r"[\s().-]", "", text)
    if not _E164.fullmatch(compact):
        raise InvalidRequest(
            f'invalid target for whatsapp: "{raw}" (expected an E.164 number such as +15551234567)'
        )
    if thread_id:
        raise InvalidRequest("threadId is not supported for whatsapp")
    return Target(compact.lstrip("+"), None, reply_to.strip() if reply_to else None)


def parse_target(
    channel: str, raw: str, thread_id: str | None = None, reply_to: str | None = None
) -> Target:
    if not raw or not raw.strip():
        raise InvalidRequest(f"invalid target for {channel}: empty")
    if channel == "whatsapp":
        return whatsapp_target(raw, thread_id, reply_to)
    return telegram_target(raw, thread_id, reply_to)


def resolve(
    mgr: ChannelManager,
    channel: str | None,
    account_id: str | None,
    to: str,
    *,
    thread_id: str | None = None,
    reply_to: str | None = None,
    check: bool = True,
) -> Destination:
    """Channel, account (linked, unless not ``check``), target: the order of CHANNELS.md 5.4."""
    name = channel_name(mgr, channel)
    slot = account_slot(mgr, name, account_id, check=check)
    return Destination(name, slot.account_id, parse_target(name, to, thread_id, reply_to))


def new_record(
    mgr: ChannelManager,
    destination: Destination,
    key: str,
    source: Source,
    payload: Payload,
    mirror: Mirror | None = None,
) -> NewRecord:
    """The record for ``payload``, its parts planned with the account's chunk settings."""
    slot = mgr.slots.get((destination.channel, destination.account_id))
    cfg = slot.config if slot is not None else None
    limit = getattr(cfg, "text_chunk_limit", 4000)
    mode = getattr(cfg, "chunk_mode", "length")
    return NewRecord(
        key,
        source,
        destination.channel,
        destination.account_id,
        destination.target,
        payload,
        plan_parts(payload, chunk_limit=limit, chunk_mode=mode),
        mirror,
    )


def peer_of(destination: Destination) -> tuple[str, bool]:
    """``(peer id, is group)`` of a destination, as inbound routing names the peer."""
    to = destination.target.to
    if destination.channel == "whatsapp":
        return f"+{to}", False
    return to, to.startswith("-")
